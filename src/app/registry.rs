//! The gateway's register of who may call it: agencies and principals. Operators change it
//! from the command line; each change is a use case like any other, audited before it is
//! made, because a new principal or a disabled one changes who may see data.

use super::{AppError, Call};
use crate::{
    db::{agencies, principals, Conflict, Database, DbError, Missing},
    domain::{Agency, AgencyId, CertificateBinding, Principal, PrincipalId, PrincipalStatus, Role},
};

/// Registers an agency.
pub async fn add_agency(database: &Database, call: &Call, agency: Agency) -> Result<(), AppError> {
    call.require_any(&[Role::Admin])?;
    let id = agency.id.clone();
    call.audit
        .annotate(|entry| entry.agency_id = Some(id.to_string()));
    if database
        .run(move |conn| agencies::find(conn, &id))
        .await?
        .is_some()
    {
        return Err(DbError::Conflict(Conflict::AgencyExists(agency.id.to_string())).into());
    }
    call.record_before_change().await?;
    database
        .run(move |conn| agencies::insert(conn, &agency))
        .await?;
    Ok(())
}

/// A principal to register, bound to the subject and issuer of its client certificate.
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub id: PrincipalId,
    pub agency: AgencyId,
    /// The subject and issuer of the principal's certificate, as the TLS edge reads them.
    pub certificate: CertificateBinding,
    /// The certificate subject's single `O`, if it has exactly one.
    pub organization: Option<String>,
    pub roles: Vec<Role>,
}

/// Registers a principal as version 1. The certificate's `O` must be the agency: a
/// principal bound otherwise could never be authenticated.
pub async fn add_principal(
    database: &Database,
    call: &Call,
    new: NewPrincipal,
) -> Result<Principal, AppError> {
    call.require_any(&[Role::Admin])?;
    if new.organization.as_deref() != Some(new.agency.as_str()) {
        return Err(AppError::invalid(
            "cert",
            format!(
                "the certificate's organisation (O) is {}, not the agency {}",
                new.organization.as_deref().unwrap_or("absent or repeated"),
                new.agency
            ),
        ));
    }
    let principal = Principal {
        id: new.id,
        version: 1,
        certificate: new.certificate,
        agency: new.agency,
        roles: new.roles.into_iter().collect(),
        status: PrincipalStatus::Active,
    };
    call.audit.annotate(|entry| {
        entry.agency_id = Some(principal.agency.to_string());
    });
    let check = principal.clone();
    database
        .run(move |conn| {
            if principals::latest(conn, &check.id)?.is_some() {
                return Err(DbError::Conflict(Conflict::PrincipalExists(
                    check.id.to_string(),
                )));
            }
            if agencies::find(conn, &check.agency)?.is_none() {
                return Err(DbError::NotFound(Missing::Agency));
            }
            if !principals::active_by_certificate(conn, &check.certificate)?.is_empty() {
                return Err(DbError::Conflict(Conflict::CertificateInUse));
            }
            Ok(())
        })
        .await?;
    call.record_before_change().await?;
    let stored = principal.clone();
    database
        .run(move |conn| principals::add(conn, &stored))
        .await?;
    Ok(principal)
}

/// Disables a principal (a new version); its next request is refused. Disabling a
/// disabled principal changes nothing but is still recorded as asked.
pub async fn disable_principal(
    database: &Database,
    call: &Call,
    id: PrincipalId,
) -> Result<Principal, AppError> {
    call.require_any(&[Role::Admin])?;
    let lookup = id.clone();
    let current = database
        .run(move |conn| principals::latest(conn, &lookup))
        .await?
        .ok_or(DbError::NotFound(Missing::Principal))?;
    call.audit
        .annotate(|entry| entry.agency_id = Some(current.agency.to_string()));
    call.record_before_change().await?;
    Ok(database
        .run(move |conn| principals::disable(conn, &id))
        .await?)
}

/// The current version of every principal.
pub async fn list_principals(database: &Database, call: &Call) -> Result<Vec<Principal>, AppError> {
    call.require_any(&[Role::Admin])?;
    Ok(database.run(principals::list_current).await?)
}
