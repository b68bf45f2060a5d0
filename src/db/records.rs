//! Queries on `records`. The payload (the record's fields and values) is sealed before it
//! is written and opened only when a decision has been made to read it.

use diesel::prelude::*;
use serde_json::Value;

use super::{schema::records, DbConnection, DbError};
use crate::{
    crypto::Keyring,
    domain::{record::RecordId, subject::SubjectId, AgencyId, InvalidValue},
};

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

/// A record as submitted or read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: RecordId,
    pub subject: SubjectId,
    pub record_type: String,
    pub holder: AgencyId,
    /// Microseconds since the epoch, UTC.
    pub occurred_at: i64,
    pub data: Value,
}

fn corrupt(what: &str) -> DbError {
    DbError::Corrupt(InvalidValue::new("record", what))
}

pub fn insert(
    conn: &mut DbConnection,
    keys: &Keyring,
    record: &Record,
    submitted_by: &str,
) -> Result<(), DbError> {
    let payload = serde_json::to_vec(&record.data).map_err(|_| corrupt("data"))?;
    let row = RecordRow {
        id: record.id.to_string(),
        subject_id: record.subject.to_string(),
        record_type: record.record_type.clone(),
        holder: record.holder.to_string(),
        occurred_at: record.occurred_at,
        payload: keys
            .seal(record.id.as_str(), "payload", &payload)
            .map_err(|e| corrupt(&e.to_string()))?,
        submitted_by: submitted_by.to_owned(),
        created_at: crate::domain::Timestamp::now().micros(),
    };
    diesel::insert_into(records::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The subject's records, oldest first, optionally of one type and since an instant.
pub fn for_subject(
    conn: &mut DbConnection,
    keys: &Keyring,
    subject: &SubjectId,
    record_type: Option<&str>,
    since: Option<i64>,
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
        query = query.filter(records::occurred_at.ge(since));
    }
    query
        .load(conn)?
        .into_iter()
        .map(|row| {
            let payload = keys
                .open(&row.id, "payload", &row.payload)
                .map_err(|e| corrupt(&e.to_string()))?;
            Ok(Record {
                id: RecordId::parse(&row.id).map_err(DbError::Corrupt)?,
                subject: SubjectId::parse(&row.subject_id).map_err(DbError::Corrupt)?,
                record_type: row.record_type,
                holder: AgencyId::parse(&row.holder).map_err(DbError::Corrupt)?,
                occurred_at: row.occurred_at,
                data: serde_json::from_slice(&payload).map_err(|_| corrupt("payload"))?,
            })
        })
        .collect()
}
