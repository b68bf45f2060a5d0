//! The audit trail: every request that reaches the application leaves exactly one entry
//! (or, for a flood of refusals before use, is counted in one: see [`refusals`]),
//! appended to an RFC 9162 Merkle tree, durable before the response leaves, with signed
//! checkpoints an outside witness can hold the gateway to.
//!
//! - [`entry`]: the entry and its canonical (RFC 8785) leaf data;
//! - [`merkle`]: the tree, proofs and their verification (pure);
//! - [`checkpoint`]: C2SP signed notes and the Ed25519 key;
//! - `store` (private writes) and `writer`: storage and the group-commit writer;
//! - [`action`]: the closed vocabulary of audited actions;
//! - [`recorder`]: the one entry of one call, and the record-before-change rule;
//! - [`refusals`]: a flood of refusals before use, counted into few entries;
//! - [`verify`] and [`export`]: what auditors and the CLI run.

pub mod action;
pub mod checkpoint;
pub mod checkpointer;
pub mod cosignature;
pub mod entry;
pub mod export;
pub mod merkle;
pub mod recorder;
pub mod refusals;
pub mod store;
pub mod verify;
pub mod witnessing;
mod writer;

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};

pub use crate::domain::LeafIndex;
pub use action::Action;
pub use entry::{AuditEntry, Decision, PendingEntry};
pub use recorder::Recorder;

use crate::db::{Database, DbConnection, DbError};

/// Entries that may wait for the writer; beyond this, requests wait (back-pressure).
const CHANNEL_CAPACITY: usize = 8192;

/// Where an entry landed: the requester can later prove it against a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub leaf_index: LeafIndex,
    pub leaf_hash: merkle::Hash,
}

/// A change stored in the entry's own transaction: both are durable, or neither is. For
/// high-volume single-row changes (a record submitted); they run on the writer's thread,
/// so whatever can be done before (validation, sealing) is done before.
pub type Change = Box<dyn FnOnce(&mut DbConnection) -> Result<(), DbError> + Send>;

/// Why a change made with its entry was not stored.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Nothing was written: the caller must disclose and change nothing.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The entry was written (as an error, naming the attempt) but the change was refused.
    #[error("the change was not stored: {error}")]
    Change { receipt: Receipt, error: DbError },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("the audit writer has stopped")]
    Closed,
    #[error("the audit entry was not written in time")]
    Timeout,
    #[error("the audit entry could not be written")]
    Failed,
    /// No connection to the database could be had: it holds the trail too, so nothing can
    /// be recorded (or decided) until it is back.
    #[error("the database holding the audit trail cannot be reached")]
    Unreachable,
}

/// The handle requests append through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    jobs: mpsc::Sender<writer::Job>,
    append_timeout: Duration,
    health: Arc<writer::Health>,
}

/// Whether the writer can make entries durable, for readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterCondition {
    Ok,
    /// Its last batch failed; storage may have refused it (full, read-only, refused rows).
    Failing,
    /// A batch has been in flight for longer than the append timeout (a lock held, storage
    /// hanging): requests are being refused meanwhile.
    Stalled,
    /// The writer thread has stopped.
    Stopped,
}

impl WriterCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failing => "failing",
            Self::Stalled => "stalled",
            Self::Stopped => "stopped",
        }
    }
}

impl AuditLog {
    /// Starts the writer thread. It stops when the last handle is dropped, after
    /// writing what was already queued.
    pub fn start(
        database: Database,
        append_timeout: Duration,
    ) -> std::io::Result<(Self, std::thread::JoinHandle<()>)> {
        let (jobs, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let health = Arc::new(writer::Health::default());
        let handle = {
            let health = Arc::clone(&health);
            std::thread::Builder::new()
                .name("audit-writer".into())
                .spawn(move || writer::run(database, receiver, &health))?
        };
        Ok((
            Self {
                jobs,
                append_timeout,
                health,
            },
            handle,
        ))
    }

    /// Appends `entry` and returns once it is durable. Fails, and the caller must disclose
    /// nothing, if the writer cannot take it or commit it within the append timeout.
    pub async fn append(&self, entry: PendingEntry) -> Result<Receipt, AuditError> {
        self.commit(entry, None).await.map_err(|error| match error {
            CommitError::Audit(error) => error,
            // No change, so nothing to refuse.
            CommitError::Change { .. } => AuditError::Failed,
        })
    }

    /// Appends `entry` and stores `change` in the same transaction. If the change fails,
    /// the entry is still appended, as an error, and only the change is rolled back.
    pub async fn commit(
        &self,
        entry: PendingEntry,
        change: Option<Change>,
    ) -> Result<Receipt, CommitError> {
        let (reply, receipt) = oneshot::channel();
        let job = writer::Job {
            entry,
            change,
            reply,
        };
        tokio::time::timeout(self.append_timeout, async {
            self.jobs.send(job).await.map_err(|_| AuditError::Closed)?;
            match receipt.await {
                Ok(outcome) => outcome,
                Err(_) => Err(AuditError::Closed.into()),
            }
        })
        .await
        .map_err(|_| AuditError::Timeout)?
    }

    pub fn is_running(&self) -> bool {
        !self.jobs.is_closed()
    }

    /// The writer's condition. It stays `Failing` for an append timeout after a batch
    /// fails; after that, while the writer has had nothing to write, this probes storage
    /// (an append rolled back, see [`store::probe_append`]) and reports `Ok` once one
    /// succeeds, so that an instance taken out of service becomes ready again when storage
    /// recovers, before any request reaches it. A probe asks less of storage than a real
    /// batch (a full disk can take it and still refuse a record), so under a fault that
    /// persists an idle instance alternates: ready, sent traffic, failing again.
    pub async fn condition(&self, database: &Database) -> WriterCondition {
        if !self.is_running() {
            return WriterCondition::Stopped;
        }
        if self.health.busy_for() > self.append_timeout {
            return WriterCondition::Stalled;
        }
        if !self.health.is_failing() {
            return WriterCondition::Ok;
        }
        if self.health.since_failure() < self.append_timeout {
            return WriterCondition::Failing;
        }
        match database.run(store::probe_append).await {
            Ok(()) => {
                self.health.recovered();
                WriterCondition::Ok
            }
            Err(error) => {
                tracing::warn!(%error, "audit storage still refuses appends");
                WriterCondition::Failing
            }
        }
    }
}
