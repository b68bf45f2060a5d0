//! One writer per instance with group commit: it takes the first entry waiting on the
//! bounded channel, drains whatever else is already waiting, appends them all in one
//! transaction, and only then answers each waiting request. While one batch commits (a
//! full fsync on SQLite) the next one gathers, so throughput grows with concurrency.

use std::{
    sync::atomic::{AtomicBool, AtomicI64, Ordering},
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};

use super::{entry::PendingEntry, store, AuditError, Change, CommitError, Decision, Receipt};
use crate::{
    db::{Database, DbConnection},
    domain::Timestamp,
};

/// Most entries one transaction carries.
const MAX_BATCH: usize = 1024;

/// What readiness needs to know of the writer, shared with [`super::AuditLog`].
#[derive(Debug, Default)]
pub(super) struct Health {
    /// When the batch being written started (µs since the epoch); 0 while idle.
    busy_since: AtomicI64,
    /// Whether the last batch failed.
    failing: AtomicBool,
    /// When a batch last failed (µs since the epoch).
    failed_at: AtomicI64,
}

impl Health {
    pub(super) fn busy_for(&self) -> Duration {
        match self.busy_since.load(Ordering::Acquire) {
            0 => Duration::ZERO,
            since => Duration::from_micros(
                u64::try_from(Timestamp::now().micros().saturating_sub(since)).unwrap_or(0),
            ),
        }
    }

    pub(super) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// How long ago a batch last failed.
    pub(super) fn since_failure(&self) -> Duration {
        let at = self.failed_at.load(Ordering::Acquire);
        Duration::from_micros(
            u64::try_from(Timestamp::now().micros().saturating_sub(at)).unwrap_or(0),
        )
    }

    pub(super) fn recovered(&self) {
        self.failing.store(false, Ordering::Release);
    }
}

pub(super) struct Job {
    pub entry: PendingEntry,
    pub change: Option<Change>,
    pub reply: oneshot::Sender<Result<Receipt, CommitError>>,
}

/// Runs on its own thread until every sender is gone: it blocks on the database by design.
/// It writes on a connection of its own, so that requests holding every pooled connection
/// (long reads, a burst) cannot keep the trail, and so every disclosure, waiting.
pub(super) fn run(database: Database, mut jobs: mpsc::Receiver<Job>, health: &Health) {
    let mut connection: Option<DbConnection> = None;
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut appends = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        for job in batch {
            let mut entry = job.entry;
            let mut change = job.change;
            // A requester that gave up (timed out) has already answered 503: its change is
            // not made, and its entry says so.
            if change.is_some() && job.reply.is_closed() {
                change = None;
                entry.decision = Decision::Error;
                entry.reason = store::ABANDONED.to_owned();
            }
            appends.push(store::Append { entry, change });
            replies.push(job.reply);
        }
        let count = appends.len();
        health
            .busy_since
            .store(Timestamp::now().micros(), Ordering::Release);
        let written = match &mut connection {
            Some(conn) => store::append_batch(conn, appends),
            None => database
                .dedicated_connection()
                .and_then(|conn| store::append_batch(connection.insert(conn), appends)),
        };
        health.busy_since.store(0, Ordering::Release);
        if written.is_err() {
            health
                .failed_at
                .store(Timestamp::now().micros(), Ordering::Release);
        }
        health.failing.store(written.is_err(), Ordering::Release);
        if written.is_err() {
            // The connection may be what failed (a restarted server, a broken socket): the
            // next batch starts on a new one.
            connection = None;
        }
        match written {
            Ok(outcomes) => {
                for (reply, (receipt, change)) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(match change {
                        Ok(()) => Ok(receipt),
                        Err(error) => Err(CommitError::Change { receipt, error }),
                    });
                }
            }
            Err(error) => {
                tracing::error!(%error, count, "audit batch not written; its requests are refused");
                for reply in replies {
                    let _ = reply.send(Err(AuditError::Failed.into()));
                }
            }
        }
    }
}
