//! `concordat audit`: verify the trail (read only: never migrates, never writes) and export
//! it (recorded in the trail before the first entry is written out).

use std::{io::Write, path::PathBuf, time::Instant};

use anyhow::{bail, Context};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget};

use crate::{
    app::{self, audit::ExportQuery, AppError},
    audit::{
        checkpoint::VerifierKey,
        cosignature::{count_cosigners, WitnessKey},
        export::ExportFormat,
        store, verify,
        witnessing::note_body,
        Action,
    },
    config::Settings,
};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every leaf and node, check every checkpoint; exit 1 naming the first fault.
    Verify {
        /// A checkpoint saved earlier (a witness's copy) that the log must extend.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// A witness's verifier key (`concordat witness key`); repeat for each witness.
        #[arg(long = "witness", value_parser = parse_witness_key)]
        witnesses: Vec<WitnessKey>,
        /// How many of the --witness keys must have cosigned a checkpoint for it to count
        /// as witnessed; verification fails when no checkpoint has that many.
        #[arg(long, default_value_t = 0)]
        quorum: usize,
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
        AuditCommand::Verify {
            checkpoint,
            witnesses,
            quorum,
        } => {
            if quorum > witnesses.len() {
                bail!("--quorum {quorum} needs at least {quorum} --witness keys");
            }
            verify(settings, checkpoint, out).await?;
            if quorum > 0 {
                witnessed(settings, &witnesses, quorum, out).await?;
            }
            Ok(())
        }
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

fn parse_witness_key(vkey: &str) -> Result<WitnessKey, String> {
    WitnessKey::parse(vkey).map_err(|e| e.to_string())
}

/// After the trail verified: the newest checkpoint that at least `quorum` of `witnesses`
/// cosigned, and how much of the trail came after it. Fails when no checkpoint has a quorum.
async fn witnessed(
    settings: &Settings,
    witnesses: &[WitnessKey],
    quorum: usize,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let database = super::connect(settings).await?;
    let (checkpoints, cosignatures) = database
        .run(|conn| Ok((store::checkpoints(conn)?, store::all_cosignatures(conn)?)))
        .await?;
    let latest = checkpoints.last().map_or(0, store::StoredCheckpoint::size);
    let witnessed = checkpoints.iter().rev().find_map(|checkpoint| {
        let lines = cosignatures.get(&checkpoint.size())?.concat();
        let body = note_body(&checkpoint.signed_note);
        let names: Vec<&str> = witnesses
            .iter()
            .filter(|w| w.cosignature_in(&body, &lines).is_some())
            .map(WitnessKey::name)
            .collect();
        (count_cosigners(witnesses, &body, &lines) >= quorum)
            .then(|| (checkpoint.size(), names.join(", ")))
    });
    let Some((size, names)) = witnessed else {
        bail!(
            "no checkpoint has {quorum} valid cosignature(s) from the --witness keys given \
             (the latest covers {latest} entries)"
        );
    };
    writeln!(
        out,
        "witnessed: the checkpoint at tree size {size} is cosigned by {names} (quorum {quorum}); \
         {} entr(ies) after it not yet witnessed",
        latest - size
    )?;
    Ok(())
}
