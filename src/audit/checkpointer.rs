//! Signs a checkpoint whenever the tree has grown since the last one: on a timer while the
//! gateway runs, and once more at shutdown. Each time, the latest checkpoint then goes to
//! the witnesses that have not cosigned it.

use std::{sync::Arc, time::Duration};

use super::{
    checkpoint::{Checkpoint, CheckpointSigner},
    merkle,
    store::{self, StoredNodes},
    witnessing::Witnesses,
};
use crate::db::{Database, DbConnection, DbError};

/// Signs and stores a checkpoint for the current tree if it is larger than the latest
/// stored one. Returns the size signed, if any.
pub fn checkpoint_now(
    conn: &mut DbConnection,
    signer: &CheckpointSigner,
    origin: &str,
) -> Result<Option<u64>, DbError> {
    let size = store::tree_size(conn)?;
    let latest = store::latest_checkpoint(conn)?.map_or(0, |c| c.size());
    if size == 0 || size <= latest {
        return Ok(None);
    }
    let root = merkle::root(&mut StoredNodes(conn), size)?;
    let note = signer.sign(&Checkpoint {
        origin: origin.to_owned(),
        size,
        root,
    });
    store::insert_checkpoint(conn, size, &root, &note)?;
    Ok(Some(size))
}

/// Checkpoints every `every` for the life of the process, and has each checkpoint
/// witnessed.
pub fn spawn(
    database: Database,
    signer: Arc<CheckpointSigner>,
    origin: String,
    every: Duration,
    witnesses: Witnesses,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let (signer, origin) = (Arc::clone(&signer), origin.clone());
            match database
                .run(move |conn| checkpoint_now(conn, &signer, &origin))
                .await
            {
                Ok(Some(size)) => tracing::debug!(size, "audit checkpoint signed"),
                Ok(None) => {}
                Err(error) => tracing::error!(%error, "audit checkpoint not signed"),
            }
            if !witnesses.is_empty() {
                if let Err(error) = witnesses.round(&database).await {
                    tracing::error!(%error, "checkpoint not sent to witnesses");
                }
            }
        }
    })
}
