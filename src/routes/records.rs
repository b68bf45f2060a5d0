//! Records over HTTP: `POST` submits a record the caller's agency holds, `GET` reads a
//! subject's records for a purpose (`app::records` decides both). The read's audit entry
//! number is set as `Concordat-Audit-Entry` by the request-recording middleware, as for
//! every response.

use actix_web::{
    web::{self, Json, Query},
    HttpRequest, HttpResponse,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::{
    app::{
        records::{self, ReadRequest, RecordCreated, RecordsResponse, Submission, SubmitRecord},
        Call, Gateway,
    },
    error::{ApiError, Problem},
};

/// Header carrying a break-glass justification.
pub const BREAK_GLASS_HEADER: &str = "concordat-break-glass";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// `crisis_response`, `care_coordination` or `safeguarding`.
    purpose: String,
    /// Only records of this type.
    #[serde(rename = "type")]
    record_type: Option<String>,
    /// RFC 3339: only records that occurred at or after.
    since: Option<String>,
    /// Records per page, 1 to 200 (default 50); a page of large records may hold fewer.
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/records", tag = "records",
    params(("subject_id" = String, Path)), request_body = SubmitRecord,
    responses((status = 201, body = RecordCreated),
              (status = 403, description = "Not a practitioner or system, or the agency kind may not hold this type", body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Names the field", body = Problem, content_type = "application/problem+json")))]
pub async fn submit(
    gateway: web::Data<Gateway>,
    call: Call,
    subject: web::Path<String>,
    body: Json<SubmitRecord>,
) -> Result<HttpResponse, ApiError> {
    let submission = Submission {
        subject: subject.into_inner(),
        record: body.into_inner(),
    };
    let created = records::submit(&gateway, &call, submission).await?;
    Ok(HttpResponse::Created().json(created))
}

#[utoipa::path(get, path = "/v1/subjects/{subject_id}/records", tag = "records",
    params(("subject_id" = String, Path), ReadQuery,
           ("Concordat-Break-Glass" = Option<String>, Header, description = "Justification (20+ characters) for an emergency read; crisis_response only")),
    responses((status = 200, body = RecordsResponse),
              (status = 403, description = "role, purpose or no_agreement", body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json"),
              (status = 503, description = "The audit entry could not be written; nothing disclosed", body = Problem, content_type = "application/problem+json")))]
pub async fn read(
    req: HttpRequest,
    gateway: web::Data<Gateway>,
    call: Call,
    subject: web::Path<String>,
    query: Query<ReadQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    // Taken as text whatever its bytes: an attempt is flagged and judged by the use case.
    let justification = req
        .headers()
        .get(BREAK_GLASS_HEADER)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let request = ReadRequest {
        subject: subject.into_inner(),
        purpose: query.purpose,
        record_type: query.record_type,
        since: query.since,
        limit: query.limit,
        cursor: query.cursor,
        justification,
    };
    let response = records::read(&gateway, &call, request).await?;
    Ok(HttpResponse::Ok().json(response))
}
