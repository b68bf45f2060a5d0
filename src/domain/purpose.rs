//! Why information is asked for. Only the first three purposes read records; the others
//! are for aggregates, the audit trail and subject access.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use super::InvalidValue;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    CrisisResponse,
    CareCoordination,
    Safeguarding,
    ServiceEvaluation,
    Audit,
    SubjectAccess,
}

impl Purpose {
    pub const ALL: [Self; 6] = [
        Self::CrisisResponse,
        Self::CareCoordination,
        Self::Safeguarding,
        Self::ServiceEvaluation,
        Self::Audit,
        Self::SubjectAccess,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CrisisResponse => "crisis_response",
            Self::CareCoordination => "care_coordination",
            Self::Safeguarding => "safeguarding",
            Self::ServiceEvaluation => "service_evaluation",
            Self::Audit => "audit",
            Self::SubjectAccess => "subject_access",
        }
    }

    /// Purposes for which a practitioner may read records.
    pub fn reads_records(self) -> bool {
        matches!(
            self,
            Self::CrisisResponse | Self::CareCoordination | Self::Safeguarding
        )
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Purpose {
    type Err = InvalidValue;
    fn from_str(raw: &str) -> Result<Self, InvalidValue> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw).ok_or_else(|| {
            InvalidValue::new(
                "purpose",
                "must be crisis_response, care_coordination, safeguarding, service_evaluation, audit or subject_access",
            )
        })
    }
}
