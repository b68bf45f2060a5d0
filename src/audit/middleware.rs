//! The request-level audit entry and the fail-closed rule.
//!
//! Every request that reaches the application passes through [`record_requests`]. A
//! handler that discloses data in a way the generic entry cannot describe (released and
//! withheld fields, streamed exports) records its own entry with [`record`] before it
//! answers; for every other request (whoami, auditor queries, every denial and error) this
//! middleware writes the entry itself, from the route, the caller and the outcome, with the
//! SHA-256 of the body about to be sent. Either way the response leaves only after its
//! entry is durable; if the entry cannot be written the caller gets 503 and nothing else.

use std::sync::Arc;

use actix_web::{
    body::{to_bytes, BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web, HttpMessage, HttpRequest, HttpResponse, ResponseError,
};
use ring::digest::{digest, SHA256};

use super::{AuditLog, Decision, PendingEntry, Receipt};
use crate::{
    error::{reason_code, ApiError},
    identity::{Caller, Identified},
    telemetry::RequestId,
    tls::PeerCertificate,
};

pub const AUDIT_ENTRY_HEADER: &str = "concordat-audit-entry";

/// Marks a request whose handler recorded its own entry.
#[derive(Debug, Clone, Copy)]
struct Recorded(Receipt);

/// What a handler adds to its request's entry: ids only, never values.
#[derive(Debug, Clone, Default)]
pub struct Annotation {
    pub subject_id: Option<String>,
    pub record_ids: Vec<String>,
    /// `"<agreement id>@<version>"`
    pub agreements: Vec<String>,
    /// What was released, by name (for reports: the measures).
    pub released: Vec<String>,
    pub consent_version: Option<i64>,
    pub purpose: Option<String>,
}

/// Adds ids to the entry this request will get (from the middleware or [`record`]).
pub fn annotate(req: &HttpRequest, change: impl FnOnce(&mut Annotation)) {
    let mut extensions = req.extensions_mut();
    if let Some(annotation) = extensions.get_mut::<Annotation>() {
        change(annotation);
    } else {
        let mut annotation = Annotation::default();
        change(&mut annotation);
        extensions.insert(annotation);
    }
}

/// An entry for this request with who asked and under which action, ready for the
/// handler to add what it disclosed.
pub fn entry_for(req: &HttpRequest, decision: Decision, reason: &str) -> PendingEntry {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    let action = super::actions::action(req.method(), req.match_pattern().as_deref());
    let mut entry = PendingEntry::new(&request_id, action, decision, reason);
    describe_caller(req, &mut entry);
    if let Some(annotation) = req.extensions().get::<Annotation>() {
        entry.subject_id = annotation.subject_id.clone();
        entry.record_ids = annotation.record_ids.clone();
        entry.agreements = annotation.agreements.clone();
        entry.released = annotation.released.clone();
        entry.consent_version = annotation.consent_version;
        entry.purpose = annotation.purpose.clone();
    }
    entry
}

/// Appends a handler's own entry and returns once it is durable. The response must not be
/// built from disclosed data unless this succeeds.
pub async fn record(req: &HttpRequest, entry: PendingEntry) -> Result<Receipt, ApiError> {
    let log = req
        .app_data::<web::Data<AuditLog>>()
        .ok_or(ApiError::AuditUnavailable)?;
    let receipt = log.append(entry).await.map_err(|error| {
        tracing::error!(%error, "audit entry not written; nothing disclosed");
        ApiError::AuditUnavailable
    })?;
    req.extensions_mut().insert(Recorded(receipt));
    Ok(receipt)
}

/// Records this request's entry as granted *before* a handler changes anything, so no
/// change can exist without its entry (the generic entry comes after the response is built,
/// too late for a write). Handlers check everything they can first; if the change still
/// fails, the entry over-reports an attempt as granted, never the reverse.
pub async fn record_before_change(req: &HttpRequest) -> Result<Receipt, ApiError> {
    record(req, entry_for(req, Decision::Granted, "ok")).await
}

fn describe_caller(req: &HttpRequest, entry: &mut PendingEntry) {
    if let Some(caller) = req.extensions().get::<Caller>() {
        entry.principal_id = Some(caller.principal.id.to_string());
        entry.agency_id = Some(caller.principal.agency.to_string());
        entry.roles = caller
            .principal
            .roles
            .iter()
            .map(|r| r.to_string())
            .collect();
        entry.certificate_sha256 = Some(caller.certificate.sha256.clone());
    } else {
        if let Some(Identified(principal)) = req.extensions().get::<Identified>() {
            entry.principal_id = Some(principal.id.to_string());
            entry.agency_id = Some(principal.agency.to_string());
            entry.roles = principal.roles.iter().map(|r| r.to_string()).collect();
        }
        if let Some(certificate) = req.conn_data::<Arc<PeerCertificate>>() {
            entry.certificate_sha256 = Some(certificate.sha256.clone());
        }
    }
}

pub async fn record_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = next.call(req).await?.map_into_boxed_body();
    let recorded = response.request().extensions().get::<Recorded>().copied();
    let (request, response) = response.into_parts();
    let response = match recorded {
        Some(Recorded(receipt)) => with_receipt(response, receipt),
        None => record_generic(&request, response).await,
    };
    Ok(ServiceResponse::new(request, response))
}

async fn record_generic(request: &HttpRequest, response: HttpResponse) -> HttpResponse {
    let status = response.status();
    let decision = if status.is_server_error() {
        Decision::Error
    } else if status.is_client_error() {
        Decision::Denied
    } else {
        Decision::Granted
    };
    let mut entry = entry_for(request, decision, &reason_code(&response));
    let (head, body) = response.into_parts();
    let Ok(body) = to_bytes(body).await else {
        return unavailable(request);
    };
    entry.response_sha256 = Some(hex::encode(digest(&SHA256, &body)));
    match record(request, entry).await {
        Ok(receipt) => with_receipt(head.set_body(BoxBody::new(body)), receipt),
        Err(_) => unavailable(request),
    }
}

/// 503 with nothing of the original response in it.
fn unavailable(request: &HttpRequest) -> HttpResponse {
    let mut problem = ApiError::AuditUnavailable.problem();
    if let Some(RequestId(id)) = request.extensions().get::<RequestId>() {
        problem = problem.with_request_id(id);
    }
    ApiError::AuditUnavailable
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
