//! Principals: certificate holders known to the gateway. The certificate proves who the
//! caller is; what it may do (agency, roles, status) lives here, never in the certificate.

use std::{collections::BTreeSet, fmt, str::FromStr};

use serde::Serialize;

use super::{slug_id, AgencyId, InvalidValue};

slug_id!(PrincipalId, "principal_id");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads records for a purpose; submits its agency's records.
    Practitioner,
    /// An agency system: submits records.
    System,
    /// Enrols subjects and manages consent.
    Coordinator,
    /// Approves agreements for its agency.
    IgLead,
    /// Reads the audit trail and reports; never record contents.
    IgAuditor,
    /// Principals, agreement import, operations.
    Admin,
}

impl Role {
    pub const ALL: [Self; 6] = [
        Self::Practitioner,
        Self::System,
        Self::Coordinator,
        Self::IgLead,
        Self::IgAuditor,
        Self::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Practitioner => "practitioner",
            Self::System => "system",
            Self::Coordinator => "coordinator",
            Self::IgLead => "ig_lead",
            Self::IgAuditor => "ig_auditor",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = InvalidValue;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == raw)
            .ok_or_else(|| {
                InvalidValue::new(
                    "role",
                    "must be one of practitioner, system, coordinator, ig_lead, ig_auditor, admin",
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalStatus {
    Active,
    Disabled,
}

impl PrincipalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

impl FromStr for PrincipalStatus {
    type Err = InvalidValue;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "active" => Ok(Self::Active),
            "disabled" => Ok(Self::Disabled),
            _ => Err(InvalidValue::new("status", "must be active or disabled")),
        }
    }
}

/// The certificate a principal is bound to: its subject, its issuer's name, and the issuing
/// CA's key. Matching on all three means a certificate with the same subject from another
/// trusted CA, even one with the same name, is a different caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateBinding {
    pub subject: String,
    pub issuer: String,
    /// Hex SHA-256 of the issuing CA's public key. `None` for principals registered before
    /// bindings named the key: they are accepted only while no two configured CAs share
    /// the issuer's name.
    pub issuer_key: Option<String>,
}

impl CertificateBinding {
    /// Whether a certificate bound as `presented` (from a verified chain) is this binding's.
    /// `name_is_shared` says whether another configured CA has the name of the one that
    /// issued it.
    pub fn admits(&self, presented: &CertificateBinding, name_is_shared: bool) -> bool {
        self.subject == presented.subject
            && self.issuer == presented.issuer
            && match (&self.issuer_key, &presented.issuer_key) {
                (Some(bound), Some(issued_by)) => bound == issued_by,
                (None, Some(_)) => !name_is_shared,
                (_, None) => false,
            }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: PrincipalId,
    /// Increases by one with every change; older versions stay as history.
    pub version: i32,
    pub agency: AgencyId,
    pub roles: BTreeSet<Role>,
    pub certificate: CertificateBinding,
    pub status: PrincipalStatus,
}

impl Principal {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// Roles are stored as one comma-separated text column; both backends share that type.
pub fn roles_to_text(roles: &BTreeSet<Role>) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn roles_from_text(text: &str) -> Result<BTreeSet<Role>, InvalidValue> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .map(str::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_text() {
        let roles: BTreeSet<Role> = Role::ALL.into_iter().collect();
        assert_eq!(roles_from_text(&roles_to_text(&roles)).unwrap(), roles);
        assert!(roles_from_text("practitioner,superuser").is_err());
    }

    #[test]
    fn role_names_are_the_api_names() {
        assert_eq!("ig_auditor".parse::<Role>().unwrap(), Role::IgAuditor);
        assert!("IG_AUDITOR".parse::<Role>().is_err());
    }
}

#[cfg(test)]
mod binding_tests {
    use super::CertificateBinding;

    fn binding(subject: &str, issuer: &str, key: Option<&str>) -> CertificateBinding {
        CertificateBinding {
            subject: subject.into(),
            issuer: issuer.into(),
            issuer_key: key.map(Into::into),
        }
    }

    #[test]
    fn a_binding_admits_only_its_subject_from_its_issuer_by_name_and_key() {
        let bound = binding("CN=a, O=p", "CN=CA", Some("k1"));
        let legacy = binding("CN=a, O=p", "CN=CA", None);
        // (bound, presented, name shared, admitted)
        let table = [
            (
                &bound,
                binding("CN=a, O=p", "CN=CA", Some("k1")),
                false,
                true,
            ),
            (
                &bound,
                binding("CN=a, O=p", "CN=CA", Some("k1")),
                true,
                true,
            ),
            (
                &bound,
                binding("CN=a, O=p", "CN=CA", Some("k2")),
                true,
                false,
            ),
            (
                &bound,
                binding("CN=a, O=p", "CN=CA", Some("k2")),
                false,
                false,
            ),
            (&bound, binding("CN=a, O=p", "CN=CA", None), false, false),
            (
                &bound,
                binding("CN=b, O=p", "CN=CA", Some("k1")),
                false,
                false,
            ),
            (
                &bound,
                binding("CN=a, O=p", "CN=Other", Some("k1")),
                false,
                false,
            ),
            (
                &legacy,
                binding("CN=a, O=p", "CN=CA", Some("k1")),
                false,
                true,
            ),
            (
                &legacy,
                binding("CN=a, O=p", "CN=CA", Some("k1")),
                true,
                false,
            ),
            (&legacy, binding("CN=a, O=p", "CN=CA", None), false, false),
        ];
        for (bound, presented, shared, admitted) in table {
            assert_eq!(
                bound.admits(&presented, shared),
                admitted,
                "{bound:?} {presented:?} shared={shared}"
            );
        }
    }
}
