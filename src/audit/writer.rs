//! One writer per instance with group commit: it takes the first entry waiting on the
//! bounded channel, drains whatever else is already waiting, appends them all in one
//! transaction, and only then answers each waiting request. While one batch commits (a
//! full fsync on SQLite) the next one gathers, so throughput grows with concurrency.

use tokio::sync::{mpsc, oneshot};

use super::{entry::PendingEntry, store, Receipt};
use crate::db::Database;

/// Most entries one transaction carries.
const MAX_BATCH: usize = 1024;

pub(super) struct Job {
    pub entry: PendingEntry,
    pub reply: oneshot::Sender<Result<Receipt, ()>>,
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
        let (entries, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|job| (job.entry, job.reply)).unzip();
        let count = entries.len();
        match database.run_blocking(|conn| store::append_batch(conn, entries)) {
            Ok(receipts) => {
                for (reply, receipt) in replies.into_iter().zip(receipts) {
                    // A requester that gave up (timed out) has already answered 503.
                    let _ = reply.send(Ok(receipt));
                }
            }
            Err(error) => {
                tracing::error!(%error, count, "audit batch not written; its requests are refused");
                for reply in replies {
                    let _ = reply.send(Err(()));
                }
            }
        }
    }
}
