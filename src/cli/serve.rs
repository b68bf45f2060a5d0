//! `concordat serve` and `concordat migrate`. `migrate` runs as the schema owner, so it is
//! also where record payloads stored before payloads were bound are re-sealed bound: the
//! gateway's own role may not rewrite a record, and the gateway refuses to start while any
//! are left (`startup`).

use std::{io::Write, path::Path, sync::Arc};

use anyhow::Context;

use super::{dev, Operator};
use crate::{
    app::records, audit::Action, config::Settings, crypto::Keyring, db::Database,
    domain::record::RecordId, startup::Application, telemetry,
};

pub async fn serve(config: &Path) -> anyhow::Result<()> {
    let settings = Settings::load(config)?;
    telemetry::init(&settings.telemetry)?;
    if settings.dev.enabled {
        eprintln!(
            "\n  WARNING: DEVELOPMENT MODE. Dev CA, sample agencies and principals are in use.\n  \
             Never run this configuration with real data.\n"
        );
        tracing::warn!("development mode is enabled");
        let dev_settings = settings.clone();
        super::blocking(move || dev::prepare(&dev_settings)).await?;
        dev::share_samples(&settings).await?;
    }
    let application = Application::build(&settings).await?;
    tracing::info!(
        port = application.port(),
        ops_port = application.ops_port(),
        "concordat is listening"
    );
    if settings.dev.enabled {
        eprintln!(
            "  Try: {}\n  {}\n",
            dev::curl_example(&settings, application.port()),
            dev::console_hint(&settings, application.port())
        );
    }
    application.run_until_stopped().await?;
    Ok(())
}

pub async fn migrate(settings: &Settings, out: &mut impl Write) -> anyhow::Result<()> {
    let database = super::connect(settings).await?;
    let migrating = database.clone();
    let applied = super::blocking(move || Ok(migrating.migrate()?)).await?;
    writeln!(out, "{} migration(s) applied", applied.len())?;
    for version in applied {
        writeln!(out, "  {version}")?;
    }
    let resealed = reseal(settings, database).await?;
    writeln!(out, "{resealed} record payload(s) re-sealed")?;
    Ok(())
}

/// Re-seals every unbound record payload, a batch per audited action. With none, it needs
/// no keys (a first `migrate` runs before the gateway has made any), writes no entry and
/// changes nothing.
async fn reseal(settings: &Settings, database: Database) -> anyhow::Result<usize> {
    let batch = records::unbound(&database, None).await?;
    if batch.is_empty() {
        return Ok(0);
    }
    // The operator's session opens a pool of its own.
    drop(database);
    let dir = settings.keys.dir.clone();
    let keys = super::blocking(move || {
        Keyring::load(&dir)
            .context("keys.dir: re-sealing record payloads needs the gateway's data keys")
    })
    .await?;
    let operator = Operator::open(settings).await?;
    let outcome = reseal_batches(&operator, Arc::new(keys), batch).await;
    operator.close().await?;
    outcome.context("re-sealing record payloads (as the schema owner, see docs/operations.md)")
}

async fn reseal_batches(
    operator: &Operator,
    keys: Arc<Keyring>,
    mut batch: Vec<RecordId>,
) -> anyhow::Result<usize> {
    let database = &operator.database;
    let mut resealed = 0;
    while let Some(last) = batch.last().cloned() {
        let keys = Arc::clone(&keys);
        resealed += operator
            .audited(Action::RecordsReseal, async |call| {
                records::reseal(database, keys, call, batch).await
            })
            .await?;
        batch = records::unbound(database, Some(last)).await?;
    }
    Ok(resealed)
}
