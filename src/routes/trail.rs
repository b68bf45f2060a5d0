//! The request-level audit entry and the fail-closed rule, at the HTTP edge.
//!
//! Every request that reaches the application passes through [`record_requests`], which
//! opens the request's [`Recorder`] under the action the route table names. A use case
//! that changes or discloses something records the entry itself before it acts; for
//! every other request (whoami, auditor queries, every denial and error) this middleware
//! records it after the handler, from the caller and the outcome, with the SHA-256 of the
//! body about to be sent. Either way the response leaves only after its entry is durable;
//! if the entry cannot be written the caller gets 503 and nothing else.

use std::sync::Arc;

use actix_web::{
    body::{to_bytes, BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web, HttpMessage, HttpRequest, HttpResponse, ResponseError,
};
use ring::digest::{digest, SHA256};

use crate::{
    app::Gateway,
    audit::{
        refusals::{Admission, Refusals, RefusedBeforeUse},
        Decision, Receipt, Recorder,
    },
    error::{reason_code, ApiError},
    metrics::Metrics,
    telemetry::RequestId,
    tls::PeerCertificate,
};

pub const AUDIT_ENTRY_HEADER: &str = "concordat-audit-entry";

pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(gateway) = req.app_data::<web::Data<Gateway>>() else {
        // No trail configured: refuse everything rather than answer unaudited.
        let (request, _) = req.into_parts();
        let response = unavailable(&request);
        return Ok(ServiceResponse::new(request, response));
    };
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let action = super::action_for(req.method(), req.match_pattern().as_deref());
    let recorder = Recorder::new(gateway.audit_log.clone(), &request_id, action);
    if let Some(certificate) = req.conn_data::<Arc<PeerCertificate>>() {
        let sha256 = certificate.sha256.clone();
        recorder.annotate(|entry| entry.certificate_sha256 = Some(sha256));
    }
    req.extensions_mut().insert(recorder.clone());

    let response = next.call(req).await?.map_into_boxed_body();
    let (request, response) = response.into_parts();
    let response = match recorder.receipt() {
        Some(receipt) => with_receipt(response, receipt),
        None if counted_as_refusal(&request, &recorder, &response) => response,
        None => record_outcome(&request, &recorder, response).await,
    };
    Ok(ServiceResponse::new(request, response))
}

/// Whether this refusal before use is counted into a later entry rather than given one of
/// its own (see [`Refusals`]). Only refusals (4xx) by the identity layer qualify; without a
/// counter every request is recorded on its own.
fn counted_as_refusal(request: &HttpRequest, recorder: &Recorder, response: &HttpResponse) -> bool {
    if !response.status().is_client_error()
        || request.extensions().get::<RefusedBeforeUse>().is_none()
    {
        return false;
    }
    let Some(refusals) = request.app_data::<web::Data<Refusals>>() else {
        return false;
    };
    let mut entry = recorder.pending();
    entry.decision = Decision::Denied;
    entry.reason = reason_code(response);
    let second = entry.time_micros.div_euclid(1_000_000);
    let counted = refusals.admit(&entry, second) == Admission::Counted;
    if counted {
        if let Some(metrics) = request.app_data::<web::Data<Metrics>>() {
            metrics.refusals_coalesced.inc();
        }
    }
    counted
}

async fn record_outcome(
    request: &HttpRequest,
    recorder: &Recorder,
    response: HttpResponse,
) -> HttpResponse {
    let status = response.status();
    let decision = if status.is_server_error() {
        Decision::Error
    } else if status.is_client_error() {
        Decision::Denied
    } else {
        Decision::Granted
    };
    let reason = reason_code(&response);
    let (head, body) = response.into_parts();
    let Ok(body) = to_bytes(body).await else {
        return unavailable(request);
    };
    let sha256 = hex::encode(digest(&SHA256, &body));
    match recorder.record(decision, &reason, Some(sha256)).await {
        Ok(receipt) => with_receipt(head.set_body(BoxBody::new(body)), receipt),
        Err(error) => {
            tracing::error!(%error, "audit entry not written; nothing disclosed");
            unavailable(request)
        }
    }
}

/// 503 with nothing of the original response in it.
fn unavailable(request: &HttpRequest) -> HttpResponse {
    let error = ApiError::AuditUnavailable;
    let mut problem = error.problem();
    if let Some(RequestId(id)) = request.extensions().get::<RequestId>() {
        problem = problem.with_request_id(id);
    }
    error
        .error_response()
        .set_body(BoxBody::new(problem.to_json()))
}

fn with_receipt(mut response: HttpResponse, receipt: Receipt) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(&receipt.leaf_index.to_string()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(AUDIT_ENTRY_HEADER), value);
    }
    response
}
