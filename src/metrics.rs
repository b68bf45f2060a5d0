//! Prometheus metrics, owned by the application and passed down (no global registry).
//! Labels carry route patterns and status codes only, never ids or request contents.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_request_duration: HistogramVec,
    pub tls_client_certificate_rejections: IntCounterVec,
    pub connections_refused: IntCounter,
    pub refusals_coalesced: IntCounter,
    pub witness_failures: IntCounterVec,
    pub witness_cosigned_size: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("concordat".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "API requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "API request latency by route, up to the response head",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )?;
        let tls_client_certificate_rejections = IntCounterVec::new(
            Opts::new(
                "tls_client_certificate_rejections_total",
                "Client certificates refused, in a TLS handshake or on a later request, by reason",
            ),
            &["reason"],
        )?;
        let connections_refused = IntCounter::new(
            "connections_refused_total",
            "New connections closed before their TLS handshake: the peer address was over its rate",
        )?;
        let refusals_coalesced = IntCounter::new(
            "refusals_coalesced_total",
            "Refused requests counted into a later audit entry of their certificate, not given one each",
        )?;
        let witness_failures = IntCounterVec::new(
            Opts::new(
                "witness_failures_total",
                "Checkpoints a witness did not cosign (down, refused, or a cosignature that did not verify), by witness",
            ),
            &["witness"],
        )?;
        let witness_cosigned_size = IntGaugeVec::new(
            Opts::new(
                "witness_cosigned_tree_size",
                "The largest checkpoint each witness is known to have cosigned",
            ),
            &["witness"],
        )?;
        registry.register(Box::new(witness_failures.clone()))?;
        registry.register(Box::new(witness_cosigned_size.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(connections_refused.clone()))?;
        registry.register(Box::new(refusals_coalesced.clone()))?;
        registry.register(Box::new(http_request_duration.clone()))?;
        registry.register(Box::new(tls_client_certificate_rejections.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_request_duration,
            tls_client_certificate_rejections,
            connections_refused,
            refusals_coalesced,
            witness_failures,
            witness_cosigned_size,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
