//! Tracing output and the outermost request middleware.
//!
//! Every request gets a fresh request id (never the caller's: a client-chosen id could
//! forge or split log lines), a span with the id, method, route pattern, principal, status
//! and latency, a Prometheus observation and an `X-Request-Id` header. Spans and events carry ids and route patterns only: never the path or
//! query (which may hold identifiers), bodies or record contents.

use std::time::Instant;

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{
        header::{HeaderName, HeaderValue},
        Method,
    },
    middleware::Next,
    web, HttpMessage,
};
use tracing::{field::Empty, Instrument};
use tracing_subscriber::EnvFilter;

use crate::{
    config::{LogFormat, TelemetrySettings},
    metrics::Metrics,
};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Installs the global subscriber, writing to standard error so that command output on
/// standard output stays clean. A second call (tests) keeps the first subscriber.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&settings.filter)
        .map_err(|e| anyhow::anyhow!("telemetry.filter: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Ignoring the error is deliberate: it only says a subscriber is already installed.
    let _ = match settings.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    Ok(())
}

/// The id of one request, as sent back in `X-Request-Id` and written to the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

pub async fn observe_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        route = Empty,
        principal = Empty,
        status = Empty,
        latency_ms = Empty,
    );
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();

    // Inner layers turn every failure into a response (see `identity::identify`); an `Err`
    // here would be a bug, left for actix to answer with a bare 500.
    let response = next
        .call(req)
        .instrument(span.clone())
        .await?
        .map_into_boxed_body();

    let status = response.status();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let mut response = response;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }

    let elapsed = started.elapsed();
    if let Some(metrics) = metrics {
        metrics
            .http_requests
            .with_label_values(&[
                route.as_str(),
                method_label(response.request().method()),
                status.as_str(),
            ])
            .inc();
        metrics
            .http_request_duration
            .with_label_values(&[route.as_str()])
            .observe(elapsed.as_secs_f64());
    }
    span.record("route", route.as_str());
    span.record("status", status.as_u16());
    span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
    span.in_scope(|| tracing::info!("request completed"));
    Ok(response)
}

/// The metric label for a request's method: HTTP lets a client invent any method token,
/// and each new label value would be a new series held for the life of the process.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("other")
}
