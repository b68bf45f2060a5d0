//! The `concordat` command line for operators: serve, migrate, the development PKI,
//! agencies, principals, agreements, the audit trail, evaluation reports and the IG audit
//! report. One file per command group; each command is a thin caller of the same use cases
//! as the API (`crate::app`), its database work goes through [`Database::run`], and every
//! operator action that reads or changes data is audited through one helper
//! (`Operator::audited`).
//! Every command exits non-zero with a message on failure.

mod agencies;
pub(crate) mod agreements;
mod audit;
mod certs;
mod dev;
mod ig;
mod principals;
mod reports;
mod serve;
mod witness;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{
    app::{Actor, AppError, Call, Gateway},
    audit::{Action, AuditLog, Decision, Recorder},
    config::{Settings, TelemetrySettings},
    db::Database,
    domain::Role,
    telemetry,
};

pub use agencies::AgenciesCommand;
pub use agreements::AgreementsCommand;
pub use audit::AuditCommand;
pub use certs::CertsCommand;
pub use ig::IgCommand;
pub use principals::PrincipalsCommand;
pub use reports::ReportsCommand;
pub use witness::WitnessCommand;

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
    /// Run the gateway (the database must be migrated: see `migrate`).
    Serve,
    /// Apply pending database migrations, as the schema's owner.
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
    /// Information governance: the IG audit report for a period (audited).
    #[command(subcommand)]
    Ig(IgCommand),
    /// An agency's witness of the audit trail: with no subcommand, run it (`--config` names
    /// the witness's own configuration file).
    Witness {
        #[command(subcommand)]
        command: Option<WitnessCommand>,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = &mut std::io::stdout().lock();
    let config = &cli.config;
    match cli.command {
        Command::Serve => serve::serve(config).await,
        Command::Certs(command) => {
            quiet_telemetry()?;
            certs::run(command, out)
        }
        Command::Migrate => serve::migrate(&operator_settings(config)?, out).await,
        Command::Agencies(command) => {
            agencies::run(command, &operator_settings(config)?, out).await
        }
        Command::Principals(command) => {
            principals::run(command, &operator_settings(config)?, out).await
        }
        // An agency's check of the gateway runs where there is no gateway configuration.
        Command::Audit(command @ AuditCommand::Check { .. }) => {
            quiet_telemetry()?;
            audit::check_from_agency(command, out).await
        }
        Command::Audit(command) => audit::run(command, &operator_settings(config)?, out).await,
        Command::Agreements(command) => {
            agreements::run(command, &operator_settings(config)?, out).await
        }
        Command::Reports(command) => reports::run(command, &operator_settings(config)?, out).await,
        Command::Ig(command) => ig::run(command, &operator_settings(config)?, out).await,
        Command::Witness { command } => {
            if command.is_some() {
                quiet_telemetry()?;
            }
            witness::run(command, config, out).await
        }
    }
}

/// The settings for an operator command, with its logging quiet.
fn operator_settings(config: &std::path::Path) -> anyhow::Result<Settings> {
    quiet_telemetry()?;
    Ok(Settings::load(config)?)
}

/// Operator commands log warnings only, so their own output stays readable.
fn quiet_telemetry() -> anyhow::Result<()> {
    telemetry::init(&TelemetrySettings {
        filter: "warn".into(),
        ..TelemetrySettings::default()
    })
}

/// Runs blocking work (opening files and connections, migrating, verifying) on tokio's
/// blocking pool: the one way a command does I/O that would otherwise block the executor.
/// Queries go through [`Database::run`].
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work).await?
}

/// Opens the configured database.
async fn connect(settings: &Settings) -> anyhow::Result<Database> {
    let url = settings.database.url.clone();
    blocking(move || Database::connect(&url).context("database.url")).await
}

/// How long an operator command waits for its audit entry.
const AUDIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// An operator at the command line: the database (at this binary's schema version) and an audit writer of the
/// command's own, so each action's entry is durable before the action changes or prints
/// anything, exactly as for an API call.
pub(crate) struct Operator {
    database: Database,
    log: AuditLog,
    writer: std::thread::JoinHandle<()>,
    name: String,
}

impl Operator {
    /// The operator at this terminal, by login name.
    async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let name = std::env::var("USER").unwrap_or_else(|_| "operator".into());
        Self::open_as(settings, &name).await
    }

    /// An operator session under `name` (development mode's own set-up is `dev-mode`).
    pub(crate) async fn open_as(settings: &Settings, name: &str) -> anyhow::Result<Self> {
        let database = connect(settings).await?;
        let checking = database.clone();
        blocking(move || Ok(checking.require_current_schema()?)).await?;
        let (log, writer) = AuditLog::start(database.clone(), AUDIT_TIMEOUT)?;
        Ok(Self {
            database,
            log,
            writer,
            name: name.to_owned(),
        })
    }

    /// The services for use cases that need keys and record types, writing to this
    /// session's trail.
    pub(crate) async fn gateway(&self, settings: &Settings) -> anyhow::Result<Gateway> {
        let (settings, database, log) = (settings.clone(), self.database.clone(), self.log.clone());
        blocking(move || Gateway::load(&settings, database, log)).await
    }

    /// The call of one operator action, audited as `cli:<user>` with the admin role.
    fn call(&self, action: Action) -> Call {
        let audit = Recorder::new(self.log.clone(), &uuid::Uuid::new_v4().to_string(), action);
        let name = format!("cli:{}", self.name);
        audit.annotate(|entry| {
            entry.principal_id = Some(name);
            entry.roles = vec![Role::Admin.to_string()];
        });
        Call {
            actor: Actor::Operator(self.name.clone()),
            audit,
        }
    }

    /// Runs one action as a use case and makes sure it leaves exactly one entry before its
    /// result is shown: a use case that changes something records before it acts; for a
    /// read, or a refusal, the entry is recorded here, as the HTTP edge does for requests.
    pub(crate) async fn audited<T>(
        &self,
        action: Action,
        work: impl AsyncFnOnce(&Call) -> Result<T, AppError>,
    ) -> anyhow::Result<T> {
        let call = self.call(action);
        let outcome = work(&call).await;
        if call.audit.receipt().is_none() {
            let (decision, reason) = match &outcome {
                Ok(_) => (Decision::Granted, "ok"),
                Err(AppError::Internal(_) | AppError::AuditUnavailable(_)) => {
                    (Decision::Error, "internal")
                }
                Err(error) => (Decision::Denied, error.code()),
            };
            call.audit
                .record(decision, reason, None)
                .await
                .context("the audit trail cannot be written; nothing done")?;
        }
        Ok(outcome?)
    }

    /// Lets the writer finish what is queued: every entry is durable when this returns.
    pub(crate) async fn close(self) -> anyhow::Result<()> {
        drop(self.log);
        let writer = self.writer;
        blocking(move || {
            writer
                .join()
                .map_err(|_| anyhow::anyhow!("the audit writer failed"))
        })
        .await
    }
}

/// One command, one action: opens the operator's session, runs the use case audited, and
/// returns once its entry is durable. For use cases that need only the database.
async fn audited<T>(
    settings: &Settings,
    action: Action,
    work: impl AsyncFnOnce(&Database, &Call) -> Result<T, AppError>,
) -> anyhow::Result<T> {
    let operator = Operator::open(settings).await?;
    let database = operator.database.clone();
    let outcome = operator
        .audited(action, async |call| work(&database, call).await)
        .await;
    operator.close().await?;
    outcome
}

/// The same as [`audited`] for use cases that need the gateway's keys and record types.
async fn audited_with_gateway<T>(
    settings: &Settings,
    action: Action,
    work: impl AsyncFnOnce(&Gateway, &Call) -> Result<T, AppError>,
) -> anyhow::Result<T> {
    let operator = Operator::open(settings).await?;
    let gateway = operator.gateway(settings).await?;
    let outcome = operator
        .audited(action, async |call| work(&gateway, call).await)
        .await;
    drop(gateway);
    operator.close().await?;
    outcome
}

/// A use case's refusal in the operator's terms: the field is the flag that gave it.
fn flag_error(error: anyhow::Error) -> anyhow::Error {
    match error.downcast_ref::<AppError>() {
        Some(AppError::Invalid { field, message }) => {
            anyhow::anyhow!("--{}: {message}", field.replace('_', "-"))
        }
        _ => error,
    }
}
