//! The audit trail's storage: entries, Merkle nodes and checkpoints.
//!
//! It lives in the audit module rather than `db/` (the one exception to that rule) so that
//! its writing functions can be private to the audit module: nothing else in the crate can
//! append, and nothing at all can update or delete (the schema refuses it as well).

use diesel::{
    connection::SimpleConnection,
    dsl::{exists, max, not},
    prelude::*,
};

use super::{
    entry::{AuditEntry, PendingEntry},
    merkle::{self, CompactRange, Hash, NodeSource},
    Action, Change, Decision, LeafIndex, Receipt,
};
use crate::{
    db::{
        conflict_on_unique,
        schema::{
            alert_reviews, audit_checkpoints, audit_cosignatures, audit_entries, audit_nodes,
        },
        DbConnection, DbError,
    },
    domain::Timestamp,
};

/// Entry rows per multi-row INSERT on SQLite (11 parameters each, well inside its limit).
const SQLITE_ROWS: usize = 64;
/// Rows per multi-row INSERT statement on PostgreSQL (well inside its parameter limit).
const INSERT_CHUNK: usize = 500;

#[derive(Insertable)]
#[diesel(table_name = audit_entries)]
struct EntryRow {
    leaf_index: i64,
    time_micros: i64,
    request_id: String,
    principal_id: Option<String>,
    agency_id: Option<String>,
    subject_id: Option<String>,
    action: String,
    decision: String,
    purpose: Option<String>,
    break_glass: bool,
    leaf_data: Vec<u8>,
}

/// An entry as stored: its searchable columns, exactly as the database holds them (so that
/// verification can compare them with the hashed entry), and its leaf data.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_entries)]
pub struct StoredEntry {
    pub leaf_index: i64,
    pub time_micros: i64,
    pub request_id: String,
    pub principal_id: Option<String>,
    pub agency_id: Option<String>,
    pub subject_id: Option<String>,
    pub action: String,
    pub decision: String,
    pub purpose: Option<String>,
    pub break_glass: bool,
    pub leaf_data: Vec<u8>,
}

impl StoredEntry {
    pub fn index(&self) -> LeafIndex {
        LeafIndex::from_stored(self.leaf_index)
    }

    pub fn time(&self) -> Timestamp {
        Timestamp::from_micros(self.time_micros)
    }

    /// `None` for a name no version of the gateway writes.
    pub fn action(&self) -> Option<Action> {
        Action::parse(&self.action)
    }

    pub fn decision(&self) -> Option<Decision> {
        Decision::parse(&self.decision)
    }
}

#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = audit_nodes)]
pub struct StoredNode {
    pub covers_to: i64,
    pub level: i32,
    pub hash: Vec<u8>,
}

#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = audit_checkpoints)]
pub struct StoredCheckpoint {
    pub tree_size: i64,
    pub root_hash: Vec<u8>,
    pub signed_note: String,
    pub created_at: i64,
}

impl StoredCheckpoint {
    /// The number of entries the checkpoint covers.
    pub fn size(&self) -> u64 {
        u64::try_from(self.tree_size).unwrap_or_default()
    }

    /// Whether its signed note verifies under `key` and says what the row says (size and
    /// root): a row or note altered since it was signed does not.
    pub fn verifies_under(&self, key: &super::checkpoint::VerifierKey) -> bool {
        key.verify(&self.signed_note)
            .is_ok_and(|signed| signed.size == self.size() && signed.root[..] == self.root_hash[..])
    }

    /// The note as it is served: the gateway's signed note, then each witness's
    /// cosignature line kept for it (C2SP `tlog-cosignature`).
    pub fn with_cosignatures(&self, lines: &[String]) -> String {
        self.signed_note.clone() + &lines.concat()
    }
}

/// The last leaf covered by node (`level`, `index`).
pub fn covers_to(level: u32, index: u64) -> i64 {
    i64::try_from(((index + 1) << level) - 1).unwrap_or(i64::MAX)
}

fn corrupt(what: &str) -> DbError {
    DbError::Corrupt(crate::domain::InvalidValue::new("audit", what))
}

/// The reason an entry gives when the change made with it was refused by the database.
pub(super) const CHANGE_REFUSED: &str = "change_refused";
/// The reason an entry gives when its requester stopped waiting before the change was made.
pub(super) const ABANDONED: &str = "abandoned_before_change";

/// An appended entry's receipt, and whether the change made with it was stored.
pub(super) type Appended = (Receipt, Result<(), DbError>);

/// One entry to append, and the change to store with it, if any.
pub(super) struct Append {
    pub entry: PendingEntry,
    pub change: Option<Change>,
}

/// Appends `batch` as the next leaves in one transaction, with their changes, and returns
/// each one's receipt and whether its change was stored. A refused change is rolled back alone
/// (to a savepoint) and its entry is appended as an error; anything else fails the batch.
/// Appends are serialised by the database, so instances sharing it never fork the tree.
pub(super) fn append_batch(
    conn: &mut DbConnection,
    batch: Vec<Append>,
) -> Result<Vec<Appended>, DbError> {
    crate::db::exclusive(conn, crate::db::LockKey::AuditAppend, |conn| {
        append_locked(conn, batch)
    })
}

/// Whether an entry could be appended now: inserts one row into the trail's table, under
/// the same lock as the writer, and rolls it back, so nothing is left. Readiness asks this
/// while the writer's appends are failing, to learn without waiting for traffic (which a
/// load balancer holds back from an instance that is not ready) when storage is back.
pub fn probe_append(conn: &mut DbConnection) -> Result<(), DbError> {
    let probed = crate::db::exclusive(conn, crate::db::LockKey::AuditAppend, |conn| {
        let row = EntryRow {
            leaf_index: stored(LeafIndex(tree_size(conn)?)),
            time_micros: Timestamp::now().micros(),
            request_id: String::new(),
            principal_id: None,
            agency_id: None,
            subject_id: None,
            action: String::new(),
            decision: Decision::Error.as_str().to_owned(),
            purpose: None,
            break_glass: false,
            leaf_data: Vec::new(),
        };
        diesel::insert_into(audit_entries::table)
            .values(&row)
            .execute(conn)?;
        // The error that makes `exclusive` roll the row back.
        Err::<(), _>(DbError::Query(diesel::result::Error::RollbackTransaction))
    });
    match probed {
        Err(DbError::Query(diesel::result::Error::RollbackTransaction)) => Ok(()),
        Err(error) => Err(error),
        Ok(()) => Ok(()),
    }
}

fn append_locked(conn: &mut DbConnection, batch: Vec<Append>) -> Result<Vec<Appended>, DbError> {
    let size = tree_size(conn)?;
    let mut peak_hashes = Vec::new();
    for (level, index) in merkle::peaks(size) {
        peak_hashes.push(StoredNodes(conn).node(level, index)?);
    }
    let mut range = CompactRange::from_peaks(size, peak_hashes).ok_or_else(|| corrupt("peaks"))?;

    let mut entries = Vec::with_capacity(batch.len());
    let mut nodes = Vec::with_capacity(batch.len() * 2);
    let mut receipts = Vec::with_capacity(batch.len());
    for Append {
        entry: mut pending,
        change,
    } in batch
    {
        let refused = match change {
            Some(change) => make(conn, change)?.err(),
            None => None,
        };
        if refused.is_some() {
            pending.decision = Decision::Error;
            CHANGE_REFUSED.clone_into(&mut pending.reason);
        }
        let leaf_index = LeafIndex(range.size());
        let entry = pending.at_index(leaf_index);
        let leaf_data = entry
            .leaf_data()
            .map_err(|_| corrupt("entry cannot be encoded"))?;
        let leaf = merkle::leaf_hash(&leaf_data);
        range.push(leaf, |level, index, hash| {
            nodes.push(StoredNode {
                covers_to: covers_to(level, index),
                level: level as i32,
                hash: hash.to_vec(),
            });
        });
        let receipt = Receipt {
            leaf_index,
            leaf_hash: leaf,
        };
        receipts.push((receipt, refused.map_or(Ok(()), Err)));
        entries.push(EntryRow {
            leaf_index: leaf_index
                .stored()
                .ok_or_else(|| corrupt("tree too large"))?,
            time_micros: entry.time_micros().ok_or_else(|| corrupt("entry time"))?,
            request_id: entry.request_id,
            principal_id: entry.principal_id,
            agency_id: entry.agency_id,
            subject_id: entry.subject_id,
            action: entry.action,
            decision: entry.decision.as_str().to_owned(),
            purpose: entry.purpose,
            break_glass: entry.break_glass,
            leaf_data,
        });
    }
    match conn {
        // One multi-row INSERT per chunk, built here: diesel's SQLite "batch" insert goes
        // row by row and opens a transaction of its own (which BEGIN IMMEDIATE forbids), and
        // per-row statements through diesel's query builder cost more than SQLite itself.
        DbConnection::Sqlite(conn) => {
            use diesel::sql_types::{BigInt, Binary, Bool, Integer, Nullable, Text};
            for chunk in entries.chunks(SQLITE_ROWS) {
                let mut insert = diesel::sql_query(format!(
                    "INSERT INTO audit_entries (leaf_index, time_micros, request_id, principal_id, \
                     agency_id, subject_id, action, decision, purpose, break_glass, leaf_data) VALUES {}",
                    vec!["(?,?,?,?,?,?,?,?,?,?,?)"; chunk.len()].join(",")
                ))
                .into_boxed::<diesel::sqlite::Sqlite>();
                for row in chunk {
                    insert = insert
                        .bind::<BigInt, _>(row.leaf_index)
                        .bind::<BigInt, _>(row.time_micros)
                        .bind::<Text, _>(&row.request_id)
                        .bind::<Nullable<Text>, _>(&row.principal_id)
                        .bind::<Nullable<Text>, _>(&row.agency_id)
                        .bind::<Nullable<Text>, _>(&row.subject_id)
                        .bind::<Text, _>(&row.action)
                        .bind::<Text, _>(&row.decision)
                        .bind::<Nullable<Text>, _>(&row.purpose)
                        .bind::<Bool, _>(row.break_glass)
                        .bind::<Binary, _>(&row.leaf_data);
                }
                insert.execute(conn)?;
            }
            for chunk in nodes.chunks(SQLITE_ROWS * 3) {
                let mut insert = diesel::sql_query(format!(
                    "INSERT INTO audit_nodes (covers_to, level, hash) VALUES {}",
                    vec!["(?,?,?)"; chunk.len()].join(",")
                ))
                .into_boxed::<diesel::sqlite::Sqlite>();
                for node in chunk {
                    insert = insert
                        .bind::<BigInt, _>(node.covers_to)
                        .bind::<Integer, _>(node.level)
                        .bind::<Binary, _>(&node.hash);
                }
                insert.execute(conn)?;
            }
        }
        // Multi-row INSERTs, which diesel offers only on the concrete connection type.
        DbConnection::Postgres(conn) => {
            for chunk in entries.chunks(INSERT_CHUNK) {
                diesel::insert_into(audit_entries::table)
                    .values(chunk)
                    .execute(conn)?;
            }
            for chunk in nodes.chunks(INSERT_CHUNK) {
                diesel::insert_into(audit_nodes::table)
                    .values(chunk)
                    .execute(conn)?;
            }
        }
    }
    Ok(receipts)
}

/// Makes `change` inside a savepoint of the batch's transaction. `Ok(Err(_))`: the database
/// refused it and it was rolled back alone; `Err(_)`: the transaction itself is in doubt.
fn make(conn: &mut DbConnection, change: Change) -> Result<Result<(), DbError>, DbError> {
    conn.batch_execute("SAVEPOINT audited_change")?;
    match change(conn) {
        Ok(()) => {
            conn.batch_execute("RELEASE SAVEPOINT audited_change")?;
            Ok(Ok(()))
        }
        Err(refused) => {
            conn.batch_execute("ROLLBACK TO SAVEPOINT audited_change")?;
            conn.batch_execute("RELEASE SAVEPOINT audited_change")?;
            Ok(Err(refused))
        }
    }
}

pub fn tree_size(conn: &mut DbConnection) -> Result<u64, DbError> {
    let last: Option<i64> = crate::db::on_concrete!(conn, |conn| audit_entries::table
        .select(max(audit_entries::leaf_index))
        .first(conn))?;
    Ok(last.map_or(0, |last| LeafIndex::from_stored(last).0 + 1))
}

/// Stored perfect-subtree hashes, for roots and proofs.
pub struct StoredNodes<'a>(pub &'a mut DbConnection);

impl NodeSource for StoredNodes<'_> {
    type Error = DbError;
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, DbError> {
        let hash: Vec<u8> = crate::db::on_concrete!(self.0, |conn| audit_nodes::table
            .find((covers_to(level, index), level as i32))
            .select(audit_nodes::hash)
            .first(conn)
            .optional())?
        .ok_or_else(|| corrupt("a Merkle node is missing"))?;
        Hash::try_from(hash.as_slice()).map_err(|_| corrupt("a Merkle node is not 32 bytes"))
    }
}

/// The stored column value of `index`; an index beyond any stored one matches nothing.
fn stored(index: LeafIndex) -> i64 {
    index.stored().unwrap_or(i64::MAX)
}

pub fn leaf_data(
    conn: &mut DbConnection,
    leaf_index: LeafIndex,
) -> Result<Option<Vec<u8>>, DbError> {
    Ok(audit_entries::table
        .find(stored(leaf_index))
        .select(audit_entries::leaf_data)
        .first(conn)
        .optional()?)
}

/// The entry at `leaf_index`, if there is one.
pub fn entry_at(
    conn: &mut DbConnection,
    leaf_index: LeafIndex,
) -> Result<Option<StoredEntry>, DbError> {
    Ok(audit_entries::table
        .find(stored(leaf_index))
        .select(StoredEntry::as_select())
        .first(conn)
        .optional()?)
}

/// Search criteria; every one is optional and they combine with AND.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Entries at or after.
    pub from: Option<Timestamp>,
    /// Entries before.
    pub to: Option<Timestamp>,
    pub principal_id: Option<String>,
    pub agency_id: Option<String>,
    pub subject_id: Option<String>,
    pub action: Option<Action>,
    pub decision: Option<Decision>,
    pub break_glass: Option<bool>,
    /// Only entries below this leaf index: a fixed end for exports and verification while
    /// the log goes on growing.
    pub before_index: Option<LeafIndex>,
}

/// Up to `limit` entries matching `filter` after leaf index `after`, in leaf order. The
/// log only grows, so a leaf index is a cursor that never skips or repeats an entry.
pub fn entries(
    conn: &mut DbConnection,
    filter: &Filter,
    after: Option<LeafIndex>,
    limit: i64,
) -> Result<Vec<StoredEntry>, DbError> {
    let mut query = audit_entries::table
        .select(StoredEntry::as_select())
        .order(audit_entries::leaf_index)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(audit_entries::leaf_index.gt(stored(after)));
    }
    if let Some(from) = filter.from {
        query = query.filter(audit_entries::time_micros.ge(from.micros()));
    }
    if let Some(to) = filter.to {
        query = query.filter(audit_entries::time_micros.lt(to.micros()));
    }
    if let Some(principal) = &filter.principal_id {
        query = query.filter(audit_entries::principal_id.eq(principal.clone()));
    }
    if let Some(agency) = &filter.agency_id {
        query = query.filter(audit_entries::agency_id.eq(agency.clone()));
    }
    if let Some(subject) = &filter.subject_id {
        query = query.filter(audit_entries::subject_id.eq(subject.clone()));
    }
    if let Some(action) = filter.action {
        query = query.filter(audit_entries::action.eq(action.name()));
    }
    if let Some(decision) = filter.decision {
        query = query.filter(audit_entries::decision.eq(decision.as_str()));
    }
    if let Some(break_glass) = filter.break_glass {
        query = query.filter(audit_entries::break_glass.eq(break_glass));
    }
    if let Some(before) = filter.before_index {
        query = query.filter(audit_entries::leaf_index.lt(stored(before)));
    }
    Ok(query.load(conn)?)
}

/// Up to `limit` break-glass reads and attempts (`records.read` entries with the flag,
/// granted or denied) that no review answers yet, newest first, below leaf index `before`.
/// Filtered in the database, on the partial index of break-glass entries, so the cost
/// follows the page and not the length of the trail.
pub fn unreviewed_alerts(
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

/// Stored nodes after (`covers_to`, `level`) in key order: the order appends made them.
pub fn nodes_after(
    conn: &mut DbConnection,
    after: Option<(i64, i32)>,
    limit: i64,
) -> Result<Vec<StoredNode>, DbError> {
    let mut query = audit_nodes::table
        .select(StoredNode::as_select())
        .order((audit_nodes::covers_to, audit_nodes::level))
        .limit(limit + 64)
        .into_boxed();
    // A plain range on the key's first column keeps both databases on the primary-key
    // index (an OR of the two columns does not); the few rows at `covers_to` itself that
    // were already read (at most 64 levels) are dropped here.
    if let Some((covers, _)) = after {
        query = query.filter(audit_nodes::covers_to.ge(covers));
    }
    let mut nodes = query.load(conn)?;
    if let Some((covers, level)) = after {
        nodes.retain(|n| (n.covers_to, n.level) > (covers, level));
    }
    nodes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(nodes)
}

pub fn latest_checkpoint(conn: &mut DbConnection) -> Result<Option<StoredCheckpoint>, DbError> {
    Ok(audit_checkpoints::table
        .order(audit_checkpoints::tree_size.desc())
        .select(StoredCheckpoint::as_select())
        .first(conn)
        .optional()?)
}

pub fn checkpoints(conn: &mut DbConnection) -> Result<Vec<StoredCheckpoint>, DbError> {
    Ok(audit_checkpoints::table
        .order(audit_checkpoints::tree_size)
        .select(StoredCheckpoint::as_select())
        .load(conn)?)
}

/// Stores a checkpoint; one already stored for that size (by another instance) is kept.
pub(super) fn insert_checkpoint(
    conn: &mut DbConnection,
    tree_size: u64,
    root: &Hash,
    signed_note: &str,
) -> Result<(), DbError> {
    let row = StoredCheckpoint {
        tree_size: i64::try_from(tree_size).map_err(|_| corrupt("tree too large"))?,
        root_hash: root.to_vec(),
        signed_note: signed_note.to_owned(),
        created_at: Timestamp::now().micros(),
    };
    match diesel::insert_into(audit_checkpoints::table)
        .values(&row)
        .execute(conn)
        .map_err(|e| conflict_on_unique(e, crate::db::Conflict::ChangedConcurrently))
    {
        Ok(_) | Err(DbError::Conflict(_)) => Ok(()),
        Err(other) => Err(other),
    }
}

/// Keeps a witness's cosignature line of the checkpoint of `tree_size`; one already kept for
/// that checkpoint and witness (by another instance) stays.
pub fn insert_cosignature(
    conn: &mut DbConnection,
    tree_size: u64,
    witness: &str,
    signature_line: &str,
) -> Result<(), DbError> {
    let tree_size = i64::try_from(tree_size).map_err(|_| corrupt("tree too large"))?;
    match diesel::insert_into(audit_cosignatures::table)
        .values((
            audit_cosignatures::tree_size.eq(tree_size),
            audit_cosignatures::witness.eq(witness),
            audit_cosignatures::signature_line.eq(signature_line),
            audit_cosignatures::received_at.eq(Timestamp::now().micros()),
        ))
        .execute(conn)
        .map_err(|e| conflict_on_unique(e, crate::db::Conflict::ChangedConcurrently))
    {
        Ok(_) | Err(DbError::Conflict(_)) => Ok(()),
        Err(other) => Err(other),
    }
}

/// The cosignature lines kept for the checkpoint of `tree_size`, by witness name.
pub fn cosignatures(conn: &mut DbConnection, tree_size: u64) -> Result<Vec<String>, DbError> {
    let tree_size = i64::try_from(tree_size).map_err(|_| corrupt("tree too large"))?;
    Ok(audit_cosignatures::table
        .filter(audit_cosignatures::tree_size.eq(tree_size))
        .order(audit_cosignatures::witness)
        .select(audit_cosignatures::signature_line)
        .load(conn)?)
}

/// Every cosignature line kept, by the size of the checkpoint it cosigns.
pub fn all_cosignatures(
    conn: &mut DbConnection,
) -> Result<std::collections::BTreeMap<u64, Vec<String>>, DbError> {
    let rows: Vec<(i64, String)> = audit_cosignatures::table
        .order((audit_cosignatures::tree_size, audit_cosignatures::witness))
        .select((
            audit_cosignatures::tree_size,
            audit_cosignatures::signature_line,
        ))
        .load(conn)?;
    let mut by_size = std::collections::BTreeMap::<u64, Vec<String>>::new();
    for (size, line) in rows {
        let size = u64::try_from(size).map_err(|_| corrupt("cosigned tree size"))?;
        by_size.entry(size).or_default().push(line);
    }
    Ok(by_size)
}

/// The largest checkpoint `witness` is known to have cosigned, by any instance.
pub fn latest_cosigned_size(
    conn: &mut DbConnection,
    witness: &str,
) -> Result<Option<u64>, DbError> {
    let size: Option<i64> = audit_cosignatures::table
        .filter(audit_cosignatures::witness.eq(witness))
        .select(max(audit_cosignatures::tree_size))
        .first(conn)?;
    Ok(size.and_then(|size| u64::try_from(size).ok()))
}

/// Parses stored leaf data back into its entry.
pub fn decode(entry: &StoredEntry) -> Result<AuditEntry, DbError> {
    AuditEntry::from_leaf_data(&entry.leaf_data).map_err(|_| corrupt("stored leaf data"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        audit::{Decision, PendingEntry},
        config::DatabaseUrl,
        db::Database,
    };

    #[test]
    fn batches_append_contiguously_with_their_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::connect(&DatabaseUrl::Sqlite(dir.path().join("a.db"))).unwrap();
        database.migrate().unwrap();
        let batch = |n: usize| {
            (0..n)
                .map(|i| Append {
                    entry: PendingEntry::new(
                        &format!("r{i}"),
                        crate::audit::Action::WhoamiRead,
                        Decision::Granted,
                        "ok",
                    ),
                    change: None,
                })
                .collect::<Vec<_>>()
        };
        let first = database
            .run_blocking(|conn| append_batch(conn, batch(3)))
            .unwrap();
        let second = database
            .run_blocking(|conn| append_batch(conn, batch(4)))
            .unwrap();
        let receipts: Vec<Receipt> = first.into_iter().chain(second).map(|(r, _)| r).collect();
        let indexes: Vec<u64> = receipts.iter().map(|r| r.leaf_index.0).collect();
        assert_eq!(indexes, (0..7).collect::<Vec<_>>());
        let leaves: Vec<Hash> = receipts.iter().map(|r| r.leaf_hash).collect();
        let root = database
            .run_blocking(|conn| merkle::root(&mut StoredNodes(conn), 7))
            .unwrap();
        let mut reference = merkle::MemoryTree::from_leaf_hashes(leaves);
        assert_eq!(root, merkle::root(&mut reference, 7).unwrap());
    }

    #[test]
    fn a_change_commits_with_its_entry_and_a_refused_one_leaves_only_its_entry() {
        use crate::{
            db::agencies,
            domain::{Agency, AgencyId, AgencyKind},
        };
        let dir = tempfile::tempdir().unwrap();
        let database = Database::connect(&DatabaseUrl::Sqlite(dir.path().join("a.db"))).unwrap();
        database.migrate().unwrap();
        let agency = |id: &str| {
            Agency::new(AgencyId::parse(id).unwrap(), AgencyKind::Health, "A trust").unwrap()
        };
        let insert = |id: &'static str| -> Change {
            Box::new(move |conn| agencies::insert(conn, &agency(id)))
        };
        let append = |request: &str, change: Option<Change>| Append {
            entry: PendingEntry::new(request, Action::WhoamiRead, Decision::Granted, "ok"),
            change,
        };
        let outcomes = database
            .run_blocking(|conn| {
                append_batch(
                    conn,
                    vec![
                        append("stored", Some(insert("first-trust"))),
                        // The same id again: the database refuses it.
                        append("refused", Some(insert("first-trust"))),
                        append("plain", None),
                    ],
                )
            })
            .unwrap();
        assert!(outcomes[0].1.is_ok());
        assert!(outcomes[1].1.is_err());
        assert!(outcomes[2].1.is_ok());
        let indexes: Vec<u64> = outcomes.iter().map(|(r, _)| r.leaf_index.0).collect();
        assert_eq!(indexes, vec![0, 1, 2]);

        database
            .run_blocking(|conn| {
                assert_eq!(agencies::list(conn)?.len(), 1);
                let decisions: Vec<(String, String)> = (0..3)
                    .map(|i| {
                        let entry = decode(&entry_at(conn, LeafIndex(i))?.unwrap())?;
                        Ok((entry.decision.as_str().to_owned(), entry.reason))
                    })
                    .collect::<Result<_, DbError>>()?;
                assert_eq!(
                    decisions,
                    vec![
                        ("granted".to_owned(), "ok".to_owned()),
                        ("error".to_owned(), CHANGE_REFUSED.to_owned()),
                        ("granted".to_owned(), "ok".to_owned()),
                    ]
                );
                Ok(())
            })
            .unwrap();
    }
}
