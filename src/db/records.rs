//! Queries on `records`. The payload (the record's fields and values) is sealed before it
//! is written and opened only when a decision has been made to read it.
//!
//! The payload is sealed bound to the columns that say whose and what it is: subject,
//! holder, type and time. Moved to another subject, relabelled as another holder's or
//! another type, it fails to open, and a read that meets it fails rather than release it
//! as what the row now claims.
//!
//! Payloads written before they were bound (format 1: bound to row and column only) are
//! refused the same way, until the schema owner's `concordat migrate` re-seals them bound
//! ([`unbound`], [`rebind`], [`reseal`]). That is the one rewrite of this append-only table:
//! it changes the payload column only, and lifts the append-only guard inside its own
//! transaction, restoring it before commit.

use diesel::{
    connection::SimpleConnection,
    prelude::*,
    sql_types::{Binary, Integer},
};
use serde_json::Value;

use super::{exclusive, schema::records, DbConnection, DbError, LockKey};
use crate::{
    crypto::{CryptoError, Keyring, FORMAT_V1},
    domain::{record::RecordId, subject::SubjectId, AgencyId, InvalidValue, Timestamp},
};

const PAYLOAD: &str = "payload";

diesel::define_sql_function! {
    /// Bytes of a BLOB (SQLite) or bytea (PostgreSQL), from 1: the same in both.
    fn substr(bytes: Binary, start: Integer, length: Integer) -> Binary;
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = records)]
struct RecordRow {
    id: String,
    subject_id: String,
    record_type: String,
    holder: String,
    occurred_at: i64,
    payload: Vec<u8>,
    submitted_by: String,
    created_at: i64,
}

impl RecordRow {
    /// What the payload is bound to besides its row and column; every column the read
    /// releases or decides by.
    fn binding(&self) -> [String; 4] {
        [
            self.subject_id.clone(),
            self.holder.clone(),
            self.record_type.clone(),
            self.occurred_at.to_string(),
        ]
    }
}

/// A record as submitted or read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: RecordId,
    pub subject: SubjectId,
    pub record_type: String,
    pub holder: AgencyId,
    pub occurred_at: Timestamp,
    pub data: Value,
}

fn corrupt(what: &str) -> DbError {
    DbError::Corrupt(InvalidValue::new("record", what))
}

fn unsealable(error: &CryptoError) -> DbError {
    corrupt(&error.to_string())
}

/// A record sealed for storage, ready to insert: sealing (the costly part) is done by the
/// caller, not inside the transaction that stores it.
pub struct SealedRecord(RecordRow);

/// Seals `record`'s payload bound to its row, as [`insert`] stores it.
pub fn seal(keys: &Keyring, record: &Record, submitted_by: &str) -> Result<SealedRecord, DbError> {
    let payload = serde_json::to_vec(&record.data).map_err(|_| corrupt("data"))?;
    let mut row = RecordRow {
        id: record.id.to_string(),
        subject_id: record.subject.to_string(),
        record_type: record.record_type.clone(),
        holder: record.holder.to_string(),
        occurred_at: record.occurred_at.micros(),
        payload: Vec::new(),
        submitted_by: submitted_by.to_owned(),
        created_at: Timestamp::now().micros(),
    };
    let binding = row.binding();
    row.payload = keys
        .seal_bound(
            &row.id,
            PAYLOAD,
            &binding.each_ref().map(String::as_str),
            &payload,
        )
        .map_err(|e| unsealable(&e))?;
    Ok(SealedRecord(row))
}

pub fn insert(conn: &mut DbConnection, record: &SealedRecord) -> Result<(), DbError> {
    // On the audit writer's thread, inside its batch: every microsecond here delays the batch.
    super::on_concrete!(conn, |conn| diesel::insert_into(records::table)
        .values(&record.0)
        .execute(conn))?;
    Ok(())
}

/// Which of a subject's records a read asks for.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Only records of this type.
    pub record_type: Option<String>,
    /// Only records that occurred at or after this instant.
    pub since: Option<Timestamp>,
    /// Only records after this one, newest first: where the previous page ended.
    pub after: Option<RecordCursor>,
}

/// Where a page of records ended: the next page starts with the record after this one in
/// newest-first order (occurred, then id, both descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordCursor {
    pub occurred_at: Timestamp,
    pub id: RecordId,
}

/// One page of a subject's records, and where the next begins (`None` on the last page).
#[derive(Debug)]
pub struct RecordPage {
    pub records: Vec<Record>,
    pub next: Option<RecordCursor>,
}

/// A page of the subject's records, newest first, of which at most `limit` are `shown`
/// to the reader (`shown(holder, type)`: the rules' answer, decided without opening the
/// record). Records not shown that fall within the page are opened too, so the read's
/// audit entry can account for them. The page also ends once the payloads opened reach
/// `budget` bytes, or it has considered `MAX_CONSIDERED` records (it always holds at least
/// one), so one read can neither decrypt a subject's whole history nor hold a connection
/// for long. `next` is set only when a record the reader would be shown follows: a record
/// that is not shown is never revealed by a page boundary. Fails as [`DbError::Corrupt`] if
/// a record does not open where it now stands.
pub fn page_for_subject(
    conn: &mut DbConnection,
    keys: &Keyring,
    subject: &SubjectId,
    filter: &RecordFilter,
    limit: usize,
    budget: usize,
    shown: impl Fn(&str, &str) -> bool,
) -> Result<RecordPage, DbError> {
    let mut page = RecordPage {
        records: Vec::new(),
        next: None,
    };
    let (mut shown_count, mut opened) = (0usize, 0usize);
    let mut after = filter.after.clone();
    loop {
        let rows = newest_first(
            conn,
            subject,
            filter,
            after.as_ref(),
            limit.saturating_add(1),
        )?;
        if rows.is_empty() {
            return Ok(page);
        }
        for row in rows {
            let full = shown_count >= limit
                || (!page.records.is_empty()
                    && (opened >= budget || page.records.len() >= MAX_CONSIDERED));
            if full {
                if shown(&row.holder, &row.record_type)
                    || any_shown_after(conn, subject, filter, after.as_ref(), &shown)?
                {
                    page.next = after;
                }
                return Ok(page);
            }
            shown_count += usize::from(shown(&row.holder, &row.record_type));
            opened = opened.saturating_add(row.payload.len());
            after = Some(RecordCursor {
                occurred_at: Timestamp::from_micros(row.occurred_at),
                id: RecordId::parse(&row.id).map_err(DbError::Corrupt)?,
            });
            page.records.push(open(keys, row)?);
        }
    }
}

/// Most records one page considers, shown or not.
const MAX_CONSIDERED: usize = 1000;

/// Up to `fetch` of the subject's records after `after`, newest first.
fn newest_first(
    conn: &mut DbConnection,
    subject: &SubjectId,
    filter: &RecordFilter,
    after: Option<&RecordCursor>,
    fetch: usize,
) -> Result<Vec<RecordRow>, DbError> {
    let fetch = i64::try_from(fetch).unwrap_or(i64::MAX);
    if filter.record_type.is_none() && filter.since.is_none() && after.is_none() {
        // The common read, on a statement prepared once.
        let query = records::table
            .filter(records::subject_id.eq(subject.as_str()))
            .order((records::occurred_at.desc(), records::id.desc()))
            .limit(fetch);
        return Ok(super::on_concrete!(conn, |conn| query
            .select(RecordRow::as_select())
            .load(conn))?);
    }
    Ok(matching(subject, filter, after)
        .select(RecordRow::as_select())
        .limit(fetch)
        .load(conn)?)
}

/// Whether any record after `after` would be shown: read by holder and type only, a
/// batch at a time, never opening a payload.
fn any_shown_after(
    conn: &mut DbConnection,
    subject: &SubjectId,
    filter: &RecordFilter,
    after: Option<&RecordCursor>,
    shown: &impl Fn(&str, &str) -> bool,
) -> Result<bool, DbError> {
    const BATCH: usize = 1000;
    let mut after = after.cloned();
    loop {
        let rows: Vec<(i64, String, String, String)> = matching(subject, filter, after.as_ref())
            .select((
                records::occurred_at,
                records::id,
                records::holder,
                records::record_type,
            ))
            .limit(i64::try_from(BATCH).unwrap_or(i64::MAX))
            .load(conn)?;
        if rows
            .iter()
            .any(|(_, _, holder, record_type)| shown(holder, record_type))
        {
            return Ok(true);
        }
        match rows.last() {
            Some((at, id, _, _)) if rows.len() == BATCH => {
                after = Some(RecordCursor {
                    occurred_at: Timestamp::from_micros(*at),
                    id: RecordId::parse(id).map_err(DbError::Corrupt)?,
                });
            }
            _ => return Ok(false),
        }
    }
}

/// The subject's records that `filter` asks for, after `after`, newest first.
fn matching<'a>(
    subject: &SubjectId,
    filter: &RecordFilter,
    after: Option<&RecordCursor>,
) -> records::BoxedQuery<'a, <DbConnection as Connection>::Backend> {
    let mut query = records::table
        .filter(records::subject_id.eq(subject.as_str().to_owned()))
        .order((records::occurred_at.desc(), records::id.desc()))
        .into_boxed();
    if let Some(record_type) = &filter.record_type {
        query = query.filter(records::record_type.eq(record_type.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(records::occurred_at.ge(since.micros()));
    }
    if let Some(after) = after {
        let at = after.occurred_at.micros();
        query = query.filter(
            records::occurred_at.lt(at).or(records::occurred_at
                .eq(at)
                .and(records::id.lt(after.id.as_str().to_owned()))),
        );
    }
    query
}

/// The records with these ids that are stored, in no particular order: what an auditor's
/// replay of a read considers again. Each is opened, or, if it does not open where it now
/// stands (moved or altered), given as its id alone: the replay says so rather than fail.
pub fn by_ids(
    conn: &mut DbConnection,
    keys: &Keyring,
    ids: &[RecordId],
) -> Result<Vec<Result<Record, String>>, DbError> {
    let mut found = Vec::with_capacity(ids.len());
    // A read considers at most `MAX_CONSIDERED` records; chunks keep any list within the
    // backends' limits on bound parameters.
    for chunk in ids.chunks(MAX_CONSIDERED) {
        let rows: Vec<RecordRow> = records::table
            .filter(records::id.eq_any(chunk.iter().map(RecordId::as_str)))
            .select(RecordRow::as_select())
            .load(conn)?;
        for row in rows {
            let id = row.id.clone();
            found.push(open(keys, row).map_err(|_| id));
        }
    }
    Ok(found)
}

/// Whether the subject has any record at all (development mode seeds only empty subjects).
pub fn any_for_subject(conn: &mut DbConnection, subject: &SubjectId) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(
        records::table.filter(records::subject_id.eq(subject.as_str())),
    ))
    .get_result(conn)?)
}

fn open(keys: &Keyring, row: RecordRow) -> Result<Record, DbError> {
    let binding = row.binding();
    let payload = keys
        .open_bound(
            &row.id,
            PAYLOAD,
            &binding.each_ref().map(String::as_str),
            &row.payload,
        )
        .map_err(|e| unsealable(&e))?;
    Ok(Record {
        id: RecordId::parse(&row.id).map_err(DbError::Corrupt)?,
        subject: SubjectId::parse(&row.subject_id).map_err(DbError::Corrupt)?,
        record_type: row.record_type,
        holder: AgencyId::parse(&row.holder).map_err(DbError::Corrupt)?,
        occurred_at: Timestamp::from_micros(row.occurred_at),
        data: serde_json::from_slice(&payload).map_err(|_| corrupt("payload"))?,
    })
}

/// Payloads sealed before payloads were bound: their first byte says so.
fn is_unbound() -> diesel::dsl::Eq<substr<records::payload, i32, i32>, Vec<u8>> {
    substr(records::payload, 1, 1).eq(vec![FORMAT_V1])
}

/// How many payloads are still sealed unbound.
pub fn count_unbound(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(records::table
        .filter(is_unbound())
        .count()
        .get_result(conn)?)
}

/// The ids of up to `limit` records whose payload is still sealed unbound, in id order, after
/// `after`, so a caller can walk them all in batches.
pub fn unbound(
    conn: &mut DbConnection,
    after: Option<&RecordId>,
    limit: i64,
) -> Result<Vec<RecordId>, DbError> {
    let mut query = records::table
        .filter(is_unbound())
        .order(records::id)
        .limit(limit)
        .select(records::id)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(records::id.gt(after.to_string()));
    }
    query
        .load::<String>(conn)?
        .iter()
        .map(|id| RecordId::parse(id).map_err(DbError::Corrupt))
        .collect()
}

/// A payload sealed unbound, and the same payload sealed bound to its row as it stands;
/// written by [`reseal`].
pub struct Rebound {
    row: RecordRow,
    payload: Vec<u8>,
}

impl Rebound {
    pub fn id(&self) -> &str {
        &self.row.id
    }
}

/// Seals the unbound payloads of `ids` again, bound to their rows as they stand, and writes
/// nothing: a payload that does not open (another key, another row's) fails the lot before
/// anything is changed. Records already bound are left out.
pub fn rebind(
    conn: &mut DbConnection,
    keys: &Keyring,
    ids: &[RecordId],
) -> Result<Vec<Rebound>, DbError> {
    records::table
        .filter(records::id.eq_any(ids.iter().map(ToString::to_string)))
        .filter(is_unbound())
        .order(records::id)
        .select(RecordRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|row| {
            let binding = row.binding();
            let payload = keys
                .rebind(
                    &row.id,
                    PAYLOAD,
                    &binding.each_ref().map(String::as_str),
                    &row.payload,
                )
                .map_err(|e| unsealable(&e))?;
            Ok(Rebound { row, payload })
        })
        .collect()
}

/// The statements that lift and restore the guard refusing UPDATE on `records`, for the
/// schema owner only. Each backend guards the table its own way (see the migration that
/// created `records`): SQLite with a trigger, dropped and re-created exactly as the
/// migration made it; PostgreSQL with one trigger, disabled for a transaction (which only
/// the table's owner may do).
pub fn update_guard(conn: &DbConnection) -> (&'static str, &'static str) {
    match conn {
        DbConnection::Sqlite(_) => (
            "DROP TRIGGER records_no_update;",
            "CREATE TRIGGER records_no_update BEFORE UPDATE ON records \
             BEGIN SELECT RAISE(ABORT, 'append-only'); END;",
        ),
        DbConnection::Postgres(_) => (
            "ALTER TABLE records DISABLE TRIGGER records_append_only;",
            "ALTER TABLE records ENABLE TRIGGER records_append_only;",
        ),
    }
}

/// Writes the re-sealed payloads in one transaction, as the schema owner: the append-only
/// guard on `records` is lifted inside it and restored before it commits, so no other
/// connection ever sees `records` writable. A row whose payload or bound columns changed
/// since [`rebind`] read it is left as it is. Returns how many were re-sealed.
pub fn reseal(conn: &mut DbConnection, rebound: &[Rebound]) -> Result<usize, DbError> {
    let (lift, restore) = update_guard(conn);
    exclusive(conn, LockKey::Migration, |conn| {
        conn.batch_execute(lift)?;
        let mut resealed = 0;
        for Rebound { row, payload } in rebound {
            resealed += diesel::update(
                records::table
                    .filter(records::id.eq(&row.id))
                    .filter(records::payload.eq(&row.payload))
                    .filter(records::subject_id.eq(&row.subject_id))
                    .filter(records::holder.eq(&row.holder))
                    .filter(records::record_type.eq(&row.record_type))
                    .filter(records::occurred_at.eq(row.occurred_at)),
            )
            .set(records::payload.eq(payload))
            .execute(conn)?;
        }
        conn.batch_execute(restore)?;
        Ok(resealed)
    })
}
