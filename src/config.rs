//! Typed settings: the TOML file named by `--config` or `CONCORDAT_CONFIG`, then
//! `CONCORDAT_<SECTION>_<KEY>` environment overrides.
//!
//! Settings are read once at start-up and passed down as a value; nothing reads them from a
//! global. A bad file or value stops start-up with a message that names the key. The
//! database URL may carry a password, so it is kept in a [`SecretString`] and never printed.

use std::{
    fmt,
    net::SocketAddr,
    num::NonZeroU32,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    providers::{Env, Format, Toml},
    Figment,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Sections that environment overrides may target; any other `CONCORDAT_*` variable (such as
/// `CONCORDAT_CONFIG` itself or the test suite's own variables) is not a setting.
const SECTIONS: [&str; 9] = [
    "server",
    "dev",
    "tls",
    "database",
    "keys",
    "audit",
    "limits",
    "policy",
    "telemetry",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(Box<figment::Error>),
    #[error("invalid configuration: {key}: {message}")]
    Value { key: &'static str, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    #[serde(default)]
    pub dev: DevSettings,
    pub tls: TlsSettings,
    pub database: DatabaseSettings,
    pub keys: KeySettings,
    pub audit: AuditSettings,
    pub limits: LimitSettings,
    pub policy: PolicySettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Mutual-TLS API listener. Port 0 binds an ephemeral port (tests).
    pub bind: SocketAddr,
    /// Plain-HTTP health and metrics listener; keep it on loopback.
    pub ops_bind: SocketAddr,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevSettings {
    /// Development mode: creates a dev PKI and sample agencies and principals at start-up.
    /// Only the shipped development configuration turns it on.
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
    pub crl: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Checkpoint origin line (C2SP tlog-checkpoint), e.g. `concordat.example/iow-recovery`.
    pub origin: String,
    /// How often a checkpoint is signed while the tree grows, e.g. `"30s"`.
    #[serde(with = "humantime_serde")]
    pub checkpoint_every: Duration,
    /// How long a request waits for its entry to be durable before it is refused with
    /// 503 (and discloses nothing).
    #[serde(with = "humantime_serde", default = "default_append_timeout")]
    pub append_timeout: Duration,
    /// Witnesses each new checkpoint is sent to (C2SP `tlog-witness`), each run by an agency
    /// on its own machine. None by default.
    #[serde(default)]
    pub witnesses: Vec<WitnessEndpoint>,
    /// How many of them must cosign a checkpoint for it to count as witnessed in
    /// `/health/ready`. Reported only: a witness never holds up a request.
    #[serde(default)]
    pub witness_quorum: usize,
}

/// One witness: where its `add-checkpoint` is, and its verifier key (which names it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessEndpoint {
    /// The witness's submission prefix, e.g. `https://witness.police.example/concordat`.
    pub url: String,
    /// `<name>+<key id>+<base64 key>`, as `concordat witness key` prints it (parsed, and
    /// each witness's name checked to be listed once, when the gateway starts).
    pub vkey: String,
}

fn default_append_timeout() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub per_principal_rps: NonZeroU32,
    pub per_principal_burst: NonZeroU32,
    pub max_body_bytes: usize,
    /// New connections one peer address may open per second, counted before the TLS
    /// handshake (which is the expensive part for the gateway); beyond the burst the
    /// connection is closed unread. Callers behind one NAT or proxy share an address.
    #[serde(default = "default_per_address_connections_rps")]
    pub per_address_connections_rps: NonZeroU32,
    #[serde(default = "default_per_address_connections_burst")]
    pub per_address_connections_burst: NonZeroU32,
    /// Open connections the API listener holds at once, across all workers; beyond it new
    /// connections wait in the kernel's backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A TLS handshake not finished within this is cut off.
    #[serde(with = "humantime_serde", default = "default_handshake_timeout")]
    pub handshake_timeout: Duration,
    /// A request whose head (request line and headers) has not fully arrived within this
    /// is answered 408 and its connection closed; so is a body still arriving after it.
    #[serde(with = "humantime_serde", default = "default_request_read_timeout")]
    pub request_read_timeout: Duration,
}

fn default_per_address_connections_rps() -> NonZeroU32 {
    NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN)
}

fn default_per_address_connections_burst() -> NonZeroU32 {
    NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN)
}

fn default_max_connections() -> usize {
    4096
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(3)
}

fn default_request_read_timeout() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    pub record_types: PathBuf,
    pub agreements: PathBuf,
    pub suppression_threshold: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive, e.g. `info` or `concordat=debug,info`.
    #[serde(default = "default_filter")]
    pub filter: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            filter: default_filter(),
        }
    }
}

fn default_filter() -> String {
    "info".to_owned()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// Where the gateway keeps its data, chosen by URL scheme: `sqlite://PATH` or
/// `postgres://...` (also `postgresql://`). Any other scheme is refused when read.
#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(SecretString),
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(path) = raw.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, e.g. sqlite://data/concordat.db".into());
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Ok(Self::Postgres(SecretString::from(raw.to_owned())))
        } else {
            let scheme = raw.split_once("://").map_or("(none)", |(scheme, _)| scheme);
            Err(format!(
                "unsupported database scheme {scheme:?}: use sqlite://PATH or postgres://..."
            ))
        }
    }

    /// The connection string handed to the driver. Never log it.
    pub fn expose(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => url.expose_secret().to_owned(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(_) => f.write_str("postgres://[redacted]"),
        }
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl Settings {
    /// Reads `file`, then the environment overrides, then checks values that types alone
    /// cannot (empty origin, zero limits).
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        if !file.is_file() {
            return Err(ConfigError::Missing(file.to_path_buf()));
        }
        Self::from_figment(Figment::from(Toml::file_exact(file)).merge(environment()))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Self = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let origin = self.audit.origin.trim();
        if origin.is_empty() || origin.contains('\n') {
            return Err(ConfigError::Value {
                key: "audit.origin",
                message: "must be a non-empty single line".into(),
            });
        }
        if self.audit.checkpoint_every.is_zero() {
            return Err(ConfigError::Value {
                key: "audit.checkpoint_every",
                message: "must be longer than zero".into(),
            });
        }
        if self.audit.append_timeout.is_zero() {
            return Err(ConfigError::Value {
                key: "audit.append_timeout",
                message: "must be longer than zero".into(),
            });
        }
        for witness in &self.audit.witnesses {
            let scheme = url::Url::parse(&witness.url).map(|url| url.scheme().to_owned());
            if !matches!(scheme.as_deref(), Ok("http" | "https")) {
                return Err(ConfigError::Value {
                    key: "audit.witnesses.url",
                    message: format!("{:?} is not an http or https URL", witness.url),
                });
            }
        }
        if self.audit.witness_quorum > self.audit.witnesses.len() {
            return Err(ConfigError::Value {
                key: "audit.witness_quorum",
                message: "must be at most the number of audit.witnesses".into(),
            });
        }
        if self.limits.max_body_bytes == 0 {
            return Err(ConfigError::Value {
                key: "limits.max_body_bytes",
                message: "must be greater than zero".into(),
            });
        }
        if self.limits.per_principal_burst < self.limits.per_principal_rps {
            return Err(ConfigError::Value {
                key: "limits.per_principal_burst",
                message: "must be at least limits.per_principal_rps".into(),
            });
        }
        if self.limits.per_address_connections_burst < self.limits.per_address_connections_rps {
            return Err(ConfigError::Value {
                key: "limits.per_address_connections_burst",
                message: "must be at least limits.per_address_connections_rps".into(),
            });
        }
        if self.limits.max_connections == 0 {
            return Err(ConfigError::Value {
                key: "limits.max_connections",
                message: "must be greater than zero".into(),
            });
        }
        for (key, timeout) in [
            ("limits.handshake_timeout", self.limits.handshake_timeout),
            (
                "limits.request_read_timeout",
                self.limits.request_read_timeout,
            ),
        ] {
            if timeout.is_zero() {
                return Err(ConfigError::Value {
                    key,
                    message: "must be longer than zero".into(),
                });
            }
        }
        if self.policy.suppression_threshold == 0 {
            return Err(ConfigError::Value {
                key: "policy.suppression_threshold",
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// `CONCORDAT_DATABASE_URL` → `database.url`: the first underscore after the prefix separates
/// section from key, so keys that contain underscores (`per_principal_rps`) survive.
fn environment() -> Env {
    Env::prefixed("CONCORDAT_")
        .filter(|key| {
            key.as_str().split_once('_').is_some_and(|(section, _)| {
                SECTIONS.contains(&section.to_ascii_lowercase().as_str())
            })
        })
        .map(|key| {
            key.as_str()
                .to_ascii_lowercase()
                .replacen('_', ".", 1)
                .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../config/concordat.toml");

    fn from_toml(toml: &str) -> Result<Settings, ConfigError> {
        Settings::from_figment(Figment::from(Toml::string(toml)))
    }

    fn shipped_with(from: &str, to: &str) -> String {
        assert!(SHIPPED.contains(from), "shipped config lacks {from}");
        SHIPPED.replacen(from, to, 1)
    }

    #[test]
    fn shipped_configuration_is_valid_and_in_dev_mode() {
        let settings = from_toml(SHIPPED).expect("shipped config loads");
        assert!(settings.dev.enabled);
        assert!(matches!(settings.database.url, DatabaseUrl::Sqlite(_)));
    }

    #[test]
    fn bad_value_names_its_key() {
        let toml = shipped_with("per_principal_rps = 50", "per_principal_rps = \"fast\"");
        let message = from_toml(&toml).unwrap_err().to_string();
        assert!(message.contains("per_principal_rps"), "{message}");
    }

    #[test]
    fn unknown_key_is_refused_by_name() {
        let toml = shipped_with("[limits]", "[limits]\nper_principle_rps = 3");
        let message = from_toml(&toml).unwrap_err().to_string();
        assert!(message.contains("per_principle_rps"), "{message}");
    }

    #[test]
    fn unknown_database_scheme_is_refused() {
        let toml = shipped_with("url = \"sqlite://", "url = \"mysql://");
        let message = from_toml(&toml).unwrap_err().to_string();
        assert!(message.contains("unsupported database scheme"), "{message}");
        assert!(message.contains("database.url"), "{message}");
    }

    #[test]
    fn zero_threshold_is_refused_by_key() {
        let toml = shipped_with("suppression_threshold = 5", "suppression_threshold = 0");
        let message = from_toml(&toml).unwrap_err().to_string();
        assert!(
            message.contains("policy.suppression_threshold"),
            "{message}"
        );
    }

    #[test]
    fn postgres_password_never_prints() {
        let url = DatabaseUrl::parse("postgres://gateway:hunter2@db/concordat").unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment's Jail fixes the closure's error type"
    )]
    fn environment_overrides_split_section_from_key_once() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("concordat.toml", SHIPPED)?;
            jail.set_env("CONCORDAT_LIMITS_PER_PRINCIPAL_RPS", "7");
            jail.set_env("CONCORDAT_DATABASE_URL", "sqlite://elsewhere.db");
            jail.set_env("CONCORDAT_TEST_POSTGRES_URL", "postgres://ignored");
            let settings = Settings::load(Path::new("concordat.toml")).expect("loads");
            assert_eq!(settings.limits.per_principal_rps.get(), 7);
            assert_eq!(settings.database.url.expose(), "elsewhere.db");
            Ok(())
        });
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment's Jail fixes the closure's error type"
    )]
    fn bad_environment_value_names_the_variable() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("concordat.toml", SHIPPED)?;
            jail.set_env("CONCORDAT_SERVER_BIND", "not-an-address");
            let message = Settings::load(Path::new("concordat.toml"))
                .unwrap_err()
                .to_string();
            assert!(message.to_lowercase().contains("server.bind"), "{message}");
            assert!(message.contains("CONCORDAT_"), "{message}");
            Ok(())
        });
    }
}
