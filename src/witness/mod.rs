//! `concordat witness`: a small service an agency runs on its own machine, with its own
//! Ed25519 key, that cosigns the gateway's audit checkpoints (C2SP `tlog-witness`) only when
//! each is consistent with the last one it cosigned. It keeps that checkpoint per log on
//! disk, and keeps as evidence every validly signed checkpoint that contradicts it.
//!
//! The protocol's decisions are pure ([`protocol`]); this module holds the witness's
//! settings, its files ([`store`]) and its HTTP service ([`service`]).

pub mod protocol;
pub mod service;
pub mod store;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use figment::{
    providers::{Format, Toml},
    Figment,
};
use serde::Deserialize;

use crate::{audit::checkpoint::VerifierKey, config::ConfigError};

/// The witness's configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessSettings {
    /// The witness's name, as its cosignature lines and verifier key carry it (a schema-less
    /// URL, e.g. `witness.hampshire-police.example/w1`).
    pub name: String,
    /// Its Ed25519 private key (PKCS#8, mode 0600), created at the first start.
    pub key: PathBuf,
    /// Where it keeps the latest checkpoint per log and any evidence.
    pub state_dir: PathBuf,
    /// Where it listens for `POST /add-checkpoint` (and serves `/metrics`).
    pub bind: SocketAddr,
    /// The logs it witnesses.
    pub logs: Vec<LogSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// The log's origin: the first line of its checkpoints (`audit.origin`).
    pub origin: String,
    /// The log's verifier key (`GET /v1/audit/checkpoint/key`, `audit-checkpoint.vkey`).
    pub vkey: String,
}

impl WitnessSettings {
    /// Reads `file`; relative paths in it are relative to the file's directory.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        if !file.is_file() {
            return Err(ConfigError::Missing(file.to_path_buf()));
        }
        let mut settings: Self = Figment::from(Toml::file_exact(file))
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))?;
        let base = file.parent().unwrap_or(Path::new("."));
        settings.key = base.join(&settings.key);
        settings.state_dir = base.join(&settings.state_dir);
        if settings.name.is_empty()
            || settings.name.contains(char::is_whitespace)
            || settings.name.contains('+')
        {
            return Err(ConfigError::Value {
                key: "name",
                message: "must be a non-empty name without spaces or '+'".into(),
            });
        }
        for log in &settings.logs {
            let key = VerifierKey::parse(&log.vkey).map_err(|e| ConfigError::Value {
                key: "logs.vkey",
                message: e.to_string(),
            })?;
            if key.name() != log.origin {
                return Err(ConfigError::Value {
                    key: "logs.vkey",
                    message: format!(
                        "the key is named {:?}, not the log's origin {:?}",
                        key.name(),
                        log.origin
                    ),
                });
            }
        }
        Ok(settings)
    }

    /// The logs as the protocol sees them (keys parsed by [`WitnessSettings::load`]).
    pub fn known_logs(&self) -> Vec<protocol::KnownLog> {
        self.logs
            .iter()
            .filter_map(|log| {
                Some(protocol::KnownLog {
                    origin: log.origin.clone(),
                    key: VerifierKey::parse(&log.vkey).ok()?,
                })
            })
            .collect()
    }
}
