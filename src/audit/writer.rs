//! One writer per instance with group commit: it takes the first entry waiting on the
//! bounded channel, drains whatever else is already waiting, appends them all in one
//! transaction, and only then answers each waiting request. While one batch commits (a
//! full fsync on SQLite) the next one gathers, so throughput grows with concurrency.

use tokio::sync::{mpsc, oneshot};

use super::{entry::PendingEntry, store, AuditError, Change, CommitError, Decision, Receipt};
use crate::db::Database;

/// Most entries one transaction carries.
const MAX_BATCH: usize = 1024;

pub(super) struct Job {
    pub entry: PendingEntry,
    pub change: Option<Change>,
    pub reply: oneshot::Sender<Result<Receipt, CommitError>>,
}

/// Runs on its own thread until every sender is gone: it blocks on the database by design.
pub(super) fn run(database: Database, mut jobs: mpsc::Receiver<Job>) {
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
        match database.run_blocking(|conn| store::append_batch(conn, appends)) {
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
