//! Queries on `agreement_versions`, `agreement_approvals` and `agreement_events`. An
//! agreement's status is derived from its events on every read, so a change made on one
//! instance is in force on every instance at the next request.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;

use super::{
    conflict_on_unique, exclusive,
    schema::{agreement_approvals, agreement_events, agreement_versions},
    Conflict, DbConnection, DbError, Missing,
};
use crate::domain::{
    agreement::{Agreement, AgreementDocument, Known, Lifecycle},
    AgencyId, InvalidValue,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The last party's approval of a version arrived.
    Approved,
    /// An admin imported a version from a file (itself audited).
    Imported,
    Suspended,
    Terminated,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Imported => "imported",
            Self::Suspended => "suspended",
            Self::Terminated => "terminated",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [
            Self::Approved,
            Self::Imported,
            Self::Suspended,
            Self::Terminated,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub agency: String,
    pub approved_by: String,
    pub approved_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub version: i32,
    pub document: AgreementDocument,
    pub created_by: String,
    pub created_at: i64,
    pub approvals: Vec<Approval>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub kind: EventKind,
    pub version: Option<i32>,
    pub reason: Option<String>,
    pub recorded_by: String,
    pub recorded_at: i64,
}

/// One agreement with every version, approval and event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAgreement {
    pub id: String,
    pub versions: Vec<StoredVersion>,
    pub events: Vec<StoredEvent>,
}

impl StoredAgreement {
    pub fn lifecycle(&self) -> Vec<Lifecycle> {
        self.events
            .iter()
            .filter_map(|event| match event.kind {
                EventKind::Approved | EventKind::Imported => event.version.map(Lifecycle::Approved),
                EventKind::Suspended => Some(Lifecycle::Suspended),
                EventKind::Terminated => Some(Lifecycle::Terminated),
            })
            .collect()
    }

    /// The versions that still validate against today's agencies and record types. One
    /// that no longer does (an agency or type removed) is left out: it cannot be in force.
    pub fn validated(&self, known: &Known<'_>) -> Vec<Agreement> {
        self.versions
            .iter()
            .filter_map(|v| match v.document.validate(known) {
                Ok(agreement) => Some(agreement),
                Err(error) => {
                    tracing::error!(agreement = %self.id, version = v.version, %error, "stored agreement no longer validates; not in force");
                    None
                }
            })
            .collect()
    }

    /// Every agency named as a party in any version: who may read the agreement.
    pub fn parties(&self) -> BTreeSet<String> {
        self.versions
            .iter()
            .flat_map(|v| v.document.parties.iter().cloned())
            .collect()
    }

    /// The newest version that every party approved (or that was imported).
    pub fn approved_version(&self) -> Option<i32> {
        self.events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Approved | EventKind::Imported))
            .filter_map(|e| e.version)
            .max()
    }

    /// The parties that govern the agreement: those of its newest approved version, or of
    /// its first draft before any approval. Only they may draft a new version, suspend or
    /// terminate it; a party added by a later draft gains nothing until that draft is
    /// approved, by them and by the governing parties alike.
    pub fn governing_parties(&self) -> BTreeSet<String> {
        let version = self
            .approved_version()
            .or_else(|| self.versions.first().map(|v| v.version));
        self.versions
            .iter()
            .find(|v| Some(v.version) == version)
            .map(|v| v.document.parties.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn corrupt(what: &str) -> DbError {
    DbError::Corrupt(InvalidValue::new("agreement", what))
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = agreement_versions)]
struct VersionRow {
    agreement_id: String,
    version: i32,
    document: String,
    created_by: String,
    created_at: i64,
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = agreement_approvals)]
struct ApprovalRow {
    agreement_id: String,
    version: i32,
    agency_id: String,
    approved_by: String,
    approved_at: i64,
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = agreement_events)]
struct EventRow {
    agreement_id: String,
    seq: i32,
    kind: String,
    version: Option<i32>,
    reason: Option<String>,
    recorded_by: String,
    recorded_at: i64,
}

/// Stores a new version: 1 for a new agreement, otherwise exactly the next number.
pub fn insert_version(
    conn: &mut DbConnection,
    document: &AgreementDocument,
    created_by: &str,
) -> Result<(), DbError> {
    exclusive(conn, super::LockKey::Agreement, |conn| {
        add_version(conn, document, created_by)
    })
}

fn add_version(
    conn: &mut DbConnection,
    document: &AgreementDocument,
    created_by: &str,
) -> Result<(), DbError> {
    let latest: Option<i32> = agreement_versions::table
        .filter(agreement_versions::agreement_id.eq(&document.id))
        .select(diesel::dsl::max(agreement_versions::version))
        .first(conn)?;
    let next = latest.unwrap_or(0) + 1;
    if document.version != next {
        return Err(DbError::Conflict(Conflict::AgreementVersionNotNext {
            id: document.id.clone(),
            latest: latest.unwrap_or(0),
        }));
    }
    diesel::insert_into(agreement_versions::table)
        .values(VersionRow {
            agreement_id: document.id.clone(),
            version: document.version,
            document: serde_json::to_string(document).map_err(|_| corrupt("document"))?,
            created_by: created_by.to_owned(),
            created_at: crate::domain::Timestamp::now().micros(),
        })
        .execute(conn)
        .map_err(|e| conflict_on_unique(e, Conflict::AgreementVersionExists))?;
    Ok(())
}

fn add_event(
    conn: &mut DbConnection,
    id: &str,
    kind: EventKind,
    version: Option<i32>,
    reason: Option<&str>,
    by: &str,
) -> Result<(), DbError> {
    let latest: Option<i32> = agreement_events::table
        .filter(agreement_events::agreement_id.eq(id))
        .select(diesel::dsl::max(agreement_events::seq))
        .first(conn)?;
    diesel::insert_into(agreement_events::table)
        .values(EventRow {
            agreement_id: id.to_owned(),
            seq: latest.unwrap_or(0) + 1,
            kind: kind.as_str().to_owned(),
            version,
            reason: reason.map(str::to_owned),
            recorded_by: by.to_owned(),
            recorded_at: crate::domain::Timestamp::now().micros(),
        })
        .execute(conn)?;
    Ok(())
}

/// Records `agency`'s approval of `version`, whose own parties are `version_parties`.
/// The version becomes the approved one (an `approved` event) when every party to it and
/// every governing party has approved it, counting only approvals given after the latest
/// suspension: a suspension is lifted by a fresh decision, not by earlier ones. Everything
/// is decided under the agreement lock, from the state as it is then. Returns whether the
/// version became approved now.
pub fn approve(
    conn: &mut DbConnection,
    id: &str,
    version: i32,
    agency: &AgencyId,
    version_parties: &BTreeSet<AgencyId>,
    by: &str,
) -> Result<bool, DbError> {
    exclusive(conn, super::LockKey::Agreement, |conn| {
        let stored = load_all(conn)?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or(DbError::NotFound(Missing::Agreement))?;
        if stored
            .approved_version()
            .is_some_and(|approved| version <= approved)
        {
            return Err(DbError::Conflict(Conflict::NewerVersionApproved));
        }
        let mut required: BTreeSet<String> =
            version_parties.iter().map(ToString::to_string).collect();
        required.extend(stored.governing_parties());
        if !required.contains(agency.as_str()) {
            // TODO(governance): replaced by the pure governance rule.
            return Err(DbError::Conflict(Conflict::ChangedConcurrently));
        }
        diesel::insert_into(agreement_approvals::table)
            .values(ApprovalRow {
                agreement_id: id.to_owned(),
                version,
                agency_id: agency.to_string(),
                approved_by: by.to_owned(),
                approved_at: crate::domain::Timestamp::now().micros(),
            })
            .execute(conn)
            .map_err(|e| {
                conflict_on_unique(
                    e,
                    Conflict::AlreadyApproved {
                        agency: agency.to_string(),
                        version,
                    },
                )
            })?;
        let suspended_at = stored
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Suspended)
            .map(|e| e.recorded_at)
            .max()
            .unwrap_or(i64::MIN);
        let approved: BTreeSet<String> = agreement_approvals::table
            .filter(agreement_approvals::agreement_id.eq(id))
            .filter(agreement_approvals::version.eq(version))
            .filter(agreement_approvals::approved_at.gt(suspended_at))
            .select(agreement_approvals::agency_id)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        let complete = required.is_subset(&approved);
        if complete {
            add_event(conn, id, EventKind::Approved, Some(version), None, by)?;
        }
        Ok(complete)
    })
}

/// Makes a file's version the approved one directly (the admin's `agreements import`).
/// Importing the same document again changes nothing.
pub fn import(
    conn: &mut DbConnection,
    document: &AgreementDocument,
    by: &str,
) -> Result<bool, DbError> {
    exclusive(conn, super::LockKey::Agreement, |conn| {
        let existing: Option<String> = agreement_versions::table
            .find((&document.id, document.version))
            .select(agreement_versions::document)
            .first(conn)
            .optional()?;
        match existing {
            Some(stored) => {
                let stored: AgreementDocument =
                    serde_json::from_str(&stored).map_err(|_| corrupt("document"))?;
                if stored != *document {
                    return Err(DbError::Conflict(Conflict::ImportDiffers {
                        id: document.id.clone(),
                        version: document.version,
                    }));
                }
                let imported: i64 = agreement_events::table
                    .filter(agreement_events::agreement_id.eq(&document.id))
                    .filter(agreement_events::version.eq(document.version))
                    .filter(agreement_events::kind.eq_any(["imported", "approved"]))
                    .count()
                    .get_result(conn)?;
                if imported > 0 {
                    return Ok(false);
                }
            }
            None => add_version(conn, document, by)?,
        }
        add_event(
            conn,
            &document.id,
            EventKind::Imported,
            Some(document.version),
            None,
            by,
        )?;
        Ok(true)
    })
}

/// Suspends or terminates the agreement (every version).
pub fn change_status(
    conn: &mut DbConnection,
    id: &str,
    kind: EventKind,
    reason: &str,
    by: &str,
) -> Result<(), DbError> {
    exclusive(conn, super::LockKey::Agreement, |conn| {
        add_event(conn, id, kind, None, Some(reason), by)
    })
}

/// Every agreement, by id.
pub fn load_all(conn: &mut DbConnection) -> Result<Vec<StoredAgreement>, DbError> {
    let versions: Vec<VersionRow> = agreement_versions::table
        .order((
            agreement_versions::agreement_id,
            agreement_versions::version,
        ))
        .select(VersionRow::as_select())
        .load(conn)?;
    let approvals: Vec<ApprovalRow> = agreement_approvals::table
        .order(agreement_approvals::approved_at)
        .select(ApprovalRow::as_select())
        .load(conn)?;
    let events: Vec<EventRow> = agreement_events::table
        .order((agreement_events::agreement_id, agreement_events::seq))
        .select(EventRow::as_select())
        .load(conn)?;
    let mut by_id: BTreeMap<String, StoredAgreement> = BTreeMap::new();
    for row in versions {
        let document: AgreementDocument =
            serde_json::from_str(&row.document).map_err(|_| corrupt("document"))?;
        let approvals = approvals
            .iter()
            .filter(|a| a.agreement_id == row.agreement_id && a.version == row.version)
            .map(|a| Approval {
                agency: a.agency_id.clone(),
                approved_by: a.approved_by.clone(),
                approved_at: a.approved_at,
            })
            .collect();
        by_id
            .entry(row.agreement_id.clone())
            .or_insert_with(|| StoredAgreement {
                id: row.agreement_id.clone(),
                versions: Vec::new(),
                events: Vec::new(),
            })
            .versions
            .push(StoredVersion {
                version: row.version,
                document,
                created_by: row.created_by,
                created_at: row.created_at,
                approvals,
            });
    }
    for row in events {
        let kind = EventKind::parse(&row.kind).ok_or_else(|| corrupt("event kind"))?;
        if let Some(agreement) = by_id.get_mut(&row.agreement_id) {
            agreement.events.push(StoredEvent {
                kind,
                version: row.version,
                reason: row.reason,
                recorded_by: row.recorded_by,
                recorded_at: row.recorded_at,
            });
        }
    }
    Ok(by_id.into_values().collect())
}

/// The agreements in force on `today`: for each agreement, the version its lifecycle puts
/// in force, if any. Read afresh on every request: no cache can outlive a suspension.
pub fn in_force(
    conn: &mut DbConnection,
    record_types: &crate::domain::record_type::RecordTypes,
    today: time::Date,
) -> Result<Vec<Agreement>, DbError> {
    let agencies = known_agencies(conn)?;
    let known = Known {
        agencies: &agencies,
        record_types,
    };
    Ok(load_all(conn)?
        .iter()
        .filter_map(|stored| {
            let versions = stored.validated(&known);
            let (_, current) =
                crate::domain::agreement::status_on(&versions, &stored.lifecycle(), today);
            current.cloned()
        })
        .collect())
}

/// Registered agencies and their kinds, for validating agreements.
pub fn known_agencies(
    conn: &mut DbConnection,
) -> Result<BTreeMap<AgencyId, crate::domain::AgencyKind>, DbError> {
    Ok(super::agencies::list(conn)?
        .into_iter()
        .map(|agency| (agency.id, agency.kind))
        .collect())
}
