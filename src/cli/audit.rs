//! `concordat audit`: verify the trail (read only: never migrates, never writes) and export
//! it (recorded in the trail before the first entry is written out).

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{bail, Context};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget};

use crate::{
    app::{self, audit::ExportQuery, AppError},
    audit::{
        checkpoint::{note_body, VerifierKey},
        cosignature::{count_cosigners, WitnessKey},
        export::ExportFormat,
        store, verify, Action,
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
    /// From an agency's own machine: fetch the gateway's latest checkpoint over mutual TLS
    /// (an ig_auditor certificate), check its signature, its witnesses' cosignatures and
    /// that it extends the checkpoint this check saw last (kept in --state); exit 1 if not.
    Check {
        /// The gateway, e.g. `https://concordat.example:8443`.
        #[arg(long)]
        url: String,
        /// This agency's client certificate (PEM) and its key.
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
        /// The CA that issued the gateway's server certificate (PEM).
        #[arg(long)]
        ca: PathBuf,
        /// The gateway's verifier key, as published to the agencies (not fetched from it).
        #[arg(long)]
        log_key: String,
        /// Where the last checkpoint seen is kept between runs.
        #[arg(long)]
        state: PathBuf,
        /// A witness's verifier key; repeat for each witness.
        #[arg(long = "witness", value_parser = parse_witness_key)]
        witnesses: Vec<WitnessKey>,
        /// How many of the --witness keys must have cosigned the checkpoint.
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
            distinct_witnesses(&witnesses, quorum)?;
            verify(settings, checkpoint, out).await?;
            if quorum > 0 {
                witnessed(settings, &witnesses, quorum, out).await?;
            }
            Ok(())
        }
        command @ AuditCommand::Check { .. } => check_from_agency(command, out).await,
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

/// The same witness given twice would count twice towards a quorum.
fn distinct_witnesses(witnesses: &[WitnessKey], quorum: usize) -> anyhow::Result<()> {
    let names: std::collections::BTreeSet<&str> = witnesses.iter().map(WitnessKey::name).collect();
    if names.len() != witnesses.len() {
        bail!("--witness: each witness may be given once");
    }
    if quorum > witnesses.len() {
        bail!("--quorum {quorum} needs at least {quorum} --witness keys");
    }
    Ok(())
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
        (names.len() >= quorum).then(|| (checkpoint.size(), names.join(", ")))
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

/// `audit check`, which needs no gateway configuration: everything is in its flags.
pub async fn check_from_agency(command: AuditCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let AuditCommand::Check {
        url,
        cert,
        key,
        ca,
        log_key,
        state,
        witnesses,
        quorum,
    } = command
    else {
        bail!("not an audit check");
    };
    let log_key = VerifierKey::parse(&log_key).context("--log-key")?;
    distinct_witnesses(&witnesses, quorum)?;
    let gateway = GatewayClient::new(&url, &cert, &key, &ca)?;
    check(&gateway, &log_key, &state, &witnesses, quorum, out).await
}

/// The gateway's audit endpoints, seen from an agency's machine.
struct GatewayClient {
    base: String,
    client: reqwest::Client,
}

impl GatewayClient {
    fn new(url: &str, cert: &Path, key: &Path, ca: &Path) -> anyhow::Result<Self> {
        let read = |path: &Path, flag: &str| {
            std::fs::read(path).with_context(|| format!("{flag}: cannot read {}", path.display()))
        };
        let mut identity = read(cert, "--cert")?;
        identity.extend(read(key, "--key")?);
        let client = reqwest::Client::builder()
            .identity(reqwest::Identity::from_pem(&identity).context("--cert/--key")?)
            .add_root_certificate(
                reqwest::Certificate::from_pem(&read(ca, "--ca")?).context("--ca")?,
            )
            .tls_built_in_root_certs(false)
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Self {
            base: url.trim_end_matches('/').to_owned(),
            client,
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<String> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!(
                "GET {path}: {status}: {}",
                text.chars().take(300).collect::<String>()
            );
        }
        Ok(text)
    }
}

#[derive(serde::Deserialize)]
struct ConsistencyAnswer {
    first_root: String,
    second_root: String,
    proof: Vec<String>,
}

/// `audit check`: the latest checkpoint, signed by the log's key, cosigned by a quorum,
/// consistent with the one seen last; then it becomes the one seen last.
async fn check(
    gateway: &GatewayClient,
    log_key: &VerifierKey,
    state: &Path,
    witnesses: &[WitnessKey],
    quorum: usize,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    use crate::audit::merkle::{verify_consistency, Hash};
    let note = gateway.get("/v1/audit/checkpoint").await?;
    let checkpoint = log_key
        .verify(&note)
        .context("the checkpoint is not signed by --log-key")?;
    let body = note_body(&note);
    let cosigners = count_cosigners(witnesses, &body, &note);
    if cosigners < quorum {
        bail!(
            "the checkpoint at size {} has {cosigners} valid cosignature(s) from the --witness \
             keys, {quorum} required",
            checkpoint.size
        );
    }
    let seen = match std::fs::read_to_string(state) {
        Ok(text) => Some(log_key.verify(&text).with_context(|| {
            format!("--state {}: not a checkpoint of this log", state.display())
        })?),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error).with_context(|| format!("--state {}", state.display())),
    };
    let hash = |hex_text: &str| -> anyhow::Result<Hash> {
        hex::decode(hex_text)
            .ok()
            .and_then(|bytes| Hash::try_from(bytes.as_slice()).ok())
            .context("the gateway answered a hash that is not 32 bytes of hex")
    };
    let extends = match &seen {
        None => "first checkpoint seen".to_owned(),
        Some(seen) if seen.size > checkpoint.size => bail!(
            "ROLLED BACK: the gateway's checkpoint covers {} entries, fewer than the {} seen \
             before (kept in {})",
            checkpoint.size,
            seen.size,
            state.display()
        ),
        Some(seen) if seen.size == checkpoint.size => {
            if seen.root != checkpoint.root {
                bail!(
                    "FORKED: the checkpoint at size {} has another root than the one seen before",
                    seen.size
                );
            }
            format!("unchanged since the last check (size {})", seen.size)
        }
        Some(seen) => {
            let answer: ConsistencyAnswer = serde_json::from_str(
                &gateway
                    .get(&format!(
                        "/v1/audit/consistency?first={}&second={}",
                        seen.size, checkpoint.size
                    ))
                    .await?,
            )
            .context("the consistency proof")?;
            let proof = answer
                .proof
                .iter()
                .map(|h| hash(h))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if hash(&answer.first_root)? != seen.root
                || hash(&answer.second_root)? != checkpoint.root
                || !verify_consistency(
                    seen.size,
                    checkpoint.size,
                    &seen.root,
                    &checkpoint.root,
                    &proof,
                )
            {
                bail!(
                    "FORKED: the checkpoint at size {} does not extend the one seen before at size {}",
                    checkpoint.size,
                    seen.size
                );
            }
            format!("extends the one seen before (size {})", seen.size)
        }
    };
    crate::files::write_public(state, note.as_bytes())
        .with_context(|| format!("--state {}", state.display()))?;
    writeln!(
        out,
        "checkpoint OK: {} at size {}, signed by the log's key, {cosigners} witness \
         cosignature(s) (quorum {quorum}), {extends}",
        checkpoint.origin, checkpoint.size
    )?;
    Ok(())
}
