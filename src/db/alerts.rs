//! Queries on `alert_reviews`: an IG auditor's verdict on a break-glass access.

use std::collections::BTreeSet;

use diesel::prelude::*;

use super::{conflict_on_unique, schema::alert_reviews, Conflict, DbConnection, DbError};
use crate::crypto::Keyring;

#[derive(Insertable)]
#[diesel(table_name = alert_reviews)]
struct ReviewRow {
    leaf_index: i64,
    outcome: String,
    note: Vec<u8>,
    reviewed_by: String,
    reviewed_at: i64,
}

/// Leaf indexes of break-glass entries already reviewed.
pub fn reviewed(conn: &mut DbConnection) -> Result<BTreeSet<i64>, DbError> {
    Ok(alert_reviews::table
        .select(alert_reviews::leaf_index)
        .load::<i64>(conn)?
        .into_iter()
        .collect())
}

/// Records a review; each alert is reviewed once. The note may describe the person, so it
/// is sealed like any other personal text.
pub fn insert_review(
    conn: &mut DbConnection,
    keys: &Keyring,
    leaf_index: u64,
    outcome: &str,
    note: &str,
    reviewed_by: &str,
) -> Result<(), DbError> {
    let row_id = format!("alert:{leaf_index}");
    let note = keys
        .seal(&row_id, "note", note.as_bytes())
        .map_err(|e| DbError::Corrupt(crate::domain::InvalidValue::new("note", e.to_string())))?;
    diesel::insert_into(alert_reviews::table)
        .values(ReviewRow {
            leaf_index: leaf_index as i64,
            outcome: outcome.to_owned(),
            note,
            reviewed_by: reviewed_by.to_owned(),
            reviewed_at: crate::domain::Timestamp::now().micros(),
        })
        .execute(conn)
        .map_err(|e| conflict_on_unique(e, Conflict::AlreadyReviewed))?;
    Ok(())
}
