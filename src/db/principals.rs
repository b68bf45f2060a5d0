//! Queries on `principals`. Every change inserts a new version; the current principal is
//! its highest version. Nothing here updates or deletes a row (the schema refuses it too).

use diesel::prelude::*;

use super::{conflict_on_unique, schema::principals, Conflict, DbConnection, DbError, Missing};
use crate::domain::{
    principal::{roles_from_text, roles_to_text},
    AgencyId, CertificateBinding, Principal, PrincipalId, PrincipalStatus,
};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = principals)]
struct PrincipalRow {
    id: String,
    version: i32,
    agency_id: String,
    certificate_subject: String,
    certificate_issuer: String,
    roles: String,
    status: String,
    changed_at: i64,
    certificate_issuer_key: Option<String>,
}

impl PrincipalRow {
    fn from_principal(p: &Principal) -> Self {
        Self {
            id: p.id.to_string(),
            version: p.version,
            agency_id: p.agency.to_string(),
            certificate_subject: p.certificate.subject.clone(),
            certificate_issuer: p.certificate.issuer.clone(),
            roles: roles_to_text(&p.roles),
            status: p.status.as_str().to_owned(),
            changed_at: crate::domain::Timestamp::now().micros(),
            certificate_issuer_key: p.certificate.issuer_key.clone(),
        }
    }

    fn into_principal(self) -> Result<Principal, DbError> {
        Ok(Principal {
            id: PrincipalId::parse(&self.id).map_err(DbError::Corrupt)?,
            version: self.version,
            agency: AgencyId::parse(&self.agency_id).map_err(DbError::Corrupt)?,
            roles: roles_from_text(&self.roles).map_err(DbError::Corrupt)?,
            certificate: CertificateBinding {
                subject: self.certificate_subject,
                issuer: self.certificate_issuer,
                issuer_key: self.certificate_issuer_key,
            },
            status: self.status.parse().map_err(DbError::Corrupt)?,
        })
    }
}

/// Registers a new principal as version 1. Refuses an id that exists, an unknown agency, or
/// a certificate binding that an active principal already holds (one certificate, one caller).
/// `app::registry` asks the same before it records the change; these are the same checks
/// made again under the lock, so two operators adding at once cannot both succeed.
pub fn add(conn: &mut DbConnection, principal: &Principal) -> Result<(), DbError> {
    super::exclusive(conn, super::LockKey::Principal, |conn| {
        if latest(conn, &principal.id)?.is_some() {
            return Err(DbError::Conflict(Conflict::PrincipalExists(
                principal.id.to_string(),
            )));
        }
        if super::agencies::find(conn, &principal.agency)?.is_none() {
            return Err(DbError::NotFound(Missing::Agency));
        }
        if !active_by_certificate(conn, &principal.certificate)?.is_empty() {
            return Err(DbError::Conflict(Conflict::CertificateInUse));
        }
        let row = PrincipalRow::from_principal(&Principal {
            version: 1,
            ..principal.clone()
        });
        diesel::insert_into(principals::table)
            .values(row)
            .execute(conn)
            .map_err(|e| {
                conflict_on_unique(e, Conflict::PrincipalExists(principal.id.to_string()))
            })?;
        Ok(())
    })
}

/// Adds a disabled version. Disabling a disabled principal changes nothing.
pub fn disable(conn: &mut DbConnection, id: &PrincipalId) -> Result<Principal, DbError> {
    super::exclusive(conn, super::LockKey::Principal, |conn| {
        let current = latest(conn, id)?.ok_or(DbError::NotFound(Missing::Principal))?;
        if current.status == PrincipalStatus::Disabled {
            return Ok(current);
        }
        let next = Principal {
            version: current.version + 1,
            status: PrincipalStatus::Disabled,
            ..current
        };
        diesel::insert_into(principals::table)
            .values(PrincipalRow::from_principal(&next))
            .execute(conn)
            .map_err(|e| conflict_on_unique(e, Conflict::ChangedConcurrently))?;
        Ok(next)
    })
}

/// The current version of one principal.
pub fn latest(conn: &mut DbConnection, id: &PrincipalId) -> Result<Option<Principal>, DbError> {
    principals::table
        .filter(principals::id.eq(id.as_str()))
        .order(principals::version.desc())
        .select(PrincipalRow::as_select())
        .first(conn)
        .optional()?
        .map(PrincipalRow::into_principal)
        .transpose()
}

/// Active principals whose current version is bound to this certificate's subject and
/// issuer name (the caller then checks the issuer's key: [`CertificateBinding::admits`]).
/// More than one can only come from data changed outside the gateway; callers must then
/// refuse.
///
/// One statement, as it runs on every request: every version of every principal that was
/// ever bound to the certificate, newest first, of which only each one's latest counts.
pub fn active_by_certificate(
    conn: &mut DbConnection,
    binding: &CertificateBinding,
) -> Result<Vec<Principal>, DbError> {
    let bound = diesel::alias!(principals as bound);
    let rows: Vec<PrincipalRow> = super::on_concrete!(conn, |conn| principals::table
        .filter(
            principals::id.eq_any(
                bound
                    .filter(
                        bound
                            .field(principals::certificate_subject)
                            .eq(&binding.subject),
                    )
                    .filter(
                        bound
                            .field(principals::certificate_issuer)
                            .eq(&binding.issuer),
                    )
                    .select(bound.field(principals::id)),
            ),
        )
        .order((principals::id, principals::version.desc()))
        .select(PrincipalRow::as_select())
        .load(conn))?;
    let mut found = Vec::new();
    let mut seen: Option<String> = None;
    for row in rows {
        if seen.as_deref() == Some(row.id.as_str()) {
            continue;
        }
        seen = Some(row.id.clone());
        let current = row.into_principal()?;
        if current.status == PrincipalStatus::Active
            && current.certificate.subject == binding.subject
            && current.certificate.issuer == binding.issuer
        {
            found.push(current);
        }
    }
    Ok(found)
}

/// The current version of every principal, by id.
pub fn list_current(conn: &mut DbConnection) -> Result<Vec<Principal>, DbError> {
    let rows: Vec<PrincipalRow> = principals::table
        .order((principals::id, principals::version.desc()))
        .select(PrincipalRow::as_select())
        .load(conn)?;
    let mut current: Vec<Principal> = Vec::new();
    for row in rows {
        if current.last().is_some_and(|p| p.id.as_str() == row.id) {
            continue;
        }
        current.push(row.into_principal()?);
    }
    Ok(current)
}
