//! The witness side of C2SP `tlog-witness` `add-checkpoint`, as a pure function: given the
//! logs a witness knows, the latest checkpoint it cosigned for the submitted one's origin and
//! a request, what it must answer. Persisting, signing and HTTP are the caller's.
//!
//! A request body is `old <size>\n`, up to 63 base64 consistency-proof hashes one per line,
//! an empty line, then the log's signed checkpoint note.

use base64::{engine::general_purpose::STANDARD, Engine};

use crate::audit::{
    checkpoint::{Checkpoint, VerifierKey},
    merkle::{self, Hash},
};

/// The most proof lines a request may carry (the protocol's limit).
const MAX_PROOF_LINES: usize = 63;

/// A parsed `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    /// The checkpoint as the log signed it (body, blank line, signature lines).
    pub note: String,
}

/// A log the witness follows: its origin and the key it signs checkpoints with.
#[derive(Debug, Clone)]
pub struct KnownLog {
    pub origin: String,
    pub key: VerifierKey,
}

/// The witness's answer, before any signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 200: consistent with what the witness saw; persist `checkpoint` (from `note`) as the
    /// latest, then cosign its body.
    Cosign(Checkpoint),
    /// 400: the request is not a well-formed `add-checkpoint`.
    Malformed(&'static str),
    /// 403: no signature by a key the witness trusts for the origin.
    Unsigned,
    /// 404: the witness follows no log of this origin.
    UnknownLog,
    /// 409 with the latest size: the log's idea of what the witness saw is out of date.
    StaleOldSize { latest: u64 },
    /// 409 or 422: the log contradicts a checkpoint it signed earlier. Refused, and kept as
    /// evidence.
    Misbehaviour(Misbehaviour),
}

/// How a validly signed checkpoint contradicts the latest one the witness cosigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// The same size with another root hash: two trees under one origin and key (409).
    Fork,
    /// Presented as the successor of the latest cosigned checkpoint, but smaller: the log
    /// went back (400 by the protocol's size rule, and evidence all the same).
    RolledBack,
    /// The consistency proof does not prove the new tree extends the old one (422).
    Inconsistent,
}

impl Misbehaviour {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fork => "fork",
            Self::RolledBack => "rolled_back",
            Self::Inconsistent => "inconsistent",
        }
    }
}

impl AddCheckpoint {
    pub fn parse(body: &str) -> Result<Self, &'static str> {
        let (head, note) = body
            .split_once("\n\n")
            .ok_or("no empty line before the checkpoint")?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|line| line.strip_prefix("old "))
            .ok_or("the first line must be `old <size>`")?;
        let canonical = old == "0" || (!old.starts_with('0') && !old.is_empty());
        let old_size = old
            .parse::<u64>()
            .ok()
            .filter(|_| canonical && old.bytes().all(|b| b.is_ascii_digit()))
            .ok_or("the old size must be a decimal with no leading zeroes")?;
        let proof = lines
            .map(|line| {
                STANDARD
                    .decode(line)
                    .ok()
                    .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
                    .ok_or("a proof line is not a base64 SHA-256 hash")
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err("more than 63 consistency proof lines");
        }
        Ok(Self {
            old_size,
            proof,
            note: note.to_owned(),
        })
    }

    /// The checkpoint's first line, which names the log.
    pub fn origin(&self) -> &str {
        self.note.split('\n').next().unwrap_or_default()
    }
}

/// Decides a request, in the protocol's order of checks. `latest` is the latest checkpoint
/// this witness cosigned for the request's origin, if any.
pub fn judge(logs: &[KnownLog], latest: Option<&Checkpoint>, request: &AddCheckpoint) -> Verdict {
    let origin = request.origin();
    let trusted: Vec<&KnownLog> = logs.iter().filter(|log| log.origin == origin).collect();
    if trusted.is_empty() {
        return Verdict::UnknownLog;
    }
    let Some(checkpoint) = trusted
        .iter()
        .find_map(|log| log.key.verify(&request.note).ok())
    else {
        return Verdict::Unsigned;
    };
    // A size-0 checkpoint commits to nothing: the same as none.
    let latest = latest.filter(|latest| latest.size > 0);
    let latest_size = latest.map_or(0, |latest| latest.size);
    if request.old_size > checkpoint.size {
        if latest.is_some() && request.old_size == latest_size {
            return Verdict::Misbehaviour(Misbehaviour::RolledBack);
        }
        return Verdict::Malformed("the old size is larger than the checkpoint's");
    }
    if request.old_size != latest_size {
        return Verdict::StaleOldSize {
            latest: latest_size,
        };
    }
    let Some(latest) = latest else {
        // First sight of this log: nothing to be consistent with, and nothing to prove.
        return if request.proof.is_empty() {
            Verdict::Cosign(checkpoint)
        } else {
            Verdict::Malformed("the proof must be empty when the old size is 0")
        };
    };
    if checkpoint.size == latest.size {
        return if checkpoint.root == latest.root && request.proof.is_empty() {
            Verdict::Cosign(checkpoint)
        } else if checkpoint.root == latest.root {
            Verdict::Malformed("the proof must be empty when the sizes are equal")
        } else {
            Verdict::Misbehaviour(Misbehaviour::Fork)
        };
    }
    if merkle::verify_consistency(
        latest.size,
        checkpoint.size,
        &latest.root,
        &checkpoint.root,
        &request.proof,
    ) {
        Verdict::Cosign(checkpoint)
    } else {
        Verdict::Misbehaviour(Misbehaviour::Inconsistent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{
        checkpoint::CheckpointSigner,
        merkle::{consistency_proof, leaf_hash, root, MemoryTree},
    };

    const ORIGIN: &str = "concordat.test/log";

    struct Log {
        signer: CheckpointSigner,
        leaves: Vec<Hash>,
        _dir: tempfile::TempDir,
    }

    impl Log {
        fn new(leaves: u64) -> Self {
            let dir = tempfile::tempdir().unwrap();
            Self {
                signer: CheckpointSigner::load_or_create(dir.path(), ORIGIN).unwrap(),
                leaves: (0..leaves)
                    .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
                    .collect(),
                _dir: dir,
            }
        }

        fn known(&self) -> Vec<KnownLog> {
            vec![KnownLog {
                origin: ORIGIN.into(),
                key: self.signer.verifier().clone(),
            }]
        }

        fn checkpoint(&self, size: u64) -> Checkpoint {
            let mut tree = MemoryTree::from_leaf_hashes(self.leaves[..size as usize].to_vec());
            Checkpoint {
                origin: ORIGIN.into(),
                size,
                root: root(&mut tree, size).unwrap(),
            }
        }

        /// A request for `new` after `old`, with the true proof.
        fn request(&self, old: u64, new: u64) -> AddCheckpoint {
            let mut tree = MemoryTree::from_leaf_hashes(self.leaves.clone());
            let proof = if old == 0 || old == new {
                vec![]
            } else {
                consistency_proof(&mut tree, old, new).unwrap()
            };
            AddCheckpoint {
                old_size: old,
                proof,
                note: self.signer.sign(&self.checkpoint(new)),
            }
        }
    }

    #[test]
    fn a_request_body_parses_as_the_protocol_writes_it() {
        let log = Log::new(8);
        let request = log.request(3, 8);
        let proof: String = request
            .proof
            .iter()
            .map(|h| format!("{}\n", STANDARD.encode(h)))
            .collect();
        let body = format!("old 3\n{proof}\n{}", request.note);
        assert_eq!(AddCheckpoint::parse(&body).unwrap(), request);
        assert_eq!(request.origin(), ORIGIN);

        for bad in [
            format!("old 03\n\n{}", request.note),
            format!("old -1\n\n{}", request.note),
            format!("old 3\nnot-base64!\n\n{}", request.note),
            format!("size 3\n\n{}", request.note),
            format!("old 3\n{}", request.note.replace("\n\n", "\n")),
            format!("old 3\n{}\n{}", "AAAA\n".repeat(64), request.note),
        ] {
            assert!(AddCheckpoint::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_first_checkpoint_then_consistent_ones_are_cosigned() {
        let log = Log::new(20);
        assert_eq!(
            judge(&log.known(), None, &log.request(0, 5)),
            Verdict::Cosign(log.checkpoint(5))
        );
        let five = log.checkpoint(5);
        assert_eq!(
            judge(&log.known(), Some(&five), &log.request(5, 20)),
            Verdict::Cosign(log.checkpoint(20))
        );
        // The same checkpoint again is cosigned again.
        assert_eq!(
            judge(&log.known(), Some(&five), &log.request(5, 5)),
            Verdict::Cosign(five)
        );
    }

    #[test]
    fn a_proof_where_none_belongs_is_malformed_and_a_size_0_latest_counts_as_none() {
        let log = Log::new(8);
        let mut first = log.request(0, 5);
        first.proof = log.request(2, 5).proof;
        assert!(matches!(
            judge(&log.known(), None, &first),
            Verdict::Malformed(_)
        ));
        let mut same = log.request(5, 5);
        same.proof = log.request(2, 5).proof;
        assert!(matches!(
            judge(&log.known(), Some(&log.checkpoint(5)), &same),
            Verdict::Malformed(_)
        ));
        let empty = Checkpoint {
            origin: ORIGIN.into(),
            size: 0,
            root: merkle::empty_root(),
        };
        assert_eq!(
            judge(&log.known(), Some(&empty), &log.request(0, 5)),
            Verdict::Cosign(log.checkpoint(5))
        );
    }

    #[test]
    fn unknown_logs_unsigned_checkpoints_and_stale_old_sizes_are_refused() {
        let log = Log::new(10);
        let other = Log::new(10);
        let latest = log.checkpoint(4);
        assert_eq!(
            judge(&[], Some(&latest), &log.request(4, 10)),
            Verdict::UnknownLog
        );
        // Same origin, another key.
        assert_eq!(
            judge(&log.known(), Some(&latest), &other.request(4, 10)),
            Verdict::Unsigned
        );
        assert_eq!(
            judge(&log.known(), Some(&latest), &log.request(2, 10)),
            Verdict::StaleOldSize { latest: 4 }
        );
        assert_eq!(
            judge(&log.known(), None, &log.request(4, 10)),
            Verdict::StaleOldSize { latest: 0 }
        );
        let mut bigger_old = log.request(4, 10);
        bigger_old.old_size = 11;
        assert!(matches!(
            judge(&log.known(), Some(&latest), &bigger_old),
            Verdict::Malformed(_)
        ));
    }

    #[test]
    fn a_fork_a_rollback_and_a_bad_proof_are_misbehaviour() {
        let log = Log::new(10);
        let latest = log.checkpoint(6);
        // The same key signing another tree of the same size.
        let mut forked = Log::new(10);
        forked.signer = CheckpointSigner::load_or_create(log._dir.path(), ORIGIN).unwrap();
        forked.leaves[2] = leaf_hash(b"changed");
        assert_eq!(
            judge(&log.known(), Some(&latest), &forked.request(6, 6)),
            Verdict::Misbehaviour(Misbehaviour::Fork)
        );
        // ...and growing it: the proof from the witness's root cannot hold.
        assert_eq!(
            judge(&log.known(), Some(&latest), &forked.request(6, 10)),
            Verdict::Misbehaviour(Misbehaviour::Inconsistent)
        );
        // A smaller checkpoint presented as the next after size 6.
        let mut back = log.request(0, 4);
        back.old_size = 6;
        assert_eq!(
            judge(&log.known(), Some(&latest), &back),
            Verdict::Misbehaviour(Misbehaviour::RolledBack)
        );
        // A proof with one hash changed.
        let mut tampered = log.request(6, 10);
        tampered.proof[0][0] ^= 1;
        assert_eq!(
            judge(&log.known(), Some(&latest), &tampered),
            Verdict::Misbehaviour(Misbehaviour::Inconsistent)
        );
    }
}
