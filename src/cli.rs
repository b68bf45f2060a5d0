//! The `concordat` command line for operators: serve, migrate, the development PKI,
//! agencies, principals, agreements, the audit trail and evaluation reports. Every command exits non-zero with a message on failure.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget};

use crate::{
    admin,
    app::{self, reports::ReportQuery, Actor, AppError, Call, Gateway},
    audit::{
        checkpoint::{CheckpointSigner, VerifierKey},
        export::{self, Export, ExportFormat},
        verify, Action, AuditLog, Decision, Recorder,
    },
    config::{Settings, TelemetrySettings},
    crypto::Keyring,
    db::{agencies, agreements, principals, Database},
    dev,
    domain::{
        agreement::Known, principal::roles_to_text, record_type::RecordTypes, Agency, AgencyId,
        AgencyKind, CertificateBinding, Principal, PrincipalId, PrincipalStatus, Role, Timestamp,
    },
    pki::PkiDirectory,
    routes,
    startup::Application,
    telemetry, tls,
};

#[derive(Debug, Parser)]
#[command(name = "concordat", version, about = "Mutual-TLS data-sharing gateway")]
pub struct Cli {
    /// Configuration file; CONCORDAT_<SECTION>_<KEY> variables override its values.
    #[arg(
        long,
        global = true,
        env = "CONCORDAT_CONFIG",
        default_value = "config/concordat.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (migrates the database first).
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Development PKI: CA, server and client certificates, CRL.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Agencies that share records.
    #[command(subcommand)]
    Agencies(AgenciesCommand),
    /// Certificate holders known to the gateway.
    #[command(subcommand)]
    Principals(PrincipalsCommand),
    /// The audit trail: verify it, export it.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Information-sharing agreements.
    #[command(subcommand)]
    Agreements(AgreementsCommand),
    /// Programme evaluation reports (audited, small numbers suppressed).
    #[command(subcommand)]
    Reports(ReportsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ReportsCommand {
    /// Emergency service use before and after enrolment.
    ServiceUsage {
        /// Window lengths in months.
        #[arg(long, default_value = "12,18")]
        windows: String,
        /// `YYYY-MM-DD`; default today.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum AgreementsCommand {
    /// Validate agreement files and make each file's version the one in force (an admin
    /// action, audited). Nothing is imported if any file is invalid.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Every agreement with its status and dates; warns about reviews that are overdue.
    List,
}

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

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create DIR/ca.pem, ca.key, server.pem, server.key and an empty crl.pem.
    Init {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Issue DIR/clients/NAME.pem and NAME.key with subject CN=NAME, O=AGENCY.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        agency: AgencyId,
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Add NAME's certificate to DIR/crl.pem.
    Revoke {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgenciesCommand {
    /// Register an agency.
    Add {
        id: AgencyId,
        #[arg(long)]
        kind: AgencyKind,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PrincipalsCommand {
    /// Register a principal bound to the subject and issuer of a client certificate.
    Add {
        id: PrincipalId,
        #[arg(long)]
        agency: AgencyId,
        /// The principal's client certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
    },
    /// Disable a principal; its next request is refused.
    Disable { id: PrincipalId },
    /// List the current version of every principal.
    List,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve => serve(&cli.config).await,
        Command::Certs(command) => {
            quiet_telemetry()?;
            certs(command, &mut std::io::stdout().lock())
        }
        Command::Reports(command) => {
            quiet_telemetry()?;
            let settings = Settings::load(&cli.config)?;
            reports_command(command, &settings, &mut std::io::stdout().lock()).await
        }
        Command::Agreements(command) => {
            quiet_telemetry()?;
            let settings = Settings::load(&cli.config)?;
            agreements_command(command, &settings, &mut std::io::stdout().lock()).await
        }
        Command::Audit(command) => {
            quiet_telemetry()?;
            let settings = Settings::load(&cli.config)?;
            tokio::task::spawn_blocking(move || {
                audit(command, &settings, &mut std::io::stdout().lock())
            })
            .await?
        }
        command => {
            quiet_telemetry()?;
            let settings = Settings::load(&cli.config)?;
            tokio::task::spawn_blocking(move || {
                administer(command, &settings, &mut std::io::stdout().lock())
            })
            .await?
        }
    }
}

async fn serve(config: &Path) -> anyhow::Result<()> {
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

/// Operator commands log warnings only, so their own output stays readable.
fn quiet_telemetry() -> anyhow::Result<()> {
    telemetry::init(&TelemetrySettings {
        filter: "warn".into(),
        ..TelemetrySettings::default()
    })
}

fn certs(command: CertsCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        CertsCommand::Init { dir } => {
            let pki = PkiDirectory::new(&dir);
            pki.init()?;
            writeln!(
                out,
                "created CA, server certificate and CRL in {}",
                dir.display()
            )?;
        }
        CertsCommand::Issue {
            dir,
            name,
            agency,
            days,
        } => {
            let path = PkiDirectory::new(&dir).issue_client(&name, &agency, days)?;
            writeln!(out, "issued {}", path.display())?;
        }
        CertsCommand::Revoke { dir, name } => {
            let pki = PkiDirectory::new(&dir);
            pki.revoke(&name)?;
            writeln!(out, "revoked {name} in {}", pki.crl().display())?;
        }
    }
    Ok(())
}

fn administer(command: Command, settings: &Settings, out: &mut impl Write) -> anyhow::Result<()> {
    let database = Database::connect(&settings.database.url).context("database.url")?;
    let applied = database.migrate()?;
    if let Command::Migrate = command {
        writeln!(out, "{} migration(s) applied", applied.len())?;
        for version in applied {
            writeln!(out, "  {version}")?;
        }
        return Ok(());
    }
    match command {
        Command::Agencies(AgenciesCommand::Add { id, kind, name }) => {
            let agency = Agency::new(id, kind, &name)?;
            database
                .run_blocking(|conn| agencies::insert(conn, &agency))
                .map_err(crate::app::AppError::from)?;
            writeln!(out, "added agency {}", agency.id)?;
        }
        Command::Principals(PrincipalsCommand::Add {
            id,
            agency,
            cert,
            roles,
        }) => {
            let principal = Principal {
                id,
                version: 1,
                certificate: binding_for(&cert, &agency)?,
                agency,
                roles: roles.into_iter().collect(),
                status: PrincipalStatus::Active,
            };
            database
                .run_blocking(|conn| principals::add(conn, &principal))
                .map_err(crate::app::AppError::from)?;
            writeln!(out, "added principal {}", principal.id)?;
        }
        Command::Principals(PrincipalsCommand::Disable { id }) => {
            let principal = database
                .run_blocking(|conn| principals::disable(conn, &id))
                .map_err(crate::app::AppError::from)?;
            writeln!(
                out,
                "principal {} is disabled (version {})",
                principal.id, principal.version
            )?;
        }
        Command::Principals(PrincipalsCommand::List) => {
            let all = database.run_blocking(principals::list_current)?;
            writeln!(
                out,
                "{:<24} {:<20} {:<9} {:<3} {:<30} SUBJECT",
                "ID", "AGENCY", "STATUS", "V", "ROLES"
            )?;
            for p in all {
                writeln!(
                    out,
                    "{:<24} {:<20} {:<9} {:<3} {:<30} {}",
                    p.id,
                    p.agency,
                    p.status.as_str(),
                    p.version,
                    roles_to_text(&p.roles),
                    p.certificate.subject
                )?;
            }
        }
        Command::Serve
        | Command::Migrate
        | Command::Certs(_)
        | Command::Audit(_)
        | Command::Agreements(_)
        | Command::Reports(_) => {
            bail!("internal: command dispatched to the wrong handler")
        }
    }
    Ok(())
}

async fn reports_command(
    command: ReportsCommand,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let ReportsCommand::ServiceUsage {
        windows,
        as_of,
        format,
    } = command;
    let query = ReportQuery {
        windows: Some(windows),
        as_of,
    };
    let (gateway, writer) = operator_gateway(settings).await?;
    let call = operator_call(&gateway, Action::ReportServiceUsage);
    let threshold = gateway.suppression_threshold;
    let report = app::reports::service_usage(&gateway, &call, query)
        .await
        .map_err(operator_error)?;
    let mut text = Vec::new();
    match format {
        ReportFormat::Json => writeln!(text, "{}", serde_json::to_string_pretty(&report)?)?,
        ReportFormat::Csv => {
            writeln!(
                text,
                "window_months,subjects,measure,before,after,change_percent,suppressed"
            )?;
            for window in &report.windows {
                for row in &window.measures {
                    writeln!(
                        text,
                        "{},{},{},{},{},{},{}",
                        window.months,
                        window.subjects,
                        row.measure,
                        row.before,
                        row.after,
                        row.change_percent
                            .map_or(String::new(), |c| format!("{c:.1}")),
                        row.suppressed
                    )?;
                }
            }
        }
        ReportFormat::Table => {
            writeln!(text, "Emergency service use before and after enrolment, as of {} (counts below {} suppressed)", report.as_of, threshold)?;
            for window in &report.windows {
                writeln!(
                    text,
                    "\n{} months: {} subjects counted",
                    window.months, window.subjects
                )?;
                writeln!(
                    text,
                    "  {:<22} {:>8} {:>8} {:>9}",
                    "measure", "before", "after", "change"
                )?;
                for row in &window.measures {
                    let change = row.change_percent.map_or_else(
                        || {
                            if row.suppressed {
                                "suppr.".to_owned()
                            } else {
                                "n/a".to_owned()
                            }
                        },
                        |c| format!("{c:+.1}%"),
                    );
                    writeln!(
                        text,
                        "  {:<22} {:>8} {:>8} {:>9}",
                        row.label,
                        row.before.to_string(),
                        row.after.to_string(),
                        change
                    )?;
                }
            }
        }
    }
    // The entry, with the digest of exactly what is printed, is durable before it is.
    let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, &text));
    call.audit
        .record(Decision::Granted, "ok", Some(digest))
        .await
        .context("the audit trail cannot be written; no report")?;
    out.write_all(&text)?;
    drop((call, gateway));
    tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the audit writer failed"))?;
    Ok(())
}

/// The services an operator's command calls use cases with, and the audit writer to wait
/// for once the command is done.
async fn operator_gateway(
    settings: &Settings,
) -> anyhow::Result<(Gateway, std::thread::JoinHandle<()>)> {
    let owned = settings.clone();
    let (database, signer, keys, record_types) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let database = Database::connect(&owned.database.url).context("database.url")?;
            let signer = CheckpointSigner::load_or_create(&owned.keys.dir, &owned.audit.origin)
                .context("keys.dir")?;
            let keys = Keyring::load_or_create(&owned.keys.dir).context("keys.dir")?;
            let record_types =
                RecordTypes::load(&owned.policy.record_types).context("policy.record_types")?;
            Ok((database, signer, keys, record_types))
        })
        .await??;
    let (audit_log, writer) = AuditLog::start(database.clone(), settings.audit.append_timeout)?;
    let gateway = Gateway {
        database,
        keys: Arc::new(keys),
        record_types: Arc::new(record_types),
        audit_log,
        origin: settings.audit.origin.clone(),
        signer: Arc::new(signer),
        suppression_threshold: settings.policy.suppression_threshold,
    };
    Ok((gateway, writer))
}

/// One operator command as a use-case call, audited as `cli:<login name>`.
fn operator_call(gateway: &Gateway, action: Action) -> Call {
    let operator = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    let call = Call {
        actor: Actor::Operator(operator),
        audit: Recorder::new(
            gateway.audit_log.clone(),
            &uuid::Uuid::new_v4().to_string(),
            action,
        ),
    };
    let by = call.by();
    call.audit.annotate(|entry| entry.principal_id = Some(by));
    call
}

/// A use case's refusal in the operator's terms: a field is the flag that gave it.
fn operator_error(error: AppError) -> anyhow::Error {
    match error {
        AppError::Invalid { field, message } => {
            anyhow::anyhow!("--{}: {message}", field.replace('_', "-"))
        }
        other => other.into(),
    }
}

async fn agreements_command(
    command: AgreementsCommand,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (url, types_path) = (
        settings.database.url.clone(),
        settings.policy.record_types.clone(),
    );
    let (database, record_types) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let database = Database::connect(&url).context("database.url")?;
        database.migrate()?;
        let record_types = RecordTypes::load(&types_path).context("policy.record_types")?;
        Ok((database, record_types))
    })
    .await??;
    match command {
        AgreementsCommand::Import { files } => {
            let operator = std::env::var("USER").unwrap_or_else(|_| "operator".into());
            for (label, changed) in
                admin::import_agreements(&database, &record_types, &files, &operator).await?
            {
                writeln!(
                    out,
                    "{label}: {}",
                    if changed {
                        "imported, in force"
                    } else {
                        "already imported"
                    }
                )?;
            }
        }
        AgreementsCommand::List => {
            let stored = {
                let database = database.clone();
                tokio::task::spawn_blocking(move || {
                    database.run_blocking(|conn| {
                        Ok((
                            agreements::load_all(conn)?,
                            agreements::known_agencies(conn)?,
                        ))
                    })
                })
                .await??
            };
            let (all, agencies) = stored;
            let known = Known {
                agencies: &agencies,
                record_types: &record_types,
            };
            writeln!(
                out,
                "{:<28} {:<11} {:<9} {:<12} {:<12} NOTE",
                "ID", "STATUS", "IN FORCE", "VALID UNTIL", "REVIEW BY"
            )?;
            for agreement in &all {
                let view = routes::agreements::view(agreement, &known);
                let latest = agreement.versions.last();
                let overdue = routes::agreements::overdue_reviews(agreement);
                let note = match (view.in_force_version, latest) {
                    (Some(v), _) if overdue.contains(&v) => "WARNING: review overdue",
                    _ => "",
                };
                writeln!(
                    out,
                    "{:<28} {:<11} {:<9} {:<12} {:<12} {note}",
                    agreement.id,
                    format!("{:?}", view.status).to_lowercase(),
                    view.in_force_version
                        .map_or("-".to_owned(), |v| format!("v{v}")),
                    latest.map_or("-", |v| v.document.valid_until.as_str()),
                    latest.map_or("-", |v| v.document.review_by.as_str()),
                )?;
            }
        }
    }
    Ok(())
}

/// Audit commands read the trail as it is: they never migrate or write.
fn audit(command: AuditCommand, settings: &Settings, out: &mut impl Write) -> anyhow::Result<()> {
    let database = Database::connect(&settings.database.url).context("database.url")?;
    match command {
        AuditCommand::Verify { checkpoint } => {
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
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let started = Instant::now();
            let outcome = verify::verify_database(
                &database,
                &key,
                &settings.audit.origin,
                witness.as_deref(),
                &mut |done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                },
            )?;
            bar.finish_and_clear();
            match outcome {
                Ok(report) => writeln!(
                    out,
                    "audit trail verified: {} entries, {} checkpoints{}, in {:.2?}",
                    report.entries,
                    report.checkpoints,
                    if witness.is_some() {
                        ", extends the witness checkpoint"
                    } else {
                        ""
                    },
                    started.elapsed()
                )?,
                Err(failure) => bail!("audit trail verification FAILED at {failure}"),
            }
        }
        AuditCommand::Export {
            format,
            from,
            to,
            out: path,
        } => {
            let from = parse_cli_time("--from", from.as_deref())?;
            let to = parse_cli_time("--to", to.as_deref())?;
            let mut file = path
                .as_ref()
                .map(|path| {
                    std::fs::File::create(path)
                        .map(std::io::BufWriter::new)
                        .with_context(|| format!("--out: cannot create {}", path.display()))
                })
                .transpose()?;
            let written = database.run_blocking(|conn| {
                let export = Export::begin(conn, format, &settings.audit.origin, from, to)?;
                Ok(match file.as_mut() {
                    Some(file) => export::write_all(conn, export, file),
                    None => export::write_all(conn, export, out),
                })
            })??;
            if let Some(mut file) = file {
                file.flush()?;
                eprintln!("exported {written} entries");
            }
        }
    }
    Ok(())
}

fn parse_cli_time(flag: &str, raw: Option<&str>) -> anyhow::Result<Option<Timestamp>> {
    raw.map(|raw| {
        Timestamp::parse_rfc3339(raw)
            .with_context(|| format!("{flag}: {raw} is not an RFC 3339 timestamp"))
    })
    .transpose()
}

/// The certificate's subject and issuer, refusing a certificate whose `O` is not the
/// agency: such a principal could never be authenticated.
fn binding_for(certificate: &Path, agency: &AgencyId) -> anyhow::Result<CertificateBinding> {
    let chain = tls::read_certificates(certificate)?;
    let first = chain.first().context("the certificate file is empty")?;
    let (subject, issuer, organization, _) = tls::describe(first)?;
    if organization.as_deref() != Some(agency.as_str()) {
        bail!(
            "--cert: the certificate's organisation (O) is {}, not the agency {agency}",
            organization.as_deref().unwrap_or("absent or repeated")
        );
    }
    Ok(CertificateBinding { subject, issuer })
}
