//! Queries on `alert_reviews`: an IG auditor's verdict on a break-glass access.

use std::collections::BTreeMap;

use diesel::prelude::*;

use super::{conflict_on_unique, schema::alert_reviews, Conflict, DbConnection, DbError};
use crate::{
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

/// Leaf indexes per query when reading verdicts: well inside either database's limit on
/// bound parameters, however many alerts a period holds.
const VERDICTS_PER_QUERY: usize = 500;

/// A review's outcome and when it was given: what the IG report shows of a review. The note
/// is not read, since it may describe the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `justified` or `unjustified`, as the review stored it.
    pub outcome: String,
    pub reviewed_at: Timestamp,
}

/// The verdicts given on the alerts at `leaf_indexes`, by leaf index; an alert not yet
/// reviewed has none.
pub fn verdicts(
    conn: &mut DbConnection,
    leaf_indexes: &[LeafIndex],
) -> Result<BTreeMap<LeafIndex, Verdict>, DbError> {
    let stored: Vec<i64> = leaf_indexes
        .iter()
        .filter_map(|index| index.stored())
        .collect();
    let mut verdicts = BTreeMap::new();
    for chunk in stored.chunks(VERDICTS_PER_QUERY) {
        let rows: Vec<(i64, String, i64)> = alert_reviews::table
            .filter(alert_reviews::leaf_index.eq_any(chunk.to_vec()))
            .select((
                alert_reviews::leaf_index,
                alert_reviews::outcome,
                alert_reviews::reviewed_at,
            ))
            .load(conn)?;
        for (leaf_index, outcome, reviewed_at) in rows {
            verdicts.insert(
                LeafIndex::from_stored(leaf_index),
                Verdict {
                    outcome,
                    reviewed_at: Timestamp::from_micros(reviewed_at),
                },
            );
        }
    }
    Ok(verdicts)
}
