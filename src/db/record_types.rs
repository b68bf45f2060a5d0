//! Queries on `record_type_catalogues`: every set of record type definitions a gateway has
//! decided by, kept by digest, so that a past read is replayed with exactly the definitions
//! its entry names (`record_types_sha256`), whatever `record-types.toml` says today.

use diesel::prelude::*;
use ring::digest::{digest, SHA256};

use super::{exclusive, schema::record_type_catalogues, DbConnection, DbError, LockKey};
use crate::domain::{record_type::RecordTypes, InvalidValue, Timestamp};

/// One stored set of definitions.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub version: i32,
    pub record_types: RecordTypes,
    pub sha256: String,
    /// When it was first stored.
    pub registered_at: Timestamp,
}

fn invalid(message: String) -> DbError {
    DbError::Corrupt(InvalidValue::new("record_types", message))
}

/// Stores `types` unless a version with the same definitions is stored already, and
/// returns the hex SHA-256 of their definition: what a read's entry names.
pub fn register(conn: &mut DbConnection, types: &RecordTypes) -> Result<String, DbError> {
    let definition = types.definition().map_err(|e| invalid(e.0))?;
    let sha256 = hex::encode(digest(&SHA256, definition.as_bytes()));
    exclusive(conn, LockKey::RecordTypes, |conn| {
        let stored: i64 = record_type_catalogues::table
            .filter(record_type_catalogues::sha256.eq(&sha256))
            .count()
            .get_result(conn)?;
        if stored == 0 {
            let newest: Option<i32> = record_type_catalogues::table
                .select(diesel::dsl::max(record_type_catalogues::version))
                .first(conn)?;
            diesel::insert_into(record_type_catalogues::table)
                .values((
                    record_type_catalogues::version.eq(newest.unwrap_or_default() + 1),
                    record_type_catalogues::definition.eq(&definition),
                    record_type_catalogues::sha256.eq(&sha256),
                    record_type_catalogues::registered_at.eq(Timestamp::now().micros()),
                ))
                .execute(conn)?;
        }
        Ok(sha256)
    })
}

/// The definitions whose digest is `sha256`, if stored. The stored text is digested again:
/// a definition altered in storage is refused, not replayed as if it had been decided by.
pub fn by_sha256(conn: &mut DbConnection, sha256: &str) -> Result<Option<Catalogue>, DbError> {
    let row: Option<(i32, String, i64)> = record_type_catalogues::table
        .filter(record_type_catalogues::sha256.eq(sha256))
        .order(record_type_catalogues::version)
        .select((
            record_type_catalogues::version,
            record_type_catalogues::definition,
            record_type_catalogues::registered_at,
        ))
        .first(conn)
        .optional()?;
    let Some((version, definition, registered_at)) = row else {
        return Ok(None);
    };
    if hex::encode(digest(&SHA256, definition.as_bytes())) != sha256 {
        return Err(invalid(format!(
            "record type definitions version {version} do not match their digest"
        )));
    }
    let record_types = RecordTypes::from_definition(
        &definition,
        &format!("record type definitions version {version}"),
    )
    .map_err(|e| invalid(e.0))?;
    Ok(Some(Catalogue {
        version,
        record_types,
        sha256: sha256.to_owned(),
        registered_at: Timestamp::from_micros(registered_at),
    }))
}
