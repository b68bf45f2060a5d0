//! Queries on `alert_reviews`: an IG auditor's verdict on a break-glass access, and the
//! break-glass entries still waiting for one.

use diesel::{
    dsl::{exists, not},
    prelude::*,
};

use super::{
    conflict_on_unique,
    schema::{alert_reviews, audit_entries},
    Conflict, DbConnection, DbError,
};
use crate::{
    audit::{store::StoredEntry, Action, Decision},
    crypto::Keyring,
    domain::{LeafIndex, Timestamp},
};

#[derive(Insertable)]
#[diesel(table_name = alert_reviews)]
struct ReviewRow {
    leaf_index: i64,
    outcome: String,
    note: Vec<u8>,
    reviewed_by: String,
    reviewed_at: i64,
}

/// What a reviewer records about one alert.
#[derive(Debug, Clone, Copy)]
pub struct Review<'a> {
    pub leaf_index: LeafIndex,
    pub outcome: &'a str,
    pub note: &'a str,
    pub reviewed_by: &'a str,
}

/// Up to `limit` break-glass reads and attempts (`records.read` entries with the flag,
/// granted or denied) that no review answers yet, newest first, below leaf index `before`.
/// Filtered in the database, on the partial index of break-glass entries, so the cost
/// follows the page and not the length of the trail.
pub fn unreviewed(
    conn: &mut DbConnection,
    before: Option<LeafIndex>,
    limit: i64,
) -> Result<Vec<StoredEntry>, DbError> {
    let mut query = audit_entries::table
        .select(StoredEntry::as_select())
        // The bare column, as the partial index's own condition is written, so that SQLite
        // can see that the index covers the query (it would not with a bound `= ?`).
        .filter(audit_entries::break_glass)
        .filter(audit_entries::action.eq(Action::RecordsRead.name()))
        .filter(
            audit_entries::decision.eq_any([Decision::Granted.as_str(), Decision::Denied.as_str()]),
        )
        .filter(not(exists(alert_reviews::table.filter(
            alert_reviews::leaf_index.eq(audit_entries::leaf_index),
        ))))
        .order(audit_entries::leaf_index.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before.and_then(LeafIndex::stored) {
        query = query.filter(audit_entries::leaf_index.lt(before));
    }
    Ok(query.load(conn)?)
}

pub fn is_reviewed(conn: &mut DbConnection, leaf_index: LeafIndex) -> Result<bool, DbError> {
    let Some(stored) = leaf_index.stored() else {
        return Ok(false);
    };
    Ok(alert_reviews::table
        .find(stored)
        .select(alert_reviews::leaf_index)
        .first::<i64>(conn)
        .optional()?
        .is_some())
}

/// Records a review; each alert is reviewed once. The note may describe the person, so it
/// is sealed like any other personal text.
pub fn insert_review(
    conn: &mut DbConnection,
    keys: &Keyring,
    review: Review<'_>,
) -> Result<(), DbError> {
    let invalid =
        |message: String| DbError::Corrupt(crate::domain::InvalidValue::new("note", message));
    let leaf_index = review
        .leaf_index
        .stored()
        .ok_or_else(|| invalid("no such leaf index".to_owned()))?;
    let row_id = format!("alert:{}", review.leaf_index);
    let note = keys
        .seal(&row_id, "note", review.note.as_bytes())
        .map_err(|e| invalid(e.to_string()))?;
    diesel::insert_into(alert_reviews::table)
        .values(ReviewRow {
            leaf_index,
            outcome: review.outcome.to_owned(),
            note,
            reviewed_by: review.reviewed_by.to_owned(),
            reviewed_at: Timestamp::now().micros(),
        })
        .execute(conn)
        .map_err(|e| conflict_on_unique(e, Conflict::AlreadyReviewed))?;
    Ok(())
}
