//! `concordat audit`: verify the trail (read only: never migrates, never writes) and export
//! it (recorded in the trail before the first entry is written out).

use std::{io::Write, path::PathBuf, time::Instant};

use anyhow::{bail, Context};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget};

use crate::{
    app::{self, audit::ExportQuery, AppError},
    audit::{checkpoint::VerifierKey, export::ExportFormat, verify, Action},
    config::Settings,
};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every leaf and node, check every checkpoint; exit 1 naming the first fault.
    Verify {
        /// A checkpoint saved earlier (a witness's copy) that the log must extend.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Write the trail as NDJSON (exactly the hashed entries), CSV or a FHIR R4 Bundle.
    Export {
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// RFC 3339; entries at or after.
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339; entries before.
        #[arg(long)]
        to: Option<String>,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub async fn run(
    command: AuditCommand,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { checkpoint } => verify(settings, checkpoint, out).await,
        AuditCommand::Export {
            format,
            from,
            to,
            out: path,
        } => {
            let mut file = path
                .as_ref()
                .map(|path| {
                    std::fs::File::create(path)
                        .map(std::io::BufWriter::new)
                        .with_context(|| format!("--out: cannot create {}", path.display()))
                })
                .transpose()?;
            let query = ExportQuery { format, from, to };
            let sink: &mut dyn Write = match file.as_mut() {
                Some(file) => file,
                None => out,
            };
            let written = super::audited_with_gateway(
                settings,
                Action::AuditExport,
                async |gateway, call| {
                    let mut export = app::audit::export(gateway, call, query).await?;
                    while let Some(chunk) = export.next_chunk().await {
                        sink.write_all(&chunk?).map_err(AppError::internal)?;
                    }
                    Ok(export.written())
                },
            )
            .await
            .map_err(super::flag_error)?;
            if let Some(mut file) = file {
                file.flush()?;
                eprintln!("exported {written} entries");
            }
            Ok(())
        }
    }
}

async fn verify(
    settings: &Settings,
    checkpoint: Option<PathBuf>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let vkey_path = settings.keys.dir.join("audit-checkpoint.vkey");
    let vkey = std::fs::read_to_string(&vkey_path)
        .with_context(|| format!("keys.dir: cannot read {}", vkey_path.display()))?;
    let key = VerifierKey::parse(&vkey)?;
    let witness = checkpoint
        .map(|path| {
            std::fs::read_to_string(&path)
                .with_context(|| format!("--checkpoint: cannot read {}", path.display()))
        })
        .transpose()?;
    let database = super::connect(settings).await?;
    let origin = settings.audit.origin.clone();
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let started = Instant::now();
    let progress = bar.clone();
    let has_witness = witness.is_some();
    // Verification reads the whole tree with its own threads; keep it off the executor.
    let outcome = super::blocking(move || {
        Ok(verify::verify_database(
            &database,
            &key,
            &origin,
            witness.as_deref(),
            &mut |done, total| {
                progress.set_length(total);
                progress.set_position(done);
            },
        )?)
    })
    .await?;
    bar.finish_and_clear();
    match outcome {
        Ok(report) => writeln!(
            out,
            "audit trail verified: {} entries, {} checkpoints{}, in {:.2?}",
            report.entries,
            report.checkpoints,
            if has_witness {
                ", extends the witness checkpoint"
            } else {
                ""
            },
            started.elapsed()
        )?,
        Err(failure) => bail!("audit trail verification FAILED at {failure}"),
    }
    Ok(())
}
