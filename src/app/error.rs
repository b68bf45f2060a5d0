//! What a use case answers when it will not or cannot do what was asked. Each refusal names
//! the rule that decided it; the words are chosen here once, and each edge (HTTP problem
//! documents, CLI messages, console pages) only maps the kind to its own form.

use crate::{
    audit::AuditError,
    db::{Conflict, DbError, Missing},
    domain::InvalidValue,
};

/// The rule behind a 403-style refusal; its code is what problem documents and audit
/// entries carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The caller's roles do not allow the action.
    Role,
    /// The caller's agency is not a party that governs the agreement.
    Party,
    /// The caller's agency kind may not hold records of this type.
    Holder,
    /// Not a purpose this action may be taken for.
    Purpose,
    /// No agreement in force shares anything with the caller's agency for the purpose.
    NoAgreement,
    /// The principal who broke the glass may not review their own access.
    OwnAlert,
}

impl Rule {
    pub fn code(self) -> &'static str {
        match self {
            // Who-may-govern refusals keep the code the API has always answered with.
            Self::Role | Self::Party => "role",
            Self::Holder => "holder",
            Self::Purpose => "purpose",
            Self::NoAgreement => "no_agreement",
            Self::OwnAlert => "own_alert",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{detail}")]
    Refused { rule: Rule, detail: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{0}")]
    Conflict(String),
    /// The audit trail cannot be written, so nothing was changed or disclosed.
    #[error("the audit trail cannot be written")]
    AuditUnavailable(#[source] AuditError),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl AppError {
    pub fn refused(rule: Rule, detail: impl Into<String>) -> Self {
        Self::Refused {
            rule,
            detail: detail.into(),
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("No such {what}."))
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    /// The reason an audit entry records for this answer (the problem `code` the API uses).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused { rule, .. } => rule.code(),
            Self::NotFound(_) => "not_found",
            Self::Invalid { .. } => "invalid",
            Self::Conflict(_) => "conflict",
            Self::AuditUnavailable(_) => "audit_unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<AuditError> for AppError {
    fn from(error: AuditError) -> Self {
        tracing::error!(%error, "audit entry not written; nothing changed or disclosed");
        Self::AuditUnavailable(error)
    }
}

impl From<InvalidValue> for AppError {
    fn from(error: InvalidValue) -> Self {
        Self::invalid(error.field, error.message)
    }
}

/// Storage answers with kinds; the sentences are chosen here.
impl From<DbError> for AppError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Conflict(conflict) => Self::Conflict(conflict_text(&conflict)),
            DbError::NotFound(missing) => Self::NotFound(missing_text(missing)),
            // A database that cannot be reached (down, restarting, every connection busy
            // past the pool's timeout) is unavailability, not a fault in the request: 503,
            // as when the trail's own writer fails, and nothing is disclosed.
            DbError::Pool(_) | DbError::Connect(_) => {
                tracing::error!(%error, "no database connection; the request is refused");
                Self::AuditUnavailable(AuditError::Unreachable)
            }
            other => Self::Internal(other.into()),
        }
    }
}

fn conflict_text(conflict: &Conflict) -> String {
    match conflict {
        Conflict::AgencyExists(id) => format!("Agency {id} already exists."),
        Conflict::PrincipalExists(id) => format!("Principal {id} already exists."),
        Conflict::CertificateInUse => {
            "Another active principal is bound to this certificate.".to_owned()
        }
        Conflict::ChangedConcurrently => "The data changed concurrently; try again.".to_owned(),
        Conflict::AlreadyEnrolled => {
            "A subject with this NHS number or PNC id is already enrolled.".to_owned()
        }
        Conflict::AlreadyDischarged => "This subject has already been discharged.".to_owned(),
        Conflict::AgreementVersionNotNext { id, latest } => format!(
            "Agreement {id} is at version {latest}; a new version must be {}.",
            latest + 1
        ),
        Conflict::AgreementVersionExists => "That agreement version exists already.".to_owned(),
        Conflict::ImportDiffers { id, version } => format!(
            "Version {version} of {id} exists with different content; import a new version."
        ),
        Conflict::AlreadyApproved { agency, version } => {
            format!("{agency} has already approved version {version}.")
        }
        Conflict::AlreadyReviewed => "This alert has already been reviewed.".to_owned(),
    }
}

fn missing_text(missing: Missing) -> String {
    match missing {
        Missing::Subject => "No such subject.",
        Missing::Agreement => "No such agreement.",
        Missing::AgreementVersion => "No such agreement version.",
        Missing::Principal => "No such principal.",
        Missing::Agency => "No such agency.",
        Missing::AuditEntry => "No entry at that index.",
    }
    .to_owned()
}

/// Governance answers alike whether it refused early or under the agreement lock.
impl From<crate::domain::agreement::GovernanceRefusal> for AppError {
    fn from(refusal: crate::domain::agreement::GovernanceRefusal) -> Self {
        use crate::domain::agreement::GovernanceRefusal as No;
        match refusal {
            No::Role(roles) => {
                let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                Self::refused(
                    Rule::Role,
                    format!("This needs the role {}.", names.join(" or ")),
                )
            }
            No::NotDraftingParty => Self::refused(
                Rule::Party,
                "An IG lead drafts agreements that their agency is a party to.",
            ),
            No::NotApprovingParty => {
                Self::refused(Rule::Party, "Only an IG lead of a party approves.")
            }
            No::NotGoverningParty => Self::refused(
                Rule::Party,
                "Only an IG lead of a party or an admin changes an agreement.",
            ),
            No::UnknownVersion => Self::NotFound(missing_text(Missing::AgreementVersion)),
            No::Terminated => Self::Conflict("The agreement is terminated.".to_owned()),
            No::NewerVersionApproved => Self::Conflict(
                "A newer or equal version is already approved; draft a new version.".to_owned(),
            ),
            No::AlreadyApproved { agency, version } => {
                Self::Conflict(conflict_text(&Conflict::AlreadyApproved {
                    agency: agency.to_string(),
                    version,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manager whose database is never there, as while PostgreSQL restarts.
    struct Unreachable;

    impl diesel::r2d2::ManageConnection for Unreachable {
        type Connection = crate::db::DbConnection;
        type Error = diesel::r2d2::Error;

        fn connect(&self) -> Result<Self::Connection, Self::Error> {
            Err(diesel::r2d2::Error::ConnectionError(
                diesel::ConnectionError::BadConnection("connection refused".into()),
            ))
        }

        fn is_valid(&self, _: &mut Self::Connection) -> Result<(), Self::Error> {
            Ok(())
        }

        fn has_broken(&self, _: &mut Self::Connection) -> bool {
            false
        }
    }

    /// Found by bench/instances: a request that waited out the pool's timeout while the
    /// database restarted was answered 500 `internal`; it is 503 `audit_unavailable`.
    #[test]
    fn a_database_that_cannot_be_reached_is_unavailability_not_an_internal_error() {
        let pool = diesel::r2d2::Pool::builder()
            .connection_timeout(std::time::Duration::from_millis(20))
            .build_unchecked(Unreachable);
        let timed_out =
            DbError::from(pool.get().err().into_iter().next().unwrap_or_else(|| {
                unreachable!("the pool handed out a connection it cannot make")
            }));
        for error in [timed_out, DbError::Connect("connection refused".into())] {
            let app = AppError::from(error);
            assert_eq!(app.code(), "audit_unavailable");
            let api = crate::error::ApiError::from(app);
            use actix_web::ResponseError;
            assert_eq!(
                api.status_code(),
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE
            );
        }
    }
}
