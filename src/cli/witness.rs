//! `concordat witness`: run an agency's witness, check it for evidence, print its key.

use std::{io::Write, path::Path};

use anyhow::Context;
use clap::Subcommand;

use crate::{
    audit::cosignature::WitnessSigner,
    telemetry,
    witness::{service, store::WitnessStore, WitnessSettings},
};

#[derive(Debug, Subcommand)]
pub enum WitnessCommand {
    /// Exit 1, listing it, if the witness holds evidence of a log's misbehaviour.
    Check,
    /// Print the witness's verifier key, for the gateway's `audit.witnesses` and auditors
    /// (creates the key if it is missing).
    Key,
}

/// Runs `command`, or the witness service when there is none. `config` is the witness's
/// own configuration file.
pub async fn run(
    command: Option<WitnessCommand>,
    config: &Path,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let settings = WitnessSettings::load(config)?;
    match command {
        None => serve(&settings).await,
        Some(WitnessCommand::Key) => {
            // The key alone: the state directory is the running witness's, and locked.
            let signer = super::blocking(move || {
                WitnessSigner::load_or_create(&settings.key, &settings.name).context("key")
            })
            .await?;
            writeln!(out, "{}", signer.key().encode())?;
            Ok(())
        }
        Some(WitnessCommand::Check) => check(&settings, out),
    }
}

async fn serve(settings: &WitnessSettings) -> anyhow::Result<()> {
    telemetry::init(&crate::config::TelemetrySettings::default())?;
    let opened = settings.clone();
    let witness = super::blocking(move || service::Witness::open(&opened)).await?;
    let listener = std::net::TcpListener::bind(settings.bind)
        .map_err(|e| anyhow::anyhow!("bind: cannot bind {}: {e}", settings.bind))?;
    tracing::info!(
        port = listener.local_addr()?.port(),
        key = %witness.signer().key().encode(),
        logs = settings.logs.len(),
        "concordat witness is listening"
    );
    service::server(witness, listener)?.await?;
    Ok(())
}

fn check(settings: &WitnessSettings, out: &mut impl Write) -> anyhow::Result<()> {
    // Read only, beside the running witness (which holds the state directory's lock).
    let store = WitnessStore::inspect(&settings.state_dir)?;
    let evidence = store.evidence()?;
    for log in &settings.logs {
        let latest = store.latest(&log.origin)?;
        let size = latest
            .as_deref()
            .and_then(|note| note.lines().nth(1))
            .unwrap_or("none");
        writeln!(out, "{}: latest cosigned tree size {size}", log.origin)?;
    }
    if evidence.is_empty() {
        writeln!(out, "no evidence of misbehaviour")?;
        return Ok(());
    }
    for dir in &evidence {
        writeln!(out, "evidence: {}", dir.display())?;
    }
    anyhow::bail!(
        "{} checkpoint(s) contradicted one this witness had cosigned: evidence kept in {}",
        evidence.len(),
        settings.state_dir.join("evidence").display()
    )
}
