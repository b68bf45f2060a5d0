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
    app::{self, Actor, Call, Gateway},
    audit::{
        checkpoint::{CheckpointSigner, VerifierKey},
        export::{self, ExportFormat, Exporter},
        store::Filter,
        verify, Action, AuditLog, Recorder,
    },
    config::{Settings, TelemetrySettings},
    crypto::Keyring,
    db::{agencies, principals, Database},
    dev,
    domain::{
        agreement::AgreementDocument, principal::roles_to_text, record_type::RecordTypes, Agency,
        AgencyId, AgencyKind, CertificateBinding, Principal, PrincipalId, PrincipalStatus, Role,
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
    let windows = routes::reports::parse_windows(Some(&windows))
        .map_err(|e| anyhow::anyhow!("--windows: {e}"))?;
    let as_of = match as_of {
        Some(raw) => time::Date::parse(&raw, &time::format_description::well_known::Iso8601::DATE)
            .with_context(|| format!("--as-of: {raw} is not a date, YYYY-MM-DD"))?,
        None => time::OffsetDateTime::now_utc().date(),
    };
    let as_of = routes::reports::month_end(as_of).map_err(|e| anyhow::anyhow!("--as-of: {e}"))?;

    let database = {
        let url = settings.database.url.clone();
        tokio::task::spawn_blocking(move || Database::connect(&url)).await??
    };
    admin::audit_report(&database).await?;
    let threshold = settings.policy.suppression_threshold;
    let report = {
        let database = database.clone();
        tokio::task::spawn_blocking(move || {
            database.run_blocking(|conn| routes::reports::build(conn, &windows, as_of, threshold))
        })
        .await??
    };
    match format {
        ReportFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
        ReportFormat::Csv => {
            writeln!(
                out,
                "window_months,subjects,measure,before,after,change_percent,suppressed"
            )?;
            for window in &report.windows {
                for row in &window.measures {
                    writeln!(
                        out,
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
            writeln!(out, "Emergency service use before and after enrolment, as of {} (counts below {} suppressed)", report.as_of, threshold)?;
            for window in &report.windows {
                writeln!(
                    out,
                    "\n{} months: {} subjects counted",
                    window.months, window.subjects
                )?;
                writeln!(
                    out,
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
                        out,
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
    Ok(())
}

async fn agreements_command(
    command: AgreementsCommand,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (gateway, writer) = operator_gateway(settings).await?;
    let operator = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    match command {
        AgreementsCommand::Import { files } => {
            for imported in import_agreement_files(&gateway, &operator, &files).await? {
                writeln!(
                    out,
                    "{}: {}",
                    imported.agreement,
                    if imported.changed {
                        "imported, in force"
                    } else {
                        "already imported"
                    }
                )?;
            }
        }
        AgreementsCommand::List => {
            let call = operator_call(&gateway, &operator, Action::AgreementList);
            let summaries = app::agreements::summaries(&gateway, &call).await?;
            writeln!(
                out,
                "{:<28} {:<11} {:<9} {:<12} {:<12} NOTE",
                "ID", "STATUS", "IN FORCE", "VALID UNTIL", "REVIEW BY"
            )?;
            for summary in summaries {
                writeln!(
                    out,
                    "{:<28} {:<11} {:<9} {:<12} {:<12} {}",
                    summary.id,
                    format!("{:?}", summary.status).to_lowercase(),
                    summary
                        .in_force_version
                        .map_or("-".to_owned(), |v| format!("v{v}")),
                    summary.valid_until.as_deref().unwrap_or("-"),
                    summary.review_by.as_deref().unwrap_or("-"),
                    if summary.review_overdue {
                        "WARNING: review overdue"
                    } else {
                        ""
                    },
                )?;
            }
        }
    }
    close_gateway(gateway, writer).await
}

/// The services an operator's command works through: the configured database (migrated),
/// keys and record types, and an audit writer to be joined once the command is done.
pub(crate) async fn operator_gateway(
    settings: &Settings,
) -> anyhow::Result<(Gateway, std::thread::JoinHandle<()>)> {
    let (url, keys, origin, types_path) = (
        settings.database.url.clone(),
        settings.keys.dir.clone(),
        settings.audit.origin.clone(),
        settings.policy.record_types.clone(),
    );
    let (database, signer, keyring, record_types) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let database = Database::connect(&url).context("database.url")?;
            database.migrate()?;
            let signer = CheckpointSigner::load_or_create(&keys, &origin).context("keys.dir")?;
            let keyring = Keyring::load_or_create(&keys).context("keys.dir")?;
            let record_types = RecordTypes::load(&types_path).context("policy.record_types")?;
            Ok((database, signer, keyring, record_types))
        })
        .await??;
    let (audit_log, writer) = AuditLog::start(database.clone(), settings.audit.append_timeout)?;
    let gateway = Gateway {
        database,
        keys: Arc::new(keyring),
        record_types: Arc::new(record_types),
        audit_log,
        origin: settings.audit.origin.clone(),
        signer: Arc::new(signer),
        suppression_threshold: settings.policy.suppression_threshold,
    };
    Ok((gateway, writer))
}

/// Waits until every entry the command queued is written.
pub(crate) async fn close_gateway(
    gateway: Gateway,
    writer: std::thread::JoinHandle<()>,
) -> anyhow::Result<()> {
    drop(gateway);
    tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the audit writer failed"))
}

/// One operator action, audited as `cli:<operator>` with the admin role.
fn operator_call(gateway: &Gateway, operator: &str, action: Action) -> Call {
    let audit = Recorder::new(
        gateway.audit_log.clone(),
        &uuid::Uuid::new_v4().to_string(),
        action,
    );
    audit.annotate(|entry| {
        entry.principal_id = Some(format!("cli:{operator}"));
        entry.roles = vec![Role::Admin.to_string()];
    });
    Call {
        actor: Actor::Operator(operator.to_owned()),
        audit,
    }
}

/// Reads and checks every file first (nothing is imported if one is wrong), then imports
/// each as its own audited operator action, which makes that version the one in force.
pub(crate) async fn import_agreement_files(
    gateway: &Gateway,
    operator: &str,
    files: &[impl AsRef<Path>],
) -> anyhow::Result<Vec<app::agreements::Imported>> {
    let mut documents = Vec::new();
    for file in files {
        let path = file.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let document: AgreementDocument =
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        app::agreements::validate(gateway, &document)
            .await
            .with_context(|| format!("{}: invalid agreement", path.display()))?;
        documents.push(document);
    }
    let mut imported = Vec::new();
    for document in documents {
        let agreement = document.reference();
        let call = operator_call(gateway, operator, Action::AgreementImport);
        imported.push(
            app::agreements::import(gateway, &call, document)
                .await
                .with_context(|| format!("{agreement}: not imported"))?,
        );
    }
    Ok(imported)
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
            let size = database.run_blocking(crate::audit::store::tree_size)?;
            let filter = Filter {
                from_micros: parse_cli_time("--from", from.as_deref())?,
                to_micros: parse_cli_time("--to", to.as_deref())?,
                before_index: Some(size),
                ..Filter::default()
            };
            let mut exporter = Exporter::new(format, &settings.audit.origin);
            let mut file = path
                .as_ref()
                .map(|path| {
                    std::fs::File::create(path)
                        .map(std::io::BufWriter::new)
                        .with_context(|| format!("--out: cannot create {}", path.display()))
                })
                .transpose()?;
            let written = database.run_blocking(|conn| {
                Ok(match file.as_mut() {
                    Some(file) => export::write_all(conn, &filter, &mut exporter, file),
                    None => export::write_all(conn, &filter, &mut exporter, out),
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

fn parse_cli_time(flag: &str, raw: Option<&str>) -> anyhow::Result<Option<i64>> {
    raw.map(|raw| {
        time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
            .map(|t| crate::domain::Timestamp::from(t).micros())
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
