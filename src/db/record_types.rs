//! Queries on `record_type_catalogues`: every set of record type definitions the gateway has
//! served under, so that a past decision is replayed with the types in force when it was
//! made, whatever `record-types.toml` says today.

use diesel::prelude::*;
use ring::digest::{digest, SHA256};

use super::{exclusive, schema::record_type_catalogues, DbConnection, DbError, LockKey};
use crate::domain::{record_type::RecordTypes, InvalidValue, Timestamp};

/// One stored set of definitions.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub version: i32,
    pub record_types: RecordTypes,
    /// Hex SHA-256 of the stored definition: equal digests, equal definitions.
    pub sha256: String,
    pub registered_at: Timestamp,
}

/// Stores `types` as the catalogue in force from `now`, unless the newest stored version
/// defines exactly the same; returns the version in force. A gateway calls this before it
/// serves, so every entry it writes is later than the version it decides by.
pub fn register(
    conn: &mut DbConnection,
    types: &RecordTypes,
    now: Timestamp,
) -> Result<i32, DbError> {
    let definition = types
        .definition()
        .map_err(|e| DbError::Corrupt(InvalidValue::new("record_types", e.0)))?;
    let sha256 = hex::encode(digest(&SHA256, definition.as_bytes()));
    exclusive(conn, LockKey::RecordTypes, |conn| {
        let newest: Option<(i32, String)> = record_type_catalogues::table
            .order(record_type_catalogues::version.desc())
            .select((
                record_type_catalogues::version,
                record_type_catalogues::sha256,
            ))
            .first(conn)
            .optional()?;
        if let Some((version, stored)) = &newest {
            if *stored == sha256 {
                return Ok(*version);
            }
        }
        let version = newest.map_or(1, |(version, _)| version + 1);
        diesel::insert_into(record_type_catalogues::table)
            .values((
                record_type_catalogues::version.eq(version),
                record_type_catalogues::definition.eq(&definition),
                record_type_catalogues::sha256.eq(&sha256),
                record_type_catalogues::registered_at.eq(now.micros()),
            ))
            .execute(conn)?;
        Ok(version)
    })
}

/// The catalogue in force at `at`: the newest registered at or before it. `None` before the
/// first was registered (an entry written before this table existed).
pub fn in_force_at(conn: &mut DbConnection, at: Timestamp) -> Result<Option<Catalogue>, DbError> {
    let row: Option<(i32, String, String, i64)> = record_type_catalogues::table
        .filter(record_type_catalogues::registered_at.le(at.micros()))
        .order(record_type_catalogues::version.desc())
        .select((
            record_type_catalogues::version,
            record_type_catalogues::definition,
            record_type_catalogues::sha256,
            record_type_catalogues::registered_at,
        ))
        .first(conn)
        .optional()?;
    let Some((version, definition, sha256, registered_at)) = row else {
        return Ok(None);
    };
    let record_types =
        RecordTypes::from_definition(&definition, &format!("record type catalogue {version}"))
            .map_err(|e| DbError::Corrupt(InvalidValue::new("record_types", e.0)))?;
    Ok(Some(Catalogue {
        version,
        record_types,
        sha256,
        registered_at: Timestamp::from_micros(registered_at),
    }))
}
