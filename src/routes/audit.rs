//! The auditor API (`ig_auditor`) over HTTP: search, entries with inclusion proofs, the
//! replay of a read's decision, checkpoints and the verifier key, consistency proofs, streamed exports, break-glass
//! alerts and their review, and the subject access report. The rules are in
//! [`crate::app::audit`]; these handlers only extract, call and render.

use actix_web::{
    http::header::ContentType,
    web::{self, Json, Query},
    HttpResponse,
};

use crate::app::audit::{
    AccessReport, Alerts, AlertsQuery, ConsistencyProof, ConsistencyQuery, EntryWithProof,
    ExportQuery, ReviewRequest, Reviewed, SearchQuery, SearchResults, TreeSizeQuery,
};
use crate::{
    app::{audit, explain::Replay, Call, Gateway},
    audit::LeafIndex,
    error::{ApiError, Problem},
};

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(SearchQuery),
    responses((status = 200, body = SearchResults),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn search(
    call: Call,
    gateway: web::Data<Gateway>,
    query: Query<SearchQuery>,
) -> Result<Json<SearchResults>, ApiError> {
    Ok(Json(
        audit::search(&gateway, &call, query.into_inner()).await?,
    ))
}

#[utoipa::path(get, path = "/v1/audit/entries/{leaf_index}", tag = "audit", params(("leaf_index" = u64, Path), TreeSizeQuery),
    responses((status = 200, body = EntryWithProof),
              (status = 404, description = "No such entry, or not yet covered by a checkpoint", body = Problem, content_type = "application/problem+json")))]
pub async fn entry(
    call: Call,
    gateway: web::Data<Gateway>,
    leaf_index: web::Path<u64>,
    query: Query<TreeSizeQuery>,
) -> Result<Json<EntryWithProof>, ApiError> {
    let index = LeafIndex(leaf_index.into_inner());
    Ok(Json(
        audit::entry(&gateway, &call, index, query.into_inner()).await?,
    ))
}

#[utoipa::path(get, path = "/v1/audit/entries/{leaf_index}/explain", tag = "audit", params(("leaf_index" = u64, Path)),
    responses((status = 200, description = "The decision replayed with what the entry names, field by field, and whether it matches the entry", body = Replay),
              (status = 404, description = "No such entry", body = Problem, content_type = "application/problem+json")))]
pub async fn explain(
    call: Call,
    gateway: web::Data<Gateway>,
    leaf_index: web::Path<u64>,
) -> Result<Json<Replay>, ApiError> {
    let index = LeafIndex(leaf_index.into_inner());
    Ok(Json(
        crate::app::explain::explain(&gateway, &call, index).await?,
    ))
}

#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, description = "C2SP signed note: the gateway's signature, then each witness's cosignature kept for it", content_type = "text/plain"),
              (status = 404, description = "No checkpoint signed yet", body = Problem, content_type = "application/problem+json")))]
pub async fn checkpoint(call: Call, gateway: web::Data<Gateway>) -> Result<HttpResponse, ApiError> {
    let note = audit::checkpoint(&gateway, &call).await?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(note))
}

#[utoipa::path(get, path = "/v1/audit/checkpoint/key", tag = "audit",
    responses((status = 200, description = "Signed-note verifier key", content_type = "text/plain")))]
pub async fn checkpoint_key(
    call: Call,
    gateway: web::Data<Gateway>,
) -> Result<HttpResponse, ApiError> {
    let key = audit::checkpoint_key(&gateway, &call)?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(key))
}

#[utoipa::path(get, path = "/v1/audit/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn consistency(
    call: Call,
    gateway: web::Data<Gateway>,
    query: Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    Ok(Json(
        audit::consistency(&gateway, &call, query.into_inner()).await?,
    ))
}

#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", params(ExportQuery),
    responses((status = 200, description = "Streamed NDJSON (leaf data, one a line), CSV, or a FHIR R4 Bundle of AuditEvent")))]
pub async fn export(
    call: Call,
    gateway: web::Data<Gateway>,
    query: Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let export = audit::export(&gateway, &call, query.into_inner()).await?;
    let content_type = export.format().content_type();
    let body = futures_util::stream::unfold(export, |mut export| async move {
        let chunk = export
            .next_chunk()
            .await?
            .map(web::Bytes::from)
            .map_err(|error| {
                // Ends the stream with an error: the client sees a truncated body.
                tracing::error!(?error, "audit export failed part-way");
                actix_web::error::ErrorInternalServerError("export failed")
            });
        Some((chunk, export))
    });
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .streaming(body))
}

#[utoipa::path(get, path = "/v1/audit/alerts", tag = "audit", params(AlertsQuery),
    responses((status = 200, description = "Break-glass reads and refused attempts not yet reviewed, newest first, a page at a time", body = Alerts),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn alerts(
    call: Call,
    gateway: web::Data<Gateway>,
    query: Query<AlertsQuery>,
) -> Result<Json<Alerts>, ApiError> {
    Ok(Json(
        audit::alerts(&gateway, &call, query.into_inner()).await?,
    ))
}

#[utoipa::path(post, path = "/v1/audit/alerts/{leaf_index}/review", tag = "audit",
    params(("leaf_index" = u64, Path)), request_body = ReviewRequest,
    responses((status = 200, body = Reviewed),
              (status = 403, description = "Not an IG auditor, or the alert is the reviewer's own break-glass access (`own_alert`)", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "No break-glass access at that index", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Already reviewed", body = Problem, content_type = "application/problem+json")))]
pub async fn review(
    call: Call,
    gateway: web::Data<Gateway>,
    leaf_index: web::Path<u64>,
    body: Json<ReviewRequest>,
) -> Result<Json<Reviewed>, ApiError> {
    let index = LeafIndex(leaf_index.into_inner());
    Ok(Json(
        audit::review(&gateway, &call, index, body.into_inner()).await?,
    ))
}

#[utoipa::path(get, path = "/v1/subjects/{subject_id}/access-report", tag = "audit",
    params(("subject_id" = String, Path)),
    responses((status = 200, description = "Every disclosure of the subject's records, from the audit trail", body = AccessReport)))]
pub async fn access_report(
    call: Call,
    gateway: web::Data<Gateway>,
    subject: web::Path<String>,
) -> Result<Json<AccessReport>, ApiError> {
    Ok(Json(audit::access_report(&gateway, &call, &subject).await?))
}
