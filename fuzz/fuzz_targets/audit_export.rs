//! Exported audit entries (`concordat audit export --format ndjson`: one leaf data a line,
//! RFC 8785 JSON), read by `AuditEntry::from_leaf_data` as the verifier and the API read
//! stored leaves, rendered as FHIR by `export::audit_event`, and a log of the accepted
//! entries checked by `verify::TreeCheck`, the streaming core of `concordat audit verify`.
//!
//! Holds: accepted leaf data is exactly the entry's canonical encoding; an accepted time
//! re-renders to the same microsecond; the FHIR rendering is an AuditEvent; a log of the
//! accepted entries, stored as the gateway stores them, verifies against its root and
//! every inclusion and consistency proof of it verifies; changing one row's search column
//! is named at that row.

#![no_main]

use concordat::{
    audit::{
        entry::{format_time, AuditEntry},
        export::audit_event,
        merkle::{self, CompactRange, MemoryTree},
        store::{covers_to, StoredEntry, StoredNode},
        verify::{Failure, TreeCheck},
    },
    domain::{LeafIndex, Timestamp},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut log = Vec::new();
    for line in data.split(|b| *b == b'\n').take(64) {
        let Ok(entry) = AuditEntry::from_leaf_data(line) else {
            continue;
        };
        assert_eq!(entry.leaf_data().ok().as_deref(), Some(line));
        let event = audit_event(&entry, "concordat.fuzz/log");
        assert_eq!(event["resourceType"], "AuditEvent");
        if let Some(micros) = entry.time_micros() {
            let canonical = format_time(Timestamp::from_micros(micros));
            let mut again = entry.clone();
            again.time = canonical.clone();
            assert_eq!(
                again.time_micros(),
                Some(micros),
                "time {:?} is {micros} µs but renders as {canonical:?}",
                entry.time
            );
            log.push(again);
        }
    }
    check_log(log);
});

/// The entries as consecutive leaves, stored as `audit::store` appends them.
fn check_log(entries: Vec<AuditEntry>) {
    let mut range = CompactRange::default();
    let mut rows = Vec::new();
    let mut nodes = Vec::new();
    let mut leaves = Vec::new();
    for (index, mut entry) in entries.into_iter().enumerate() {
        entry.leaf_index = index as u64;
        let leaf_data = entry.leaf_data().expect("an accepted entry re-encodes");
        let leaf = merkle::leaf_hash(&leaf_data);
        leaves.push(leaf);
        range.push(leaf, |level, index, hash| {
            nodes.push(StoredNode {
                covers_to: covers_to(level, index),
                level: level as i32,
                hash: hash.to_vec(),
            });
        });
        rows.push(StoredEntry {
            leaf_index: index as i64,
            time_micros: entry.time_micros().expect("a time that parsed"),
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
    let size = rows.len() as u64;
    let root = range.root();
    let verify = |rows: &[StoredEntry]| {
        let fault = Failure::Checkpoint {
            tree_size: size,
            reason: "root".into(),
        };
        let mut tree = TreeCheck::new(vec![(size, root, fault)]);
        let mut stored = nodes.iter().cloned();
        for row in rows {
            tree.leaf(row, &mut stored)?;
        }
        tree.finish(&mut stored)
    };
    if size == 0 {
        // The gateway signs no checkpoint of the empty tree (`checkpointer::checkpoint_now`),
        // and `TreeCheck` reports one as never reached: an empty log has nothing to match.
        let mut stored = nodes.iter().cloned();
        assert_eq!(TreeCheck::new(Vec::new()).finish(&mut stored), Ok(0));
        return;
    }
    assert_eq!(verify(&rows), Ok(size));

    let mut tree = MemoryTree::from_leaf_hashes(leaves.iter().copied());
    assert_eq!(merkle::root(&mut tree, size), Ok(root));
    for (index, leaf) in leaves.iter().enumerate() {
        let proof = merkle::inclusion_proof(&mut tree, index as u64, size).expect("in memory");
        assert!(merkle::verify_inclusion(
            leaf,
            index as u64,
            size,
            &proof,
            &root
        ));
    }
    for first in 1..=size {
        let first_root = merkle::root(&mut tree, first).expect("in memory");
        let proof = merkle::consistency_proof(&mut tree, first, size).expect("in memory");
        assert!(merkle::verify_consistency(
            first,
            size,
            &first_root,
            &root,
            &proof
        ));
    }

    // A search column changed behind the hash is named at its row.
    let last = rows.len() - 1;
    let mut tampered = rows.clone();
    tampered[last].break_glass = !tampered[last].break_glass;
    match verify(&tampered) {
        Err(Failure::Leaf { index, .. }) => assert_eq!(index, LeafIndex(last as u64)),
        other => panic!("a changed column gave {other:?}"),
    }
}
