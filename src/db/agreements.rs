//! Queries on `agreement_versions`, `agreement_approvals` and `agreement_events`. An
//! agreement's status is derived from its events on every read, so a change made on one
//! instance is in force on every instance at the next request. Every governed write asks
//! [`govern`] again under the agreement lock, with the history as it is then, and answers
//! its refusal as a value beside the storage error, so the caller gives it the same answer
//! as the early check.

use std::collections::BTreeMap;

use diesel::prelude::*;

use super::{
    conflict_on_unique, exclusive,
    schema::{agreement_approvals, agreement_events, agreement_versions},
    Conflict, DbConnection, DbError, LockKey, Missing,
};
use crate::domain::{
    agreement::{
        govern, Agreement, AgreementDocument, AgreementEvent, AgreementHistory, AgreementRef,
        Approval, EventKind, GovernanceAction, GovernanceRefusal, Known, Requester, Standing,
        StatusChange, VersionRecord,
    },
    record_type::RecordTypes,
    AgencyId, AgencyKind, InvalidValue, Timestamp,
};

/// A governed write: done, or refused by the governance rule under the lock.
pub type Governed<T> = Result<T, GovernanceRefusal>;

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

/// Stores a new version (1 for a new agreement, otherwise exactly the next number) if
/// [`govern`] lets `who` draft it.
pub fn insert_version(
    conn: &mut DbConnection,
    document: &AgreementDocument,
    who: &Requester,
    by: &str,
) -> Result<Governed<()>, DbError> {
    exclusive(conn, LockKey::Agreement, |conn| {
        let history =
            load(conn, &document.id)?.unwrap_or_else(|| AgreementHistory::new(&document.id));
        if let Err(refusal) = govern(&history, who, GovernanceAction::Draft(document)) {
            return Ok(Err(refusal));
        }
        add_version(conn, document, by).map(Ok)
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
            created_at: Timestamp::now().micros(),
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
            recorded_at: Timestamp::now().micros(),
        })
        .execute(conn)?;
    Ok(())
}

/// Records the approval of `agreement` by `who`'s agency if [`govern`] allows it. The
/// version becomes the approved one (an `approved` event) once every party it needs has
/// approved it since the latest suspension. Everything is decided under the agreement
/// lock, from the history as it is then. Returns whether the version became approved now.
pub fn approve(
    conn: &mut DbConnection,
    agreement: &AgreementRef,
    who: &Requester,
    by: &str,
) -> Result<Governed<bool>, DbError> {
    exclusive(conn, LockKey::Agreement, |conn| {
        let mut history =
            load(conn, &agreement.id)?.ok_or(DbError::NotFound(Missing::Agreement))?;
        if let Err(refusal) = govern(&history, who, GovernanceAction::Approve(agreement.version)) {
            return Ok(Err(refusal));
        }
        let Some(agency) = who.agency.clone() else {
            // `govern` lets only a party approve, and an agency-less requester is none.
            return Ok(Err(GovernanceRefusal::NotApprovingParty));
        };
        let approval = Approval {
            agency,
            approved_by: by.to_owned(),
            approved_at: Timestamp::now(),
        };
        diesel::insert_into(agreement_approvals::table)
            .values(ApprovalRow {
                agreement_id: agreement.id.clone(),
                version: agreement.version,
                agency_id: approval.agency.to_string(),
                approved_by: approval.approved_by.clone(),
                approved_at: approval.approved_at.micros(),
            })
            .execute(conn)
            .map_err(|e| {
                conflict_on_unique(
                    e,
                    Conflict::AlreadyApproved {
                        agency: approval.agency.to_string(),
                        version: agreement.version,
                    },
                )
            })?;
        if let Some(record) = history
            .versions
            .iter_mut()
            .find(|v| v.version == agreement.version)
        {
            record.approvals.push(approval);
        }
        let complete = history.approval_complete(agreement.version);
        if complete {
            add_event(
                conn,
                &agreement.id,
                EventKind::Approved,
                Some(agreement.version),
                None,
                by,
            )?;
        }
        Ok(Ok(complete))
    })
}

/// Makes a file's version the approved one directly (the admin's `agreements import`).
/// Importing the same document again changes nothing.
pub fn import(
    conn: &mut DbConnection,
    document: &AgreementDocument,
    by: &str,
) -> Result<bool, DbError> {
    exclusive(conn, LockKey::Agreement, |conn| {
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
                    .filter(
                        agreement_events::kind
                            .eq_any([EventKind::Imported.as_str(), EventKind::Approved.as_str()]),
                    )
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

/// Suspends or terminates the agreement (every version) if [`govern`] lets `who` do so.
pub fn change_status(
    conn: &mut DbConnection,
    id: &str,
    change: StatusChange,
    reason: &str,
    who: &Requester,
    by: &str,
) -> Result<Governed<()>, DbError> {
    exclusive(conn, LockKey::Agreement, |conn| {
        let history = load(conn, id)?.ok_or(DbError::NotFound(Missing::Agreement))?;
        if let Err(refusal) = govern(&history, who, GovernanceAction::Change(change)) {
            return Ok(Err(refusal));
        }
        add_event(conn, id, change.event(), None, Some(reason), by).map(Ok)
    })
}

/// Every agreement, by id.
pub fn load_all(conn: &mut DbConnection) -> Result<Vec<AgreementHistory>, DbError> {
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
    assemble(versions, &approvals, events)
}

/// One agreement, if any version of it is stored.
pub fn load(conn: &mut DbConnection, id: &str) -> Result<Option<AgreementHistory>, DbError> {
    let versions: Vec<VersionRow> = agreement_versions::table
        .filter(agreement_versions::agreement_id.eq(id))
        .order(agreement_versions::version)
        .select(VersionRow::as_select())
        .load(conn)?;
    let approvals: Vec<ApprovalRow> = agreement_approvals::table
        .filter(agreement_approvals::agreement_id.eq(id))
        .order(agreement_approvals::approved_at)
        .select(ApprovalRow::as_select())
        .load(conn)?;
    let events: Vec<EventRow> = agreement_events::table
        .filter(agreement_events::agreement_id.eq(id))
        .order(agreement_events::seq)
        .select(EventRow::as_select())
        .load(conn)?;
    Ok(assemble(versions, &approvals, events)?.into_iter().next())
}

/// Rows, ordered by agreement and then version or sequence, into histories by id.
fn assemble(
    versions: Vec<VersionRow>,
    approvals: &[ApprovalRow],
    events: Vec<EventRow>,
) -> Result<Vec<AgreementHistory>, DbError> {
    let mut by_id: BTreeMap<String, AgreementHistory> = BTreeMap::new();
    for row in versions {
        let document: AgreementDocument =
            serde_json::from_str(&row.document).map_err(|_| corrupt("document"))?;
        let approvals = approvals
            .iter()
            .filter(|a| a.agreement_id == row.agreement_id && a.version == row.version)
            .map(|a| {
                Ok(Approval {
                    agency: AgencyId::parse(&a.agency_id).map_err(DbError::Corrupt)?,
                    approved_by: a.approved_by.clone(),
                    approved_at: Timestamp::from_micros(a.approved_at),
                })
            })
            .collect::<Result<_, DbError>>()?;
        by_id
            .entry(row.agreement_id.clone())
            .or_insert_with(|| AgreementHistory::new(&row.agreement_id))
            .versions
            .push(VersionRecord {
                version: row.version,
                document,
                created_by: row.created_by,
                created_at: Timestamp::from_micros(row.created_at),
                approvals,
            });
    }
    for row in events {
        let kind = EventKind::parse(&row.kind).ok_or_else(|| corrupt("event kind"))?;
        if let Some(agreement) = by_id.get_mut(&row.agreement_id) {
            agreement.events.push(AgreementEvent {
                kind,
                version: row.version,
                reason: row.reason,
                recorded_by: row.recorded_by,
                recorded_at: Timestamp::from_micros(row.recorded_at),
            });
        }
    }
    Ok(by_id.into_values().collect())
}

/// The agreements in force on `today`: for each agreement, the version its lifecycle puts
/// in force, if any. Read afresh on every request: no cache can outlive a suspension.
pub fn in_force(
    conn: &mut DbConnection,
    record_types: &RecordTypes,
    today: time::Date,
) -> Result<Vec<Agreement>, DbError> {
    let agencies = known_agencies(conn)?;
    let known = Known {
        agencies: &agencies,
        record_types,
    };
    Ok(load_all(conn)?
        .iter()
        .filter_map(|history| standing(history, &known, today).in_force)
        .collect())
}

/// What the agreements in force are computed from, as counts: every agreement table and
/// the agencies are append-only (a suspension, an approval, a new version or agency adds a
/// row and none is ever changed or removed), so equal counts mean the same rows, in any
/// instance sharing the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChangeMark {
    versions: i64,
    approvals: i64,
    events: i64,
    agencies: i64,
}

/// One statement, as it runs on every read.
fn change_mark(conn: &mut DbConnection) -> Result<ChangeMark, DbError> {
    let (versions, approvals, events, agencies): (
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    ) = super::on_concrete!(conn, |conn| diesel::select((
        agreement_versions::table.count().single_value(),
        agreement_approvals::table.count().single_value(),
        agreement_events::table.count().single_value(),
        super::schema::agencies::table.count().single_value(),
    ))
    .get_result(conn))?;
    Ok(ChangeMark {
        versions: versions.unwrap_or_default(),
        approvals: approvals.unwrap_or_default(),
        events: events.unwrap_or_default(),
        agencies: agencies.unwrap_or_default(),
    })
}

/// The agreements in force, kept between requests while nothing they are computed from
/// has changed: four counts instead of loading and validating every version on each read.
/// A suspension made through any instance changes a count, so the next read anywhere
/// computes afresh; so does a new day.
#[derive(Debug, Default)]
pub struct InForceMemo {
    last: std::sync::Mutex<Option<Remembered>>,
}

/// The agreements in force as computed at a change mark, on a day.
#[derive(Debug)]
struct Remembered {
    mark: ChangeMark,
    day: time::Date,
    agreements: std::sync::Arc<Vec<Agreement>>,
}

impl InForceMemo {
    pub fn in_force(
        &self,
        conn: &mut DbConnection,
        record_types: &RecordTypes,
        today: time::Date,
    ) -> Result<std::sync::Arc<Vec<Agreement>>, DbError> {
        let mark = change_mark(conn)?;
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(remembered) = last.as_ref() {
            if remembered.mark == mark && remembered.day == today {
                return Ok(std::sync::Arc::clone(&remembered.agreements));
            }
        }
        // Computed from a snapshot no older than the mark: a change made in between only
        // makes the next request compute again.
        let agreements = std::sync::Arc::new(in_force(conn, record_types, today)?);
        *last = Some(Remembered {
            mark,
            day: today,
            agreements: std::sync::Arc::clone(&agreements),
        });
        Ok(agreements)
    }
}

/// The agreement's standing on `today`, saying in the log which stored versions no longer
/// validate against today's agencies and record types (an agency or type removed): they
/// cannot be in force, and an operator should know why.
pub fn standing(history: &AgreementHistory, known: &Known<'_>, today: time::Date) -> Standing {
    let standing = history.standing(known, today);
    for version in &standing.unusable {
        tracing::error!(agreement = %history.id, version, "stored agreement no longer validates; not in force");
    }
    standing
}

/// Registered agencies and their kinds, for validating agreements.
pub fn known_agencies(conn: &mut DbConnection) -> Result<BTreeMap<AgencyId, AgencyKind>, DbError> {
    Ok(super::agencies::list(conn)?
        .into_iter()
        .map(|agency| (agency.id, agency.kind))
        .collect())
}
