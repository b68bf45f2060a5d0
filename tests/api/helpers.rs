//! `spawn_app()` and the clients and certificates the tests call it with.

use std::{
    num::NonZeroU32,
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use concordat::{
    app::explain::{self, ReplayOutcome},
    audit::{
        checkpoint::{CheckpointSigner, VerifierKey},
        checkpointer,
        store::{self, Filter},
        verify, Action, AuditEntry, Decision,
    },
    config::{
        AuditSettings, DatabaseSettings, DatabaseUrl, DevSettings, KeySettings, LimitSettings,
        PolicySettings, ServerSettings, Settings, TelemetrySettings, TlsSettings,
    },
    crypto::Keyring,
    db::{agencies, principals, Database},
    domain::{
        Agency, AgencyId, AgencyKind, CertificateBinding, Principal, PrincipalId, PrincipalStatus,
        Role,
    },
    pki::{CertificateAuthority, IssuedCertificate, PkiDirectory},
    startup::Application,
    tls,
};
use diesel::{pg::PgConnection, Connection, RunQueryDsl};
use tempfile::TempDir;

pub const BINARY: &str = env!("CARGO_BIN_EXE_concordat");
use time::OffsetDateTime;

pub struct TestApp {
    pub port: u16,
    pub ops_port: u16,
    /// The schema owner's pool, for setting a test up and inspecting or tampering with what
    /// is stored. The gateway itself connects as `settings.database.url`: on PostgreSQL a
    /// login member of `concordat_app`, as in production.
    pub database: Database,
    pub owner_url: DatabaseUrl,
    pub pki: PkiDirectory,
    pub settings: Settings,
    pub dir: TempDir,
    /// Set by a test that changes stored rows behind the gateway's back: its reads no
    /// longer replay as they were made, by design.
    pub altered_behind_the_gateway: AtomicBool,
}

/// Every read a test's gateway granted is replayed as the test ends, with exactly what its
/// entry names (`app::explain`), and must release and withhold what the entry records: so
/// every read of every scenario in the suite is checked against its replay.
impl Drop for TestApp {
    fn drop(&mut self) {
        if std::thread::panicking() || self.altered_behind_the_gateway.load(Ordering::Relaxed) {
            return;
        }
        // No keys: no gateway ever started, so nothing was read.
        let Ok(keys) = Keyring::load(&self.settings.keys.dir) else {
            return;
        };
        let replays = self
            .database
            .run_blocking(|conn| {
                let reads = Filter {
                    action: Some(Action::RecordsRead),
                    decision: Some(Decision::Granted),
                    ..Filter::default()
                };
                let (mut replays, mut after) = (Vec::new(), None);
                loop {
                    let rows = store::entries(conn, &reads, after, 500)?;
                    let Some(last) = rows.last() else {
                        return Ok(replays);
                    };
                    after = Some(last.index());
                    for row in &rows {
                        let entry = store::decode(row)?;
                        replays.push(explain::replay(conn, &keys, row.index(), entry)?);
                    }
                }
            })
            .expect("the test's reads replay");
        for replay in replays {
            assert_eq!(
                replay.outcome,
                ReplayOutcome::Match,
                "entry {}: {:?}",
                replay.leaf_index,
                replay.differences
            );
        }
    }
}

/// A database for one test: a file in `dir`, or a new PostgreSQL database.
pub fn test_database_url(dir: &std::path::Path) -> DatabaseUrl {
    DatabaseUrl::parse(&test_database_url_string(dir)).unwrap()
}

/// The same as [`test_database_url`], as the string an operator would configure.
pub fn test_database_url_string(dir: &std::path::Path) -> String {
    match std::env::var("CONCORDAT_TEST_POSTGRES_URL") {
        Ok(base) if !base.is_empty() => fresh_postgres_database(&base),
        _ => format!("sqlite://{}", dir.join("concordat.db").display()),
    }
}

/// The login role the PostgreSQL tests run the gateway as: a member of `concordat_app` and
/// nothing else, as production would.
pub const GATEWAY_ROLE: &str = "concordat_test_gateway";

/// `url` (a migrated PostgreSQL database) as the login role `role`, a member of the roles
/// `member_of` (comma-separated, or none). Roles are cluster-wide, so each is made once for every
/// test database and kept: tests running at once may both try.
pub fn postgres_url_as(url: &DatabaseUrl, role: &str, member_of: &str) -> DatabaseUrl {
    let mut owner = PgConnection::establish(&url.expose()).unwrap();
    let membership = if member_of.is_empty() {
        String::new()
    } else {
        format!("IN ROLE {member_of}")
    };
    diesel::sql_query(format!(
        "DO $$ BEGIN CREATE ROLE {role} LOGIN {membership}; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    ))
    .execute(&mut owner)
    .unwrap();
    let mut as_role = url::Url::parse(&url.expose()).unwrap();
    as_role.set_username(role).unwrap();
    as_role.set_password(None).unwrap();
    DatabaseUrl::parse(as_role.as_str()).unwrap()
}

pub fn fresh_postgres_database(base: &str) -> String {
    let name = format!("concordat_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(base).expect("CONCORDAT_TEST_POSTGRES_URL reachable");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .unwrap();
    let mut url = url::Url::parse(base).unwrap();
    url.set_path(&name);
    url.to_string()
}

pub fn test_settings(dir: &std::path::Path) -> Settings {
    let pki = PkiDirectory::new(dir.join("pki"));
    Settings {
        server: ServerSettings {
            bind: "127.0.0.1:0".parse().unwrap(),
            ops_bind: "127.0.0.1:0".parse().unwrap(),
        },
        dev: DevSettings { enabled: false },
        tls: TlsSettings {
            cert: pki.server_certificate(),
            key: pki.server_key(),
            client_ca: pki.ca_certificate(),
            crl: pki.crl(),
        },
        database: DatabaseSettings {
            url: test_database_url(dir),
        },
        keys: KeySettings {
            dir: dir.join("keys"),
        },
        audit: AuditSettings {
            origin: "concordat.test/log".into(),
            checkpoint_every: Duration::from_secs(60),
            append_timeout: Duration::from_secs(5),
            witnesses: Vec::new(),
            witness_quorum: 0,
        },
        limits: LimitSettings {
            per_principal_rps: NonZeroU32::new(1000).unwrap(),
            per_principal_burst: NonZeroU32::new(1000).unwrap(),
            max_body_bytes: 64 * 1024,
            // Tests open many connections from one address in quick succession.
            per_address_connections_rps: NonZeroU32::new(10_000).unwrap(),
            per_address_connections_burst: NonZeroU32::new(10_000).unwrap(),
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(3),
            request_read_timeout: Duration::from_secs(5),
        },
        policy: PolicySettings {
            record_types: PathBuf::from("config/record-types.toml"),
            agreements: PathBuf::from("config/agreements"),
            suppression_threshold: 5,
        },
        telemetry: TelemetrySettings::default(),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the gateway in this process with a new PKI, a new database and the four sample
/// agencies.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let mut app = prepare_app(adjust).await;
    let application = Application::build(&app.settings)
        .await
        .expect("application builds");
    (app.port, app.ops_port) = (application.port(), application.ops_port());
    tokio::spawn(application.run_until_stopped());
    app
}

/// Everything a gateway needs (PKI, migrated database with the sample agencies, settings),
/// but no gateway yet: `port` is 0 until one is started.
pub async fn prepare_app(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    adjust(&mut settings);
    let pki = PkiDirectory::new(dir.path().join("pki"));
    pki.init().unwrap();

    let owner_url = settings.database.url.clone();
    let database = Database::connect(&owner_url).unwrap();
    database.migrate().unwrap();
    if let DatabaseUrl::Postgres(_) = owner_url {
        settings.database.url = postgres_url_as(&owner_url, GATEWAY_ROLE, "concordat_app");
    }
    for (id, kind) in [
        ("hampshire-police", AgencyKind::Police),
        ("iow-nhs", AgencyKind::Health),
        ("scas", AgencyKind::Ambulance),
        ("iow-recovery", AgencyKind::Programme),
    ] {
        let agency = Agency::new(AgencyId::parse(id).unwrap(), kind, id).unwrap();
        database
            .run(move |conn| agencies::insert(conn, &agency))
            .await
            .unwrap();
    }
    TestApp {
        port: 0,
        ops_port: 0,
        database,
        owner_url,
        pki,
        settings,
        dir,
        altered_behind_the_gateway: AtomicBool::new(false),
    }
}

impl TestApp {
    /// Starts a second gateway instance in this process on the same database, keys, PKI and
    /// CRL (as a second instance behind a load balancer would be), and returns its port.
    pub async fn second_instance(&self) -> u16 {
        let application = Application::build(&self.settings)
            .await
            .expect("second instance builds");
        let port = application.port();
        tokio::spawn(application.run_until_stopped());
        port
    }

    /// The address of `path` on another instance's `port`.
    pub fn url_on(&self, port: u16, path: &str) -> String {
        format!("https://localhost:{port}{path}")
    }

    /// A configuration file for this app's settings, for running the `concordat` binary as
    /// the gateway runs (on PostgreSQL, as a member of `concordat_app`).
    pub fn write_config(&self) -> PathBuf {
        self.write_config_for("concordat.toml", &self.settings.database.url)
    }

    /// The same, connecting as the schema's owner, for `concordat migrate`.
    pub fn write_owner_config(&self) -> PathBuf {
        self.write_config_for("concordat-owner.toml", &self.owner_url)
    }

    fn write_config_for(&self, name: &str, database: &DatabaseUrl) -> PathBuf {
        let s = &self.settings;
        let toml = format!(
            r#"[server]
bind = "127.0.0.1:0"
ops_bind = "127.0.0.1:0"
[tls]
cert = "{cert}"
key = "{key}"
client_ca = "{ca}"
crl = "{crl}"
[database]
url = "{url}"
[keys]
dir = "{keys}"
[audit]
origin = "{origin}"
checkpoint_every = "{checkpoint_every}ms"
[limits]
per_principal_rps = 10000
per_principal_burst = 10000
max_body_bytes = 65536
[policy]
record_types = "config/record-types.toml"
agreements = "config/agreements"
suppression_threshold = 5
[telemetry]
format = "json"
filter = "info"
"#,
            cert = s.tls.cert.display(),
            key = s.tls.key.display(),
            ca = s.tls.client_ca.display(),
            crl = s.tls.crl.display(),
            url = match database {
                DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
                url => url.expose(),
            },
            keys = s.keys.dir.display(),
            origin = s.audit.origin,
            checkpoint_every = s.audit.checkpoint_every.as_millis(),
        );
        let path = self.dir.path().join(name);
        std::fs::write(&path, toml).unwrap();
        path
    }

    /// Imports the shipped example agreement, straight in storage, as an admin would.
    pub async fn import_example_agreement(&self) {
        let document: concordat::domain::agreement::AgreementDocument = toml::from_str(
            include_str!("../../config/agreements/isa-iow-recovery.toml"),
        )
        .unwrap();
        self.database
            .run(move |conn| concordat::db::agreements::import(conn, &document, "test-admin"))
            .await
            .unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    pub fn ops_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ops_port)
    }

    /// A client certificate `CN=name, O=agency` from this app's CA, not registered.
    pub fn issue(&self, name: &str, agency: &str) -> IssuedCertificate {
        let agency = AgencyId::parse(agency).unwrap();
        let password = secrecy::SecretString::from("test-password".to_owned());
        let path = self.pki.issue_client(name, &agency, 30, &password).unwrap();
        IssuedCertificate {
            certificate_pem: std::fs::read_to_string(path).unwrap(),
            key_pem: std::fs::read_to_string(self.pki.client_key(name)).unwrap(),
        }
    }

    /// Issues a certificate and registers a principal `name` of `agency` with `roles`.
    pub async fn register(&self, name: &str, agency: &str, roles: &[Role]) -> IssuedCertificate {
        let issued = self.issue(name, agency);
        self.add_principal(name, agency, roles, &issued).await;
        issued
    }

    pub async fn add_principal(
        &self,
        name: &str,
        agency: &str,
        roles: &[Role],
        certificate: &IssuedCertificate,
    ) {
        let chain = rustls_pki_types::pem::PemObject::pem_slice_iter(
            certificate.certificate_pem.as_bytes(),
        )
        .collect::<Result<Vec<rustls_pki_types::CertificateDer<'static>>, _>>()
        .unwrap();
        let (subject, issuer, _, _) = tls::describe(&chain[0]).unwrap();
        // Bound to this app's CA by key, as `principals add` binds it.
        let anchors = tls::TrustAnchors::from_certificates(
            &tls::read_certificates(&self.pki.ca_certificate()).unwrap(),
        )
        .unwrap();
        let principal = Principal {
            id: PrincipalId::parse(name).unwrap(),
            version: 1,
            agency: AgencyId::parse(agency).unwrap(),
            roles: roles.iter().copied().collect(),
            certificate: CertificateBinding {
                subject,
                issuer,
                issuer_key: anchors.issuer_key(&chain),
            },
            status: PrincipalStatus::Active,
        };
        self.database
            .run(move |conn| principals::add(conn, &principal))
            .await
            .unwrap();
    }

    pub async fn disable(&self, name: &str) {
        let id = PrincipalId::parse(name).unwrap();
        self.database
            .run(move |conn| principals::disable(conn, &id))
            .await
            .unwrap();
    }

    /// A client presenting `certificate`, trusting this app's CA, keeping connections alive.
    pub fn client(&self, certificate: &IssuedCertificate) -> reqwest::Client {
        let identity = reqwest::Identity::from_pem(
            format!("{}{}", certificate.certificate_pem, certificate.key_pem).as_bytes(),
        )
        .unwrap();
        self.client_builder().identity(identity).build().unwrap()
    }

    /// A client like a browser on the console: presents `certificate` and does not follow
    /// redirects, so a test sees the 303 after a form.
    pub fn browser(&self, certificate: &IssuedCertificate) -> reqwest::Client {
        let identity = reqwest::Identity::from_pem(
            format!("{}{}", certificate.certificate_pem, certificate.key_pem).as_bytes(),
        )
        .unwrap();
        self.client_builder()
            .identity(identity)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub fn client_without_certificate(&self) -> reqwest::Client {
        self.client_builder().build().unwrap()
    }

    fn client_builder(&self) -> reqwest::ClientBuilder {
        let ca = std::fs::read(self.pki.ca_certificate()).unwrap();
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .http1_only()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(10))
    }

    /// GETs `path` and parses the JSON body.
    pub async fn get_json(&self, client: &reqwest::Client, path: &str) -> serde_json::Value {
        client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn whoami(&self, client: &reqwest::Client) -> reqwest::Result<reqwest::Response> {
        client.get(self.url("/v1/whoami")).send().await
    }

    /// Signs a checkpoint now with the gateway's own key, as the timer would.
    pub async fn checkpoint_now(&self) -> Option<u64> {
        let signer =
            CheckpointSigner::load_or_create(&self.settings.keys.dir, &self.settings.audit.origin)
                .unwrap();
        let origin = self.settings.audit.origin.clone();
        self.database
            .run(move |conn| checkpointer::checkpoint_now(conn, &signer, &origin))
            .await
            .unwrap()
    }

    /// Every stored entry, in leaf order.
    pub async fn audit_entries(&self) -> Vec<AuditEntry> {
        self.database
            .run(|conn| {
                let rows = store::entries(conn, &store::Filter::default(), None, 1_000_000)?;
                rows.iter().map(store::decode).collect()
            })
            .await
            .unwrap()
    }

    /// Runs `concordat audit verify` logic against this app's database and key.
    pub fn verify(&self) -> Result<verify::Report, verify::Failure> {
        let vkey =
            std::fs::read_to_string(self.settings.keys.dir.join("audit-checkpoint.vkey")).unwrap();
        let key = VerifierKey::parse(&vkey).unwrap();
        verify::verify_database(
            &self.database,
            &key,
            &self.settings.audit.origin,
            None,
            &mut |_, _| {},
        )
        .unwrap()
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.ops_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Repeats `attempt` until it returns true or `within` passes; says whether it did.
/// Used only where the contract itself is "within N seconds" (CRL reload).
pub async fn eventually<F, Fut>(within: Duration, mut attempt: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if attempt().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A certificate from an unrelated CA, with the same names a registered client might use.
pub fn foreign_certificate(name: &str, agency: &str) -> IssuedCertificate {
    let now = OffsetDateTime::now_utc();
    CertificateAuthority::generate("Some other CA")
        .unwrap()
        .issue_client(
            name,
            agency,
            now - time::Duration::days(1),
            now + time::Duration::days(1),
        )
        .unwrap()
}

/// The leaf index in a response's `Concordat-Audit-Entry` header.
pub fn receipt(response: &reqwest::Response) -> u64 {
    response.headers()["concordat-audit-entry"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Parses a problem document and checks its media type.
pub async fn problem(response: reqwest::Response) -> serde_json::Value {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    response.json().await.unwrap()
}

/// Holds the database's audit write lock until dropped, as a long transaction or another
/// instance would: SQLite's write lock, or PostgreSQL's append advisory lock.
pub enum WriteLock {
    Sqlite(
        #[expect(dead_code, reason = "held only so that dropping it releases the lock")]
        diesel::sqlite::SqliteConnection,
    ),
    Postgres(
        #[expect(dead_code, reason = "held only so that dropping it releases the lock")]
        PgConnection,
    ),
}

pub fn hold_audit_write_lock(app: &TestApp) -> WriteLock {
    use diesel::connection::SimpleConnection;
    match &app.settings.database.url {
        DatabaseUrl::Sqlite(path) => {
            let mut conn =
                diesel::sqlite::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
            conn.batch_execute("BEGIN IMMEDIATE").unwrap();
            WriteLock::Sqlite(conn)
        }
        url @ DatabaseUrl::Postgres(_) => {
            let mut conn = PgConnection::establish(&url.expose()).unwrap();
            conn.batch_execute(&format!(
                "SELECT pg_advisory_lock({})",
                concordat::db::LockKey::AuditAppend.key()
            ))
            .unwrap();
            WriteLock::Postgres(conn)
        }
    }
}

/// The gateway running as its own process (so it can be killed), with its log drained.
pub struct ServerProcess {
    child: std::process::Child,
    pub port: u16,
}

impl ServerProcess {
    /// Starts `concordat serve` and waits for it to report its port.
    pub fn start(config: &std::path::Path) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(BINARY)
            .args(["--config", config.to_str().unwrap(), "serve"])
            .env_remove("CONCORDAT_CONFIG")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) {
                    if event["message"] == "concordat is listening" {
                        let _ = port_tx.send(event["port"].as_u64().unwrap() as u16);
                    }
                }
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the gateway reported its port");
        Self { child, port }
    }

    /// SIGTERM, and waits for the process to exit: shutdown code runs.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes the database refuse (or, with `refuse = false`, accept again) every new row of the
/// audit trail, as full or read-only storage would, for every connection: a trigger, which
/// binds the gateway's own connections too whatever role they use.
pub async fn refuse_audit_appends(app: &TestApp, refuse: bool) {
    use diesel::connection::SimpleConnection;
    let sql = match (&app.settings.database.url, refuse) {
        (DatabaseUrl::Sqlite(_), true) => {
            "CREATE TRIGGER refuse_appends BEFORE INSERT ON audit_entries \
             BEGIN SELECT RAISE(ABORT, 'storage refuses writes'); END;"
        }
        (DatabaseUrl::Sqlite(_), false) => "DROP TRIGGER refuse_appends;",
        (DatabaseUrl::Postgres(_), true) => {
            "CREATE FUNCTION refuse_appends() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'storage refuses writes'; END $$; \
             CREATE TRIGGER refuse_appends BEFORE INSERT ON audit_entries \
             FOR EACH ROW EXECUTE FUNCTION refuse_appends();"
        }
        (DatabaseUrl::Postgres(_), false) => {
            "DROP TRIGGER refuse_appends ON audit_entries; DROP FUNCTION refuse_appends();"
        }
    };
    app.database
        .run(move |conn| Ok(conn.batch_execute(sql)?))
        .await
        .unwrap();
}

/// The ops listener's readiness: its status and body.
pub async fn readiness(app: &TestApp) -> (u16, serde_json::Value) {
    let response = reqwest::get(app.ops_url("/health/ready")).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}
