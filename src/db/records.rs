//! Queries on `records`. The payload (the record's fields and values) is sealed before it
//! is written and opened only when a decision has been made to read it.
//!
//! The payload is sealed bound to the columns that say whose and what it is: subject,
//! holder, type and time. Moved to another subject, relabelled as another holder's or
//! another type, it fails to open, and a read that meets it fails rather than release it
//! as what the row now claims.

use diesel::prelude::*;
use serde_json::Value;

use super::{schema::records, DbConnection, DbError};
use crate::{
    crypto::{CryptoError, Keyring},
    domain::{record::RecordId, subject::SubjectId, AgencyId, InvalidValue, Timestamp},
};

const PAYLOAD: &str = "payload";

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

pub fn insert(
    conn: &mut DbConnection,
    keys: &Keyring,
    record: &Record,
    submitted_by: &str,
) -> Result<(), DbError> {
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
    diesel::insert_into(records::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The subject's records, oldest first, optionally of one type and since an instant. Fails
/// as [`DbError::Corrupt`] if any of them does not open where it now stands.
pub fn for_subject(
    conn: &mut DbConnection,
    keys: &Keyring,
    subject: &SubjectId,
    record_type: Option<&str>,
    since: Option<Timestamp>,
) -> Result<Vec<Record>, DbError> {
    let mut query = records::table
        .filter(records::subject_id.eq(subject.as_str()))
        .order((records::occurred_at, records::id))
        .select(RecordRow::as_select())
        .into_boxed();
    if let Some(record_type) = record_type {
        query = query.filter(records::record_type.eq(record_type.to_owned()));
    }
    if let Some(since) = since {
        query = query.filter(records::occurred_at.ge(since.micros()));
    }
    query
        .load(conn)?
        .into_iter()
        .map(|row| open(keys, row))
        .collect()
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
