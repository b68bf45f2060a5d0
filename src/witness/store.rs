//! The witness's files: the latest checkpoint it cosigned for each log (the log's signed
//! note, replaced by write, sync, rename and directory sync before the cosignature is
//! returned) and the evidence of each checkpoint that contradicted it.

use std::{
    io,
    path::{Path, PathBuf},
};

use ring::digest::{digest, SHA256};

use super::protocol::Misbehaviour;
use crate::files;

const EVIDENCE_DIR: &str = "evidence";
/// The most evidence directories kept; more are counted and logged only.
const EVIDENCE_LIMIT: usize = 1000;

#[derive(Debug)]
pub struct WitnessStore {
    dir: PathBuf,
    /// Held for as long as the witness runs: one lock serialises judging within a process,
    /// and this keeps a second witness process off the same state, which could roll it
    /// back. `None` for a reader ([`WitnessStore::inspect`]).
    _exclusive: Option<std::fs::File>,
}

impl WitnessStore {
    /// Opens (creating, mode 0700) the state directory, refusing one another witness
    /// process holds.
    pub fn open(dir: &Path) -> io::Result<Self> {
        files::create_private_dir(&dir.join(EVIDENCE_DIR))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        lock.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another witness process", dir.display()),
            )
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            _exclusive: Some(lock),
        })
    }

    /// The state directory for reading only (`witness check`), beside a running witness.
    pub fn inspect(dir: &Path) -> io::Result<Self> {
        if !dir.join(EVIDENCE_DIR).is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} holds no witness state", dir.display()),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            _exclusive: None,
        })
    }

    /// The note of the latest checkpoint cosigned for `origin`, if any.
    pub fn latest(&self, origin: &str) -> io::Result<Option<String>> {
        match std::fs::read_to_string(self.latest_path(origin)) {
            Ok(note) => Ok(Some(note)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Makes `note` the latest for `origin`, durably.
    pub fn record(&self, origin: &str, note: &str) -> io::Result<()> {
        files::write_public(&self.latest_path(origin), note.as_bytes())
    }

    /// Keeps what shows the log misbehaved: the checkpoint the witness had cosigned, the
    /// whole request (old size, proof and the contradicting checkpoint) and what was wrong.
    /// Returns the directory, which is never reused, or `None` once [`EVIDENCE_LIMIT`]
    /// directories are kept: a consistency proof is the requester's, not the log's, so
    /// anyone who can reach the witness can make one fail, and must not fill its disk.
    pub fn keep_evidence(
        &self,
        origin: &str,
        kind: Misbehaviour,
        cosigned: Option<&str>,
        request: &str,
    ) -> io::Result<Option<PathBuf>> {
        if self.evidence()?.len() >= EVIDENCE_LIMIT {
            return Ok(None);
        }
        let stamp = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let dir = self.dir.join(EVIDENCE_DIR).join(format!(
            "{stamp}-{}-{}",
            &origin_key(origin)[..16],
            kind.as_str()
        ));
        std::fs::create_dir(&dir)?;
        let summary = format!(
            "origin: {origin}\nmisbehaviour: {}\nrecorded_at_unix_nanos: {stamp}\n",
            kind.as_str()
        );
        files::write_public(&dir.join("summary.txt"), summary.as_bytes())?;
        if let Some(cosigned) = cosigned {
            files::write_public(&dir.join("cosigned.checkpoint"), cosigned.as_bytes())?;
        }
        files::write_public(&dir.join("add-checkpoint.request"), request.as_bytes())?;
        Ok(Some(dir))
    }

    /// Every evidence directory kept, oldest first.
    pub fn evidence(&self) -> io::Result<Vec<PathBuf>> {
        let mut found = std::fs::read_dir(self.dir.join(EVIDENCE_DIR))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<io::Result<Vec<_>>>()?;
        found.retain(|path| path.is_dir());
        found.sort();
        Ok(found)
    }

    fn latest_path(&self, origin: &str) -> PathBuf {
        self.dir.join(format!("{}.checkpoint", origin_key(origin)))
    }
}

/// A file name for an origin, which may hold any character but a newline.
fn origin_key(origin: &str) -> String {
    hex::encode(digest(&SHA256, origin.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_checkpoint_is_kept_per_log_and_evidence_accumulates() {
        let dir = tempfile::tempdir().unwrap();
        let store = WitnessStore::open(dir.path()).unwrap();
        assert_eq!(store.latest("a.example/log").unwrap(), None);
        store.record("a.example/log", "note 1").unwrap();
        store.record("a.example/log", "note 2").unwrap();
        store.record("b.example/log", "other").unwrap();
        assert_eq!(
            store.latest("a.example/log").unwrap().as_deref(),
            Some("note 2")
        );
        // A second witness cannot open it while the first has it; a reader can.
        assert!(WitnessStore::open(dir.path()).is_err());
        assert_eq!(
            WitnessStore::inspect(dir.path())
                .unwrap()
                .latest("b.example/log")
                .unwrap()
                .as_deref(),
            Some("other")
        );
        // ...and a restarted witness reads the same state.
        drop(store);
        let store = WitnessStore::open(dir.path()).unwrap();
        let reopened = &store;
        assert_eq!(
            reopened.latest("b.example/log").unwrap().as_deref(),
            Some("other")
        );

        assert!(store.evidence().unwrap().is_empty());
        let kept = store
            .keep_evidence(
                "a.example/log",
                Misbehaviour::Fork,
                Some("note 2"),
                "old 5\n\nx",
            )
            .unwrap()
            .unwrap();
        store
            .keep_evidence(
                "a.example/log",
                Misbehaviour::Inconsistent,
                None,
                "old 5\n\ny",
            )
            .unwrap();
        assert_eq!(store.evidence().unwrap().len(), 2);
        assert_eq!(
            std::fs::read_to_string(kept.join("cosigned.checkpoint")).unwrap(),
            "note 2"
        );
        assert!(std::fs::read_to_string(kept.join("summary.txt"))
            .unwrap()
            .contains("misbehaviour: fork"));
    }
}
