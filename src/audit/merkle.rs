//! The RFC 9162 (Certificate Transparency v2) Merkle tree, pure: leaf and node hashes,
//! roots, inclusion and consistency proofs and their verification.
//!
//! Stored trees are addressed by perfect subtrees: level `L`, index `i` covers leaves
//! `[i·2^L, (i+1)·2^L)`. Every hash a proof needs is a perfect subtree or is built from
//! O(log n) of them, so a proof at a million entries reads a few dozen stored nodes.

use ring::digest::{Context, SHA256};

pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut context = Context::new(&SHA256);
    context.update(&[0x00]);
    context.update(data);
    finish(context)
}

/// `SHA-256(0x01 || left || right)`
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut context = Context::new(&SHA256);
    context.update(&[0x01]);
    context.update(left);
    context.update(right);
    finish(context)
}

/// The root of the empty tree: `SHA-256()`.
pub fn empty_root() -> Hash {
    finish(Context::new(&SHA256))
}

fn finish(context: Context) -> Hash {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(context.finish().as_ref());
    hash
}

/// Where stored perfect-subtree hashes come from (the database, or memory in tests).
pub trait NodeSource {
    type Error;
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// The largest power of two strictly less than `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH of leaves `[start, end)`, where `start` is a multiple of the subtree sizes the
/// RFC's recursion produces (always true for the calls below).
fn subtree<S: NodeSource>(source: &mut S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let n = end - start;
    if n.is_power_of_two() {
        let level = n.trailing_zeros();
        return source.node(level, start >> level);
    }
    let k = split(n);
    let left = subtree(source, start, start + k)?;
    let right = subtree(source, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// MTH of the first `size` leaves.
pub fn root<S: NodeSource>(source: &mut S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        Ok(empty_root())
    } else {
        subtree(source, 0, size)
    }
}

/// RFC 9162 §2.1.3.1 PATH(index, D[size]), leaf level first. `index < size`.
pub fn inclusion_proof<S: NodeSource>(
    source: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    path(source, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path<S: NodeSource>(
    source: &mut S,
    m: u64,
    start: u64,
    end: u64,
    proof: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(source, m, start, start + k, proof)?;
        proof.push(subtree(source, start + k, end)?);
    } else {
        path(source, m - k, start + k, end, proof)?;
        proof.push(subtree(source, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.1 PROOF(first, D[second]). `0 < first <= second`.
pub fn consistency_proof<S: NodeSource>(
    source: &mut S,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    if first > 0 && first < second {
        subproof(source, first, 0, second, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof<S: NodeSource>(
    source: &mut S,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    proof: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            proof.push(subtree(source, start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(source, m, start, start + k, whole, proof)?;
        proof.push(subtree(source, start + k, end)?);
    } else {
        subproof(source, m - k, start + k, end, false, proof)?;
        proof.push(subtree(source, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.3.2: does `proof` show leaf `leaf` at `index` in the tree of `size`
/// leaves with root `root`?
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// RFC 9162 §2.1.4.2: does `proof` show the tree of `first` leaves with root `first_root`
/// is a prefix of the tree of `second` leaves with root `second_root`?
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    let mut proof = proof.to_vec();
    if first.is_power_of_two() {
        proof.insert(0, *first_root);
    }
    let Some((seed, rest)) = proof.split_first() else {
        return false;
    };
    let (mut f_n, mut s_n) = (first - 1, second - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (*seed, *seed);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    f_r == *first_root && s_r == *second_root && s_n == 0
}

/// The perfect subtrees (level, index) whose roots summarise the first `size` leaves,
/// largest first: the "peaks" an append starts from.
pub fn peaks(size: u64) -> Vec<(u32, u64)> {
    let mut start = 0;
    let mut out = Vec::new();
    for level in (0..64u32).rev() {
        let width = 1u64 << level;
        if size & width != 0 {
            out.push((level, start >> level));
            start += width;
        }
    }
    out
}

/// A compact range: the peaks of a tree, enough to append leaves and compute its root
/// without the leaves themselves (O(log n) memory).
#[derive(Debug, Clone, Default)]
pub struct CompactRange {
    size: u64,
    peaks: Vec<Hash>,
}

impl CompactRange {
    /// From the peak hashes of a tree of `size` leaves, in the order of [`peaks`].
    pub fn from_peaks(size: u64, peaks: Vec<Hash>) -> Option<Self> {
        (peaks.len() == size.count_ones() as usize).then_some(Self { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash and reports every perfect subtree it completes, as
    /// `(level, index, hash)`, level 0 (the leaf itself) first.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let mut index = self.size;
        let mut level = 0;
        let mut hash = leaf;
        completed(level, index, &hash);
        while index & 1 == 1 {
            let Some(left) = self.peaks.pop() else { break };
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            completed(level, index, &hash);
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        match peaks.next() {
            None => empty_root(),
            Some(last) => peaks.fold(*last, |acc, peak| node_hash(peak, &acc)),
        }
    }
}

/// Every perfect subtree of a list of leaves, in memory: for tests and small tools.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn from_leaf_hashes(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut tree = Self::default();
        let mut range = CompactRange::default();
        for leaf in leaves {
            range.push(leaf, |level, _, hash| {
                let level = level as usize;
                if tree.levels.len() <= level {
                    tree.levels.resize_with(level + 1, Vec::new);
                }
                if let Some(row) = tree.levels.get_mut(level) {
                    row.push(*hash);
                }
            });
        }
        tree
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }
}

/// A node the tree does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingNode {
    pub level: u32,
    pub index: u64,
}

impl NodeSource for MemoryTree {
    type Error = MissingNode;
    fn node(&mut self, level: u32, index: u64) -> Result<Hash, MissingNode> {
        self.levels
            .get(level as usize)
            .and_then(|row| row.get(usize::try_from(index).ok()?))
            .copied()
            .ok_or(MissingNode { level, index })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// RFC 6962 as written, recursively over the leaves: the independent reference.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn unhex(s: &str) -> Hash {
        let mut out = [0u8; 32];
        out.copy_from_slice(&hex::decode(s).unwrap());
        out
    }

    /// The RFC 6962 test vectors published with Certificate Transparency's reference
    /// implementations: eight leaves and the root after each.
    #[test]
    fn rfc6962_published_roots() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let hashes: Vec<Hash> = inputs.iter().map(|d| leaf_hash(d)).collect();
        let mut tree = MemoryTree::from_leaf_hashes(hashes.clone());
        for (size, expected) in (1..=8).zip(roots) {
            assert_eq!(
                root(&mut tree, size).unwrap(),
                unhex(expected),
                "size {size}"
            );
            let mut range = CompactRange::default();
            for h in &hashes[..size as usize] {
                range.push(*h, |_, _, _| {});
            }
            assert_eq!(range.root(), unhex(expected), "compact range, size {size}");
        }
        assert_eq!(
            empty_root(),
            unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
    }

    /// RFC 6962's published inclusion and consistency proofs for the same eight leaves.
    #[test]
    fn rfc6962_published_proofs() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let mut tree = MemoryTree::from_leaf_hashes(inputs.iter().map(|d| leaf_hash(d)));
        let proof = |p: &[&str]| p.iter().map(|h| unhex(h)).collect::<Vec<_>>();
        assert_eq!(
            inclusion_proof(&mut tree, 0, 8).unwrap(),
            proof(&[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ])
        );
        assert_eq!(
            consistency_proof(&mut tree, 1, 8).unwrap(),
            proof(&[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ])
        );
        assert_eq!(
            consistency_proof(&mut tree, 6, 8).unwrap(),
            proof(&[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ])
        );
        assert_eq!(
            consistency_proof(&mut tree, 2, 5).unwrap(),
            proof(&[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
            ])
        );
    }

    #[test]
    fn peaks_follow_the_binary_digits_of_the_size() {
        assert_eq!(peaks(0), vec![]);
        assert_eq!(peaks(1), vec![(0, 0)]);
        assert_eq!(peaks(6), vec![(2, 0), (1, 2)]);
        assert_eq!(peaks(7), vec![(2, 0), (1, 2), (0, 6)]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn roots_match_the_reference_at_every_size(n in 1u64..3000) {
            let hashes = leaves(n);
            let mut tree = MemoryTree::from_leaf_hashes(hashes.clone());
            prop_assert_eq!(root(&mut tree, n).unwrap(), reference_root(&hashes));
            let probe = n / 2 + 1;
            prop_assert_eq!(root(&mut tree, probe).unwrap(), reference_root(&hashes[..probe as usize]));
        }

        #[test]
        fn inclusion_proofs_verify_and_reject_other_leaves(n in 1u64..3000, seed in any::<u64>()) {
            let hashes = leaves(n);
            let mut tree = MemoryTree::from_leaf_hashes(hashes.clone());
            let size = 1 + seed % n;
            let index = (seed / 7) % size;
            let root_hash = root(&mut tree, size).unwrap();
            let proof = inclusion_proof(&mut tree, index, size).unwrap();
            prop_assert!(verify_inclusion(&hashes[index as usize], index, size, &proof, &root_hash));
            let other = leaf_hash(b"not in the tree");
            prop_assert!(!verify_inclusion(&other, index, size, &proof, &root_hash));
            if size > 1 {
                prop_assert!(!verify_inclusion(&hashes[index as usize], (index + 1) % size, size, &proof, &root_hash));
            }
        }

        #[test]
        fn consistency_proofs_verify_and_reject_forks(n in 2u64..3000, seed in any::<u64>()) {
            let hashes = leaves(n);
            let mut tree = MemoryTree::from_leaf_hashes(hashes.clone());
            let second = 2 + seed % (n - 1);
            let first = 1 + (seed / 13) % (second - 1);
            let first_root = root(&mut tree, first).unwrap();
            let second_root = root(&mut tree, second).unwrap();
            let proof = consistency_proof(&mut tree, first, second).unwrap();
            prop_assert!(verify_consistency(first, second, &first_root, &second_root, &proof));

            let mut forked = hashes[..second as usize].to_vec();
            forked[(first - 1) as usize] = leaf_hash(b"rewritten history");
            let forked_root = reference_root(&forked);
            prop_assert!(!verify_consistency(first, second, &first_root, &forked_root, &proof));
        }
    }
}
