//! Builds the application from settings: database (checked, never migrated here), TLS, identity, routes, the
//! ops listener. Binds both listeners before returning, so the caller learns the real
//! ports (tests bind port 0).

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_http::{HttpService, TlsAcceptorConfig};
use actix_server::ServerBuilder;
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::{
    dev::{AppConfig, Extensions, Server},
    middleware::from_fn,
    rt::net::TcpStream,
    web, App, HttpResponse,
};
use anyhow::Context;

use crate::{
    app::Gateway,
    audit::{
        checkpoint::CheckpointSigner,
        checkpointer,
        refusals::{self, Refusals},
        witnessing::{WitnessMetrics, Witnesses},
        AuditLog,
    },
    config::Settings,
    db::{records, Database},
    error,
    identity::{self, IdentityService, RateLimits},
    metrics::Metrics,
    ops,
    routes::{
        self,
        deadline::{self, RequestReadTimeout},
    },
    telemetry,
    tls::{self, ClientVerifier, ConnectionAdmission, PeerCertificate},
};

/// How often the CRL file is checked for changes; revocations take effect within this.
const CRL_POLL: Duration = Duration::from_secs(1);
/// How long shutdown waits for the audit writer to finish.
const WRITER_DRAIN: Duration = Duration::from_secs(10);

pub struct Application {
    port: u16,
    ops_port: u16,
    server: Server,
    ops_server: Server,
    crl_watch: tokio::task::JoinHandle<()>,
    checkpoints: tokio::task::JoinHandle<()>,
    refusals: Arc<Refusals>,
    refusal_writer: tokio::task::JoinHandle<()>,
    audit_log: AuditLog,
    audit_writer: std::thread::JoinHandle<()>,
    database: Database,
    signer: Arc<CheckpointSigner>,
    origin: String,
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
        let database = open_database(settings).await?;
        let (audit_log, audit_writer) =
            AuditLog::start(database.clone(), settings.audit.append_timeout)?;
        let gateway = {
            let (settings, database, audit_log) =
                (settings.clone(), database.clone(), audit_log.clone());
            tokio::task::spawn_blocking(move || Gateway::load(&settings, database, audit_log))
                .await??
        };
        let signer = Arc::clone(&gateway.signer);

        let metrics = Metrics::new()?;
        let verifier = ClientVerifier::load(
            &settings.tls.client_ca,
            &settings.tls.crl,
            metrics.tls_client_certificate_rejections.clone(),
        )
        .context("tls.client_ca / tls.crl")?;
        let (listener, port) = bind("server.bind", settings.server.bind)?;
        let (ops_listener, ops_port) = bind("server.ops_bind", settings.server.ops_bind)?;
        let identity = IdentityService {
            verifier: Arc::clone(&verifier),
            database: database.clone(),
            limits: Arc::new(RateLimits::new(
                settings.limits.per_principal_rps,
                settings.limits.per_principal_burst,
            )),
        };
        let refusals = Arc::new(Refusals::default());
        let refusal_writer = refusals::spawn_writer(Arc::clone(&refusals), audit_log.clone());
        let server = api_server(
            settings,
            gateway,
            identity,
            Arc::clone(&refusals),
            metrics.clone(),
            listener,
        )?;
        let witnesses = Witnesses::new(
            settings.audit.witnesses.clone(),
            settings.audit.witness_quorum,
            WitnessMetrics {
                failures: metrics.witness_failures.clone(),
                cosigned_size: metrics.witness_cosigned_size.clone(),
            },
        )
        .context("audit.witnesses")?;
        let ops_server = ops::server(
            ops_listener,
            database.clone(),
            audit_log.clone(),
            witnesses.clone(),
            metrics,
        )?;
        let crl_watch = verifier.watch(CRL_POLL);
        let checkpoints = checkpointer::spawn(
            database.clone(),
            Arc::clone(&signer),
            settings.audit.origin.clone(),
            settings.audit.checkpoint_every,
            witnesses,
        );

        Ok(Self {
            port,
            ops_port,
            server,
            ops_server,
            crl_watch,
            checkpoints,
            refusals,
            refusal_writer,
            audit_log,
            audit_writer,
            database,
            signer,
            origin: settings.audit.origin.clone(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn ops_port(&self) -> u16 {
        self.ops_port
    }

    /// Serves until a shutdown signal stops the API server; then stops the ops listener,
    /// lets the audit writer finish what is queued, and signs a last checkpoint.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let ops_handle = self.ops_server.handle();
        let ops = tokio::spawn(self.ops_server);
        let served = self.server.await;
        ops_handle.stop(true).await;
        self.crl_watch.abort();
        self.checkpoints.abort();
        self.refusal_writer.abort();
        let _ = ops.await;
        // Refusals counted in the last second are written before the writer stops.
        self.refusals.write_due(&self.audit_log, None).await;

        // Every request has been answered, so nothing waits on the writer; dropping our
        // handle lets it finish once no clone is left. Bounded, so shutdown cannot hang.
        drop(self.audit_log);
        let writer = self.audit_writer;
        let joined = tokio::time::timeout(
            WRITER_DRAIN,
            tokio::task::spawn_blocking(move || writer.join()),
        )
        .await;
        if !matches!(joined, Ok(Ok(Ok(())))) {
            tracing::warn!("the audit writer did not stop cleanly");
        }
        let (signer, origin) = (self.signer, self.origin);
        if let Some(size) = self
            .database
            .run(move |conn| checkpointer::checkpoint_now(conn, &signer, &origin))
            .await?
        {
            tracing::info!(size, "final audit checkpoint signed");
        }
        served?;
        Ok(())
    }
}

/// Opens the pool and checks the database is one the gateway may serve from, off the
/// executor (both block on I/O). The gateway never migrates: `concordat migrate` does, as
/// the schema's owner, a role the gateway must not run as (development mode on SQLite
/// migrates before this, in `cli::dev`).
async fn open_database(settings: &Settings) -> anyhow::Result<Database> {
    let url = settings.database.url.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let database = Database::connect(&url).context("database.url")?;
        // The role first: it reads only the catalogues, which any role may, and a role that
        // could rewrite history is refused whatever state the schema is in.
        database.require_append_only_role()?;
        database.require_current_schema()?;
        // Reads refuse unbound payloads (`db::records`), and only the schema owner may
        // re-seal them: starting anyway would fail every read that meets one.
        let unbound = database.run_blocking(records::count_unbound)?;
        if unbound > 0 {
            anyhow::bail!(
                "{unbound} record payload(s) are sealed in the format before payloads were \
                 bound and cannot be read: run `concordat migrate` as the schema owner, with \
                 this keys.dir, to re-seal them"
            );
        }
        Ok(database)
    })
    .await?
}

/// Binds `address` now, so the caller learns the real port (tests bind port 0).
fn bind(key: &str, address: std::net::SocketAddr) -> anyhow::Result<(TcpListener, u16)> {
    let listener =
        TcpListener::bind(address).with_context(|| format!("{key}: cannot bind {address}"))?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

/// The mutual-TLS API and console. Middleware, outermost last: request id and metrics; the
/// body's read deadline; the audit entry (durable before the response leaves); the console's headers and refusal
/// pages; problem documents; identity; the console's cross-site guard.
///
/// Built on actix-server directly rather than `HttpServer`, which offers no place between
/// accepting a connection and its TLS handshake: here each new connection first passes
/// [`ConnectionAdmission`] (by peer address), then a bounded handshake, then HTTP with a
/// bounded time to read each request.
fn api_server(
    settings: &Settings,
    gateway: Gateway,
    identity: IdentityService,
    refusals: Arc<Refusals>,
    metrics: Metrics,
    listener: TcpListener,
) -> anyhow::Result<Server> {
    let tls_config = tls::server_config(&settings.tls, Arc::clone(&identity.verifier))
        .context("tls.cert / tls.key")?;
    let limits = settings.limits.clone();
    let admission = Arc::new(ConnectionAdmission::new(
        limits.per_address_connections_rps,
        limits.per_address_connections_burst,
        metrics.connections_refused.clone(),
    ));
    let verifier = Arc::clone(&identity.verifier);
    let gateway = web::Data::new(gateway);
    let identity = web::Data::new(identity);
    let refusals = web::Data::from(refusals);
    let metrics = web::Data::new(metrics);
    let openapi = web::Data::new(routes::OpenApiJson::build()?);
    let read_timeout = web::Data::new(RequestReadTimeout(limits.request_read_timeout));
    let app = move || {
        App::new()
            .app_data(gateway.clone())
            .app_data(identity.clone())
            .app_data(refusals.clone())
            .app_data(metrics.clone())
            .app_data(read_timeout.clone())
            .configure(routes::configure(limits.max_body_bytes, openapi.clone()))
            .default_service(web::to(HttpResponse::NotFound))
            .wrap(from_fn(routes::console::guard))
            .wrap(from_fn(identity::identify))
            .wrap(from_fn(error::render_problems))
            .wrap(from_fn(routes::console::present))
            .wrap(from_fn(routes::record_requests))
            .wrap(from_fn(deadline::bound_body_read))
            .wrap(from_fn(telemetry::observe_request))
    };

    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let builder = ServerBuilder::default()
        .workers(workers)
        // The limit is per worker; the setting is for the listener as a whole.
        .max_concurrent_connections(settings.limits.max_connections.div_ceil(workers));
    let shutdown = builder.graceful_shutdown_signal();
    let (handshake_timeout, request_read_timeout) = (
        settings.limits.handshake_timeout,
        settings.limits.request_read_timeout,
    );
    let server = builder.listen("concordat-api", listener, move || {
        let shutdown = shutdown.clone();
        let verifier = Arc::clone(&verifier);
        let http = HttpService::build()
            .client_request_timeout(request_read_timeout)
            // Idle kept-alive connections close when the server starts to stop.
            .graceful_shutdown_signal(move || {
                let shutdown = shutdown.clone();
                async move { shutdown.notified().await }
            })
            .on_connect_ext(
                move |stream: &TlsStream<TcpStream>, data: &mut Extensions| {
                    attach_peer_certificate(stream, data, &verifier);
                },
            )
            // The app config only supplies a fallback host for URL generation, which the
            // gateway never does; `Host` headers decide the console's same-origin check.
            .finish(map_config(
                app().into_factory().map_err(|error| error.error_response()),
                |()| AppConfig::default(),
            ))
            .rustls_0_23_with_config(
                tls_config.clone(),
                TlsAcceptorConfig::default().handshake_timeout(handshake_timeout),
            )
            .map_err(|_| ());
        let admission = Arc::clone(&admission);
        fn_service(move |stream: TcpStream| {
            let admitted = admission.admit(stream.peer_addr().ok().map(|peer| peer.ip()));
            // Dropping a refused stream closes it before any TLS is read.
            std::future::ready(if admitted { Ok(stream) } else { Err(()) })
        })
        .and_then(http)
    })?;
    Ok(server.run())
}

/// Parses the client certificate once per connection (with the configured CA that issued
/// it) and keeps it with the connection, where the identity middleware finds it for each
/// request.
fn attach_peer_certificate(
    stream: &TlsStream<TcpStream>,
    data: &mut Extensions,
    verifier: &ClientVerifier,
) {
    let (_, session) = stream.get_ref();
    if let Some(chain) = session.peer_certificates() {
        match PeerCertificate::from_chain(chain, verifier.anchors()) {
            Ok(peer) => {
                data.insert(Arc::new(peer));
            }
            Err(error) => tracing::warn!(%error, "client certificate could not be parsed"),
        }
    }
}
