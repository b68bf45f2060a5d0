//! Who is calling: the connection's client certificate is held to its own request rate
//! first (before any database work), checked again on each request, and mapped to an
//! active principal of the gateway, whose request rate is limited too. A refusal here is
//! marked for the audit edge to count (`audit::refusals`), and one for the certificate
//! itself closes the connection.
//!
//! This middleware wraps every mTLS route, so a handler only runs for a known, active
//! principal whose certificate is still valid; handlers take the [`Call`] extractor (the
//! caller and this request's audit entry, for a use case) or [`Caller`] (who is asking,
//! with the certificate, for `whoami`).
//! The principal is read afresh for every request, and the chain check is kept only while
//! the CRL it was made against is current and unexpired: disabling a principal or revoking
//! a certificate takes effect on the very next request, on kept-alive connections too.

use std::{future::Ready, num::NonZeroU32, sync::Arc};

use actix_web::{
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::ConnectionType,
    middleware::Next,
    web, FromRequest, HttpMessage, HttpRequest,
};
use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::{
    app::{Actor, Call},
    audit::{refusals::RefusedBeforeUse, Recorder},
    db::{principals, Database},
    domain::{Principal, PrincipalId},
    error::ApiError,
    tls::{ClientVerifier, PeerCertificate, TrustAnchors},
};

/// Request limits, per certificate before identity and per principal after it. Buckets
/// live in this instance only: several instances behind a load balancer each allow the
/// configured rate (documented in docs/operations.md).
pub struct RateLimits {
    /// Checked before anything else, so that a certificate the gateway does not know (or
    /// no longer accepts) costs no database query beyond its quota.
    by_certificate: DefaultKeyedRateLimiter<String>,
    by_principal: DefaultKeyedRateLimiter<PrincipalId>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimits")
    }
}

impl RateLimits {
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Self {
            by_certificate: RateLimiter::keyed(quota),
            by_principal: RateLimiter::keyed(quota),
        }
    }

    fn check_certificate(&self, certificate: &PeerCertificate) -> Result<(), ApiError> {
        let checked = self.by_certificate.check_key(&certificate.sha256);
        // Certificates are issued by the programme's CAs, so the keys are bounded, but a
        // long-running gateway sees many over the years.
        if self.by_certificate.len() > 10_000 {
            self.by_certificate.retain_recent();
        }
        checked.map_err(refusal)
    }

    fn check_principal(&self, principal: &PrincipalId) -> Result<(), ApiError> {
        self.by_principal.check_key(principal).map_err(refusal)
    }
}

fn refusal(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> ApiError {
    let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
    ApiError::RateLimited {
        retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
    }
}

/// What the identity layer needs, shared by every worker.
#[derive(Debug, Clone)]
pub struct IdentityService {
    pub verifier: Arc<ClientVerifier>,
    pub database: Database,
    pub limits: Arc<RateLimits>,
}

/// The authenticated caller of this request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub certificate: Arc<PeerCertificate>,
}

pub async fn identify(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match authenticate(&req).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        // A response, not an `Err`: the outer middleware then sees the error on it and
        // renders the problem document with the request id.
        Err(error) => {
            // A certificate that identifies nobody will not identify anybody on the next
            // request either: make the client start again with a new handshake, which the
            // per-address admission counts.
            let close = matches!(error.code(), "certificate_rejected" | "unknown_principal");
            // A flood of these must not flood the trail (see `audit::refusals`).
            req.extensions_mut().insert(RefusedBeforeUse);
            let mut response = req.error_response(error);
            if close {
                response
                    .response_mut()
                    .head_mut()
                    .set_connection_type(ConnectionType::Close);
            }
            Ok(response.map_into_right_body())
        }
    }
}

async fn authenticate(req: &ServiceRequest) -> Result<Caller, ApiError> {
    let service = req
        .app_data::<web::Data<IdentityService>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("identity service not configured")))?;
    let certificate = req
        .conn_data::<Arc<PeerCertificate>>()
        .cloned()
        .ok_or_else(|| {
            ApiError::forbidden(
                "certificate_rejected",
                "No client certificate on this connection.",
            )
        })?;
    service.limits.check_certificate(&certificate)?;
    service
        .verifier
        .recheck(&certificate)
        .map_err(|rejection| {
            ApiError::forbidden(
                "certificate_rejected",
                format!(
                    "The client certificate is no longer accepted ({}).",
                    rejection.as_str()
                ),
            )
        })?;

    let principal = resolve(
        req,
        &service.database,
        service.verifier.anchors(),
        &certificate,
    )
    .await?;
    tracing::Span::current().record("principal", principal.id.as_str());
    service.limits.check_principal(&principal.id)?;
    Ok(Caller {
        principal,
        certificate,
    })
}

/// The one active principal bound to this certificate (subject, issuer name and issuing
/// CA's key) whose agency is the certificate's `O`. Anything else (none, several, another
/// agency, another CA of the same name) is refused alike.
async fn resolve(
    req: &ServiceRequest,
    database: &Database,
    anchors: &TrustAnchors,
    certificate: &PeerCertificate,
) -> Result<Principal, ApiError> {
    let binding = certificate.binding();
    let mut found = database
        .read(move |conn| principals::active_by_certificate(conn, &binding))
        .await?;
    let unknown = || {
        ApiError::forbidden(
            "unknown_principal",
            "This certificate does not identify an active principal of its agency.",
        )
    };
    if found.len() != 1 {
        if found.len() > 1 {
            tracing::error!("several active principals share one certificate binding");
        }
        return Err(unknown());
    }
    let principal = found.pop().ok_or_else(unknown)?;
    // From here on the audit entry names who this is, even if the request is refused.
    if let Some(recorder) = req.extensions().get::<Recorder>() {
        recorder.identify(&principal);
    }
    if certificate.organization.as_deref() != Some(principal.agency.as_str()) {
        return Err(unknown());
    }
    // Issued by the CA (by key) the principal is bound to, not merely one of that name.
    let presented = certificate.binding();
    let name_is_shared = presented
        .issuer_key
        .as_deref()
        .is_some_and(|key| anchors.name_is_shared(key));
    if !principal.certificate.admits(&presented, name_is_shared) {
        return Err(unknown());
    }
    Ok(principal)
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    /// Fails closed: a handler reached without the identity middleware refuses to run.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(req.extensions().get::<Caller>().cloned().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "caller identity missing: route not wrapped"
            ))
        }))
    }
}

/// A use-case call made by this request's caller, recorded in this request's entry.
impl FromRequest for Call {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    /// Fails closed: without an identified caller and an open audit entry, nothing runs.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let extensions = req.extensions();
        std::future::ready(
            match (extensions.get::<Caller>(), extensions.get::<Recorder>()) {
                (Some(caller), Some(recorder)) => Ok(Call {
                    actor: Actor::Principal(caller.principal.clone()),
                    audit: recorder.clone(),
                }),
                (None, _) => Err(ApiError::Internal(anyhow::anyhow!(
                    "caller identity missing: route not wrapped"
                ))),
                (_, None) => Err(ApiError::AuditUnavailable),
            },
        )
    }
}
