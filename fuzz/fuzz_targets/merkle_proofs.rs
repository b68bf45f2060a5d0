//! The RFC 9162 proofs `concordat audit verify` and the API's entry and consistency
//! answers rest on (`audit::merkle`): proofs computed over an in-memory tree of up to
//! 300 leaves, and the verifiers given arbitrary sizes, indices and proof hashes.
//!
//! Holds: a computed inclusion or consistency proof verifies; a fuzzed proof verifies only
//! if it is the computed one; the verifiers never panic, whatever sizes they are given;
//! a compact range built from a tree's peaks has the tree's root.

#![no_main]

use concordat::audit::merkle::{self, CompactRange, Hash, MemoryTree};
use libfuzzer_sys::fuzz_target;

fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = N.min(data.len());
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let size = u64::from(u16::from_le_bytes(take(&mut data))) % 300 + 1;
    let index = u64::from_le_bytes(take(&mut data));
    let first = u64::from_le_bytes(take(&mut data));
    let raw_second = u64::from_le_bytes(take(&mut data));
    let proof: Vec<Hash> = data
        .chunks(32)
        .map(|chunk| {
            let mut hash = [0u8; 32];
            hash[..chunk.len()].copy_from_slice(chunk);
            hash
        })
        .take(80)
        .collect();

    let leaves: Vec<Hash> = (0..size)
        .map(|i| merkle::leaf_hash(&i.to_le_bytes()))
        .collect();
    let mut tree = MemoryTree::from_leaf_hashes(leaves.iter().copied());
    let root = merkle::root(&mut tree, size).expect("in memory");

    // Arbitrary arguments: an answer, never a panic.
    let leaf = proof.first().copied().unwrap_or_default();
    let _ = merkle::verify_inclusion(&leaf, index, raw_second, &proof, &root);
    let _ = merkle::verify_consistency(first, raw_second, &leaf, &root, &proof);

    let at = index % size;
    let computed = merkle::inclusion_proof(&mut tree, at, size).expect("in memory");
    assert!(merkle::verify_inclusion(
        &leaves[at as usize],
        at,
        size,
        &computed,
        &root
    ));
    if merkle::verify_inclusion(&leaves[at as usize], at, size, &proof, &root) {
        assert_eq!(proof, computed, "a second inclusion proof verified");
    }
    if computed.len() == proof.len() && computed != proof {
        assert!(!merkle::verify_inclusion(
            &leaves[at as usize],
            at,
            size,
            &proof,
            &root
        ));
    }

    let first = first % size + 1;
    let second = first + raw_second % (size - first + 1);
    let first_root = merkle::root(&mut tree, first).expect("in memory");
    let second_root = merkle::root(&mut tree, second).expect("in memory");
    let computed = merkle::consistency_proof(&mut tree, first, second).expect("in memory");
    assert!(merkle::verify_consistency(
        first,
        second,
        &first_root,
        &second_root,
        &computed
    ));
    if merkle::verify_consistency(first, second, &first_root, &second_root, &proof) {
        assert_eq!(proof, computed, "a second consistency proof verified");
    }

    let peaks: Vec<Hash> = merkle::peaks(second)
        .into_iter()
        .map(|(level, index)| {
            use merkle::NodeSource;
            tree.node(level, index).expect("in memory")
        })
        .collect();
    let range = CompactRange::from_peaks(second, peaks).expect("one hash a peak");
    assert_eq!(range.size(), second);
    assert_eq!(range.root(), second_root);
});
