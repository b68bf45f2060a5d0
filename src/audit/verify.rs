//! Full verification of the stored audit trail, as `concordat audit verify` runs it.
//!
//! Recomputes every leaf hash from the stored leaf data and every node of the tree from
//! those, compares them with the stored nodes (which proofs are served from) and with the
//! root of every signed checkpoint, checks each checkpoint's signature and that consecutive
//! checkpoints are consistent, and optionally that the log extends a witness's checkpoint.
//! It stops at the first fault and names the leaf index or checkpoint. Memory stays
//! O(log n): entries and nodes are streamed in the order appends wrote them.

use std::{borrow::Cow, collections::VecDeque, sync::mpsc, time::Instant};

use serde::Deserialize;

use super::{
    checkpoint::VerifierKey,
    entry::format_time,
    merkle::{self, CompactRange, Hash},
    store::{self, covers_to, StoredEntry, StoredNode, StoredNodes},
    LeafIndex,
};
use crate::{
    db::{Database, DbConnection, DbError},
    domain::Timestamp,
};

const ENTRY_PAGE: i64 = 10_000;
const NODE_PAGE: i64 = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("leaf {index}: {reason}")]
    Leaf { index: LeafIndex, reason: String },
    #[error("checkpoint at tree size {tree_size}: {reason}")]
    Checkpoint { tree_size: u64, reason: String },
    #[error("witness checkpoint: {0}")]
    Witness(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub entries: u64,
    pub checkpoints: usize,
}

fn leaf_fault(index: LeafIndex, reason: impl Into<String>) -> Failure {
    Failure::Leaf {
        index,
        reason: reason.into(),
    }
}

/// The streaming check, pure: feed it stored rows in leaf order and the stored nodes.
#[derive(Debug)]
pub struct TreeCheck {
    range: CompactRange,
    /// (tree size, root) that must match, smallest first.
    expected_roots: VecDeque<(u64, Hash, Failure)>,
}

impl TreeCheck {
    /// `expected_roots`: each tree size with the root it must have, and the failure to
    /// report if it does not.
    pub fn new(mut expected_roots: Vec<(u64, Hash, Failure)>) -> Self {
        expected_roots.sort_by_key(|(size, _, _)| *size);
        Self {
            range: CompactRange::default(),
            expected_roots: expected_roots.into(),
        }
    }

    pub fn checked(&self) -> u64 {
        self.range.size()
    }

    /// Checks the next stored row against its position, its own leaf data and the stored
    /// nodes its append completed.
    pub fn leaf(
        &mut self,
        row: &StoredEntry,
        stored_nodes: &mut impl Iterator<Item = StoredNode>,
    ) -> Result<(), Failure> {
        let position = LeafIndex(self.range.size());
        if position.stored() != Some(row.leaf_index) {
            return Err(leaf_fault(
                position,
                format!(
                    "missing or out of order: the next stored entry is leaf {}",
                    row.leaf_index
                ),
            ));
        }
        let entry: HashedColumns<'_> = serde_json::from_slice(&row.leaf_data)
            .map_err(|e| leaf_fault(position, format!("leaf data is not an audit entry: {e}")))?;
        if entry.leaf_index != position {
            return Err(leaf_fault(
                position,
                format!("the entry records leaf index {}", entry.leaf_index),
            ));
        }
        if !entry.matches(row) {
            return Err(leaf_fault(
                position,
                "search columns disagree with the hashed entry",
            ));
        }
        let mut completed = Vec::with_capacity(4);
        self.range
            .push(merkle::leaf_hash(&row.leaf_data), |level, index, hash| {
                completed.push((level, index, *hash));
            });
        for (level, index, hash) in completed {
            let matches = stored_nodes.next().is_some_and(|node| {
                node.covers_to == covers_to(level, index)
                    && node.level == level as i32
                    && node.hash == hash
            });
            if !matches {
                return Err(leaf_fault(
                    position,
                    if level == 0 {
                        "the stored leaf hash does not match the entry".to_owned()
                    } else {
                        format!(
                            "the stored Merkle node at level {level} does not match the entries"
                        )
                    },
                ));
            }
        }
        while self
            .expected_roots
            .front()
            .is_some_and(|(size, _, _)| *size == self.range.size())
        {
            if let Some((_, root, failure)) = self.expected_roots.pop_front() {
                if root != self.range.root() {
                    return Err(failure);
                }
            }
        }
        Ok(())
    }

    /// After the last row: nothing may be left over on either side.
    pub fn finish(
        mut self,
        stored_nodes: &mut impl Iterator<Item = StoredNode>,
    ) -> Result<u64, Failure> {
        if let Some((size, _, _)) = self.expected_roots.pop_front() {
            return Err(Failure::Checkpoint {
                tree_size: size,
                reason: format!("covers {size} entries but {} are stored", self.range.size()),
            });
        }
        if stored_nodes.next().is_some() {
            return Err(leaf_fault(
                LeafIndex(self.range.size()),
                "Merkle nodes are stored beyond the last entry",
            ));
        }
        Ok(self.range.size())
    }
}

/// The members of an entry that the store also keeps as search columns, borrowed from
/// the leaf data. (Verification needs no more: the hash covers every byte, so a full parse
/// and re-encoding would only cost time.)
#[derive(Deserialize)]
struct HashedColumns<'a> {
    leaf_index: LeafIndex,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    request_id: Cow<'a, str>,
    #[serde(borrow)]
    principal_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    agency_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    subject_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    decision: Cow<'a, str>,
    #[serde(borrow)]
    purpose: Option<Cow<'a, str>>,
    break_glass: bool,
}

impl HashedColumns<'_> {
    fn matches(&self, row: &StoredEntry) -> bool {
        let same = |a: &Option<Cow<'_, str>>, b: &Option<String>| a.as_deref() == b.as_deref();
        self.time == format_time(Timestamp::from_micros(row.time_micros))
            && self.request_id == row.request_id
            && same(&self.principal_id, &row.principal_id)
            && same(&self.agency_id, &row.agency_id)
            && same(&self.subject_id, &row.subject_id)
            && self.action == row.action
            && self.decision == row.decision
            && same(&self.purpose, &row.purpose)
            && self.break_glass == row.break_glass
    }
}

/// Stored nodes in key order, a page at a time; a database error ends the iteration and
/// is kept for the caller.
struct NodePager<'a> {
    conn: &'a mut DbConnection,
    buffer: VecDeque<StoredNode>,
    after: Option<(i64, i32)>,
    /// Nodes covering leaves from this index on were appended after verification began.
    end: LeafIndex,
    exhausted: bool,
    error: Option<DbError>,
}

impl Iterator for NodePager<'_> {
    type Item = StoredNode;
    fn next(&mut self) -> Option<StoredNode> {
        if self.buffer.is_empty() && !self.exhausted {
            match store::nodes_after(self.conn, self.after, NODE_PAGE) {
                Ok(page) => {
                    self.exhausted = (page.len() as i64) < NODE_PAGE;
                    self.buffer.extend(page);
                }
                Err(error) => {
                    self.error = Some(error);
                    self.exhausted = true;
                }
            }
        }
        let node = self.buffer.pop_front()?;
        if LeafIndex::from_stored(node.covers_to) >= self.end {
            self.exhausted = true;
            self.buffer.clear();
            return None;
        }
        self.after = Some((node.covers_to, node.level));
        Some(node)
    }
}

/// Feeds every page of entries to `tree`, with the stored nodes beside them.
fn stream(
    tree: &mut TreeCheck,
    pages: mpsc::Receiver<Result<Vec<StoredEntry>, DbError>>,
    nodes: &mut NodePager<'_>,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Result<(), Failure>, DbError> {
    for page in pages {
        let page = page?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            if let Err(failure) = tree.leaf(row, nodes) {
                return Ok(Err(failure));
            }
        }
        progress(tree.checked(), total);
    }
    Ok(Ok(()))
}

/// Verifies the whole stored trail. `progress` is told how many entries are done and the
/// total. The outer `Result` is a database failure, the inner one a fault in the trail.
pub fn verify_database(
    database: &Database,
    key: &VerifierKey,
    origin: &str,
    witness: Option<&str>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Result<Report, Failure>, DbError> {
    let started = Instant::now();
    let outcome = database.run_blocking(|reader| {
        database.run_blocking(|conn| check(reader, conn, key, origin, witness, progress))
    })?;
    if let Ok(report) = &outcome {
        tracing::info!(entries = report.entries, checkpoints = report.checkpoints, elapsed = ?started.elapsed(), "audit trail verified");
    }
    Ok(outcome)
}

/// `reader` streams entries on a second thread while this one reads nodes and hashes:
/// the two halves take about as long as each other, and the machine has two cores.
fn check(
    reader: &mut DbConnection,
    conn: &mut DbConnection,
    key: &VerifierKey,
    origin: &str,
    witness: Option<&str>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Result<Report, Failure>, DbError> {
    let total = store::tree_size(conn)?;
    let stored_checkpoints = store::checkpoints(conn)?;
    let mut expected = Vec::new();
    let mut signed = Vec::new();
    for stored in &stored_checkpoints {
        let tree_size = stored.size();
        let fault = |reason: &str| Failure::Checkpoint {
            tree_size,
            reason: reason.to_owned(),
        };
        let checkpoint = match key.verify(&stored.signed_note) {
            Ok(checkpoint) => checkpoint,
            Err(error) => return Ok(Err(fault(&error.to_string()))),
        };
        if checkpoint.origin != origin {
            return Ok(Err(fault("signed for another origin")));
        }
        if checkpoint.size != tree_size || checkpoint.root.as_slice() != stored.root_hash.as_slice()
        {
            return Ok(Err(fault(
                "the stored size or root differs from the signed one",
            )));
        }
        expected.push((
            tree_size,
            checkpoint.root,
            fault("its root does not match the entries"),
        ));
        signed.push((tree_size, checkpoint.root));
    }
    if let Some(note) = witness {
        let checkpoint = match key.verify(note) {
            Ok(checkpoint) => checkpoint,
            Err(error) => return Ok(Err(Failure::Witness(error.to_string()))),
        };
        if checkpoint.origin != origin {
            return Ok(Err(Failure::Witness("signed for another origin".into())));
        }
        expected.push((
            checkpoint.size,
            checkpoint.root,
            Failure::Witness(format!(
                "the log does not extend it: the root at size {} differs",
                checkpoint.size
            )),
        ));
    }

    let mut tree = TreeCheck::new(expected);
    // Verification covers the tree as it was when it began: a gateway may go on appending.
    let mut nodes = NodePager {
        conn: &mut *conn,
        buffer: VecDeque::new(),
        after: None,
        end: LeafIndex(total),
        exhausted: false,
        error: None,
    };
    let streamed = std::thread::scope(|scope| {
        let (pages, received) = mpsc::sync_channel::<Result<Vec<StoredEntry>, DbError>>(4);
        scope.spawn(move || {
            let mut after = None;
            let below = store::Filter {
                before_index: Some(LeafIndex(total)),
                ..store::Filter::default()
            };
            loop {
                let page = store::entries(reader, &below, after, ENTRY_PAGE);
                let last = page
                    .as_ref()
                    .ok()
                    .and_then(|p| p.last().map(StoredEntry::index));
                let done = last.is_none();
                // A closed channel means the checker stopped at a fault: stop too.
                if pages.send(page).is_err() || done {
                    return;
                }
                after = last;
            }
        });
        stream(&mut tree, received, &mut nodes, total, progress)
    })?;
    let finished = streamed.and_then(|()| tree.finish(&mut nodes));
    if let Some(error) = nodes.error.take() {
        return Err(error);
    }
    let entries = match finished {
        Ok(entries) => entries,
        Err(failure) => return Ok(Err(failure)),
    };

    for pair in signed.windows(2) {
        if let [(first, first_root), (second, second_root)] = pair {
            let proof = merkle::consistency_proof(&mut StoredNodes(conn), *first, *second)?;
            if !merkle::verify_consistency(*first, *second, first_root, second_root, &proof) {
                return Ok(Err(Failure::Checkpoint {
                    tree_size: *second,
                    reason: format!("not consistent with the checkpoint at size {first}"),
                }));
            }
        }
    }
    Ok(Ok(Report {
        entries,
        checkpoints: stored_checkpoints.len(),
    }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::audit::{AuditEntry, Decision, PendingEntry};

    /// Rows and nodes as the store would hold them for `n` entries.
    fn stored_log(n: u64) -> (Vec<StoredEntry>, Vec<StoredNode>, Hash) {
        let mut range = CompactRange::default();
        let mut rows = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..n {
            let mut pending = PendingEntry::new(
                &format!("req-{i}"),
                crate::audit::Action::WhoamiRead,
                Decision::Granted,
                "ok",
            );
            pending.time_micros = 1_700_000_000_000_000 + i as i64;
            pending.principal_id = Some(format!("p{}", i % 3));
            let entry = pending.at_index(crate::audit::LeafIndex(i));
            let leaf_data = entry.leaf_data().unwrap();
            range.push(merkle::leaf_hash(&leaf_data), |level, index, hash| {
                nodes.push(StoredNode {
                    covers_to: covers_to(level, index),
                    level: level as i32,
                    hash: hash.to_vec(),
                });
            });
            rows.push(StoredEntry {
                leaf_index: i as i64,
                time_micros: entry.time_micros().unwrap(),
                request_id: entry.request_id,
                principal_id: entry.principal_id,
                agency_id: None,
                subject_id: None,
                action: entry.action,
                decision: "granted".into(),
                purpose: None,
                break_glass: false,
                leaf_data,
            });
        }
        (rows, nodes, range.root())
    }

    fn run(
        rows: &[StoredEntry],
        nodes: &[StoredNode],
        size: u64,
        root: Hash,
    ) -> Result<u64, Failure> {
        let fault = Failure::Checkpoint {
            tree_size: size,
            reason: "root".into(),
        };
        let mut tree = TreeCheck::new(vec![(size, root, fault)]);
        let mut nodes = nodes.iter().cloned();
        for row in rows {
            tree.leaf(row, &mut nodes)?;
        }
        tree.finish(&mut nodes)
    }

    fn failing_index(result: Result<u64, Failure>) -> Option<u64> {
        match result {
            Err(Failure::Leaf { index, .. }) => Some(index.0),
            _ => None,
        }
    }

    #[test]
    fn an_untouched_log_verifies() {
        let (rows, nodes, root) = stored_log(37);
        assert_eq!(run(&rows, &nodes, 37, root), Ok(37));
    }

    #[test]
    fn a_checkpoint_beyond_the_entries_is_named() {
        let (rows, nodes, root) = stored_log(5);
        assert!(matches!(
            run(&rows, &nodes, 6, root),
            Err(Failure::Checkpoint { tree_size: 6, .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn a_changed_entry_is_named(n in 1u64..2000, seed in any::<u64>()) {
            let (mut rows, nodes, root) = stored_log(n);
            let i = seed % n;
            let mut entry = AuditEntry::from_leaf_data(&rows[i as usize].leaf_data).unwrap();
            entry.reason = "rewritten".into();
            rows[i as usize].leaf_data = entry.leaf_data().unwrap();
            prop_assert_eq!(failing_index(run(&rows, &nodes, n, root)), Some(i));
        }

        #[test]
        fn a_dropped_entry_is_named(n in 2u64..2000, seed in any::<u64>()) {
            let (mut rows, nodes, root) = stored_log(n);
            let i = seed % (n - 1);
            rows.remove(i as usize);
            prop_assert_eq!(failing_index(run(&rows, &nodes, n, root)), Some(i));
        }

        #[test]
        fn a_duplicated_entry_is_named(n in 1u64..2000, seed in any::<u64>()) {
            let (mut rows, nodes, root) = stored_log(n);
            let i = seed % n;
            let copy = rows[i as usize].clone();
            rows.insert(i as usize + 1, copy);
            prop_assert_eq!(failing_index(run(&rows, &nodes, n, root)), Some(i + 1));
        }

        #[test]
        fn reordered_entries_are_named(n in 2u64..2000, seed in any::<u64>()) {
            let (mut rows, nodes, root) = stored_log(n);
            let i = seed % (n - 1);
            let j = i + 1 + (seed / 7) % (n - 1 - i);
            rows.swap(i as usize, j as usize);
            prop_assert_eq!(failing_index(run(&rows, &nodes, n, root)), Some(i));
        }

        #[test]
        fn an_entry_rewritten_with_its_index_and_column_still_fails_at_its_index(n in 1u64..500, seed in any::<u64>()) {
            // The forger keeps positions and search columns consistent; only the hashes
            // (stored nodes, signed roots) can give the change away.
            let (mut rows, nodes, root) = stored_log(n);
            let i = seed % n;
            let mut entry = AuditEntry::from_leaf_data(&rows[i as usize].leaf_data).unwrap();
            entry.released = vec!["health.crisis_plan.diagnosis:clinical".into()];
            rows[i as usize].leaf_data = entry.leaf_data().unwrap();
            prop_assert_eq!(failing_index(run(&rows, &nodes, n, root)), Some(i));
        }
    }
}
