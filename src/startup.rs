//! Builds the application from settings: database (migrated), TLS, identity, routes, the
//! ops listener. Binds both listeners before returning, so the caller learns the real
//! ports (tests bind port 0).

use std::{any::Any, net::TcpListener, sync::Arc, time::Duration};

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::{
    dev::{Extensions, Server},
    middleware::from_fn,
    rt::net::TcpStream,
    web, App, HttpResponse, HttpServer,
};
use anyhow::Context;

use crate::{
    config::Settings,
    db::Database,
    identity::{self, IdentityService, RateLimits},
    metrics::Metrics,
    ops, routes, telemetry,
    tls::{self, ClientVerifier, PeerCertificate},
};

/// How often the CRL file is checked for changes; revocations take effect within this.
const CRL_POLL: Duration = Duration::from_secs(1);

pub struct Application {
    port: u16,
    ops_port: u16,
    server: Server,
    ops_server: Server,
    crl_watch: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("ops_port", &self.ops_port)
            .finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        // Opening the pool and migrating block on I/O: keep them off the executor.
        let url = settings.database.url.clone();
        let database = tokio::task::spawn_blocking(move || -> anyhow::Result<Database> {
            let database = Database::connect(&url).context("database.url")?;
            let applied = database.migrate()?;
            if !applied.is_empty() {
                tracing::info!(?applied, "database migrated");
            }
            Ok(database)
        })
        .await??;

        let metrics = Metrics::new()?;
        let verifier = ClientVerifier::load(
            &settings.tls.client_ca,
            &settings.tls.crl,
            metrics.tls_client_certificate_rejections.clone(),
        )
        .context("tls.client_ca / tls.crl")?;
        let tls_config = tls::server_config(&settings.tls, Arc::clone(&verifier))
            .context("tls.cert / tls.key")?;

        let listener = TcpListener::bind(settings.server.bind)
            .with_context(|| format!("server.bind: cannot bind {}", settings.server.bind))?;
        let port = listener.local_addr()?.port();
        let ops_listener = TcpListener::bind(settings.server.ops_bind).with_context(|| {
            format!("server.ops_bind: cannot bind {}", settings.server.ops_bind)
        })?;
        let ops_port = ops_listener.local_addr()?.port();

        let identity = web::Data::new(IdentityService {
            verifier: Arc::clone(&verifier),
            database: database.clone(),
            limits: Arc::new(RateLimits::new(
                settings.limits.per_principal_rps,
                settings.limits.per_principal_burst,
            )),
        });
        let metrics_data = web::Data::new(metrics.clone());
        let max_body_bytes = settings.limits.max_body_bytes;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(identity.clone())
                .app_data(metrics_data.clone())
                .configure(routes::configure(max_body_bytes))
                .default_service(web::to(HttpResponse::NotFound))
                .wrap(from_fn(identity::identify))
                .wrap(from_fn(telemetry::observe_request))
        })
        .on_connect(attach_peer_certificate)
        .listen_rustls_0_23(listener, tls_config)?
        .run();
        let ops_server = ops::server(ops_listener, database, metrics)?;
        let crl_watch = verifier.watch(CRL_POLL);

        Ok(Self {
            port,
            ops_port,
            server,
            ops_server,
            crl_watch,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn ops_port(&self) -> u16 {
        self.ops_port
    }

    /// Serves until a shutdown signal stops the API server; the ops listener stops with it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let ops_handle = self.ops_server.handle();
        let ops = tokio::spawn(self.ops_server);
        let served = self.server.await;
        ops_handle.stop(true).await;
        self.crl_watch.abort();
        let _ = ops.await;
        served
    }
}

/// Parses the client certificate once per connection and keeps it with the connection,
/// where the identity middleware finds it for each request.
fn attach_peer_certificate(connection: &dyn Any, data: &mut Extensions) {
    let Some(stream) = connection.downcast_ref::<TlsStream<TcpStream>>() else {
        return;
    };
    let (_, session) = stream.get_ref();
    if let Some(chain) = session.peer_certificates() {
        match PeerCertificate::from_chain(chain) {
            Ok(peer) => {
                data.insert(Arc::new(peer));
            }
            Err(error) => tracing::warn!(%error, "client certificate could not be parsed"),
        }
    }
}
