//! The use cases: one function per thing a person or system does through the gateway
//! (enrol, read records, approve an agreement, search the trail...). Every caller, the
//! HTTP API, the CLI and the console, goes through these functions, so a rule is decided
//! in one place whoever asks.
//!
//! A use case takes the [`Gateway`] (the shared services), the [`Call`] (who is calling,
//! and the audit entry of this call) and typed input; it returns typed output or an
//! [`AppError`] that names the rule. It checks everything it can before it changes
//! anything, makes the call's entry durable first, and only then acts. It knows nothing of
//! HTTP or terminals.
//!
//! Who records the entry: a use case that changes something records it before the change;
//! a records read records it with the digest of the disclosure before returning it. Every
//! other call (a refusal, an error, a plain read such as a lookup or a consent history)
//! returns with the entry still open, and the *caller's edge* must record it, with the
//! digest of what it is about to show, before showing anything: the HTTP middleware
//! (`src/routes/trail.rs`) and the CLI's operator helper do exactly that, and any new edge must.

pub mod agreements;
pub mod audit;
pub mod consents;
pub mod error;
pub mod explain;
pub mod ig_report;
pub mod input;
pub mod records;
pub mod registry;
pub mod reports;
pub mod subjects;

use std::sync::Arc;

use anyhow::Context;
pub use error::AppError;

use crate::{
    audit::{checkpoint::CheckpointSigner, AuditLog, Change, CommitError, Recorder},
    config::Settings,
    crypto::Keyring,
    db::{agreements::InForceMemo, record_types as record_type_catalogues, Database},
    domain::{record_type::RecordTypes, AgencyId, Principal, Role},
};

/// The services every use case may need, shared by every caller. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub database: Database,
    pub keys: Arc<Keyring>,
    pub record_types: Arc<RecordTypes>,
    /// Hex SHA-256 of `record_types` as stored: what a read's entry names.
    pub record_types_sha256: String,
    pub audit_log: AuditLog,
    /// The checkpoint origin line (`audit.origin`).
    pub origin: String,
    pub signer: Arc<CheckpointSigner>,
    /// Counts below this are suppressed in evaluation reports.
    pub suppression_threshold: u32,
    /// The agreements in force, recomputed whenever the agreement tables change.
    pub agreements_in_force: Arc<InForceMemo>,
}

impl Gateway {
    /// Loads what the use cases need beside the database and the trail: the checkpoint
    /// key, the data keys and the record types (stored if they are new). Blocking (it reads
    /// files and writes): call it off the executor. The gateway and the command line both build theirs here.
    pub fn load(
        settings: &Settings,
        database: Database,
        audit_log: AuditLog,
    ) -> anyhow::Result<Self> {
        // Keys are created on a first start only: on a mis-mounted or emptied `keys.dir`, a
        // new blind-index key would miss every lookup (and let a person be enrolled twice),
        // a new data key would open nothing, and a new checkpoint key would sign what the
        // published one does not verify.
        let in_use = database
            .run_blocking(crate::db::keys_in_use)
            .context("database")?;
        let (dir, origin) = (&settings.keys.dir, &settings.audit.origin);
        let signer = checkpoint_signer(dir, origin, in_use)?;
        let keys = data_keys(dir, in_use)?;
        let record_types =
            RecordTypes::load(&settings.policy.record_types).context("policy.record_types")?;
        // Stored before any decision is made by them, so that every read can name them and
        // be replayed with them (`app::explain`).
        let record_types_sha256 = database
            .run_blocking(|conn| record_type_catalogues::register(conn, &record_types))
            .context("policy.record_types: storing the record type definitions")?;
        Ok(Self {
            database,
            keys: Arc::new(keys),
            record_types: Arc::new(record_types),
            record_types_sha256,
            audit_log,
            origin: settings.audit.origin.clone(),
            signer: Arc::new(signer),
            suppression_threshold: settings.policy.suppression_threshold,
            agreements_in_force: Arc::default(),
        })
    }
}

/// The checkpoint key in `dir`, created only while the database holds no checkpoint.
fn checkpoint_signer(
    dir: &std::path::Path,
    origin: &str,
    in_use: crate::db::KeysInUse,
) -> anyhow::Result<CheckpointSigner> {
    if in_use.checkpoints {
        CheckpointSigner::load(dir, origin).context(
            "keys.dir: the database holds signed checkpoints, so no new checkpoint key is \
             created; restore audit-checkpoint.pk8 from the backup of the keys",
        )
    } else {
        CheckpointSigner::load_or_create(dir, origin).context("keys.dir")
    }
}

/// The data and blind-index keys in `dir`, created only while the database seals nothing.
pub fn data_keys(dir: &std::path::Path, in_use: crate::db::KeysInUse) -> anyhow::Result<Keyring> {
    if in_use.sealed_rows {
        Keyring::load(dir).context(
            "keys.dir: the database holds sealed rows, so no new data or blind-index key is \
             created; restore data-key-<n>.bin and blind-index.key from the backup of the keys",
        )
    } else {
        Keyring::load_or_create(dir).context("keys.dir")
    }
}

/// Who makes a call.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A principal identified by its client certificate (API and console).
    Principal(Principal),
    /// An operator at the gateway's own command line, who already holds the database and
    /// the keys; audited as `cli:<name>`.
    Operator(String),
}

/// One call of a use case: who makes it and the entry it will leave.
#[derive(Debug, Clone)]
pub struct Call {
    pub actor: Actor,
    pub audit: Recorder,
}

impl Call {
    /// The principal making the call, if it is not an operator.
    pub fn principal(&self) -> Option<&Principal> {
        match &self.actor {
            Actor::Principal(principal) => Some(principal),
            Actor::Operator(_) => None,
        }
    }

    /// Whether the caller holds `role`. An operator holds every role of the command line.
    pub fn has_role(&self, role: Role) -> bool {
        match &self.actor {
            Actor::Principal(principal) => principal.has_role(role),
            Actor::Operator(_) => true,
        }
    }

    /// The caller's agency; operators act for none.
    pub fn agency(&self) -> Option<&AgencyId> {
        self.principal().map(|p| &p.agency)
    }

    /// Who made a change, as stored beside it (`recorded_by`, `created_by`...).
    pub fn by(&self) -> String {
        match &self.actor {
            Actor::Principal(principal) => principal.id.to_string(),
            Actor::Operator(name) => format!("cli:{name}"),
        }
    }

    /// Refuses with the rule `role` unless the caller holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), AppError> {
        if roles.iter().any(|role| self.has_role(*role)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(AppError::refused(
            error::Rule::Role,
            format!("This needs the role {}.", names.join(" or ")),
        ))
    }

    /// Makes the entry durable before a change: a change never exists without its entry.
    pub async fn record_before_change(&self) -> Result<(), AppError> {
        self.audit.record_before_change().await?;
        Ok(())
    }

    /// Stores a single-write change in its entry's transaction: the change never exists
    /// without its entry, and the entry never claims a change that was refused.
    pub async fn record_with_change(&self, change: Change) -> Result<(), AppError> {
        match self.audit.record_with_change(change).await {
            Ok(_) => Ok(()),
            Err(CommitError::Audit(error)) => Err(error.into()),
            Err(CommitError::Change { error, .. }) => Err(error.into()),
        }
    }
}
