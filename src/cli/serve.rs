//! `concordat serve` and `concordat migrate`.

use std::{io::Write, path::Path};

use crate::{config::Settings, dev, startup::Application, telemetry};

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
        tokio::task::spawn_blocking(move || dev::prepare(&dev_settings)).await??;
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
            "  Try: {}\n",
            dev::curl_example(&settings, application.port())
        );
    }
    application.run_until_stopped().await?;
    Ok(())
}

pub async fn migrate(settings: &Settings, out: &mut impl Write) -> anyhow::Result<()> {
    let database = super::connect(settings).await?;
    let applied = tokio::task::spawn_blocking(move || database.migrate()).await??;
    writeln!(out, "{} migration(s) applied", applied.len())?;
    for version in applied {
        writeln!(out, "  {version}")?;
    }
    Ok(())
}
