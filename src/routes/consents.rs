//! `POST /v1/subjects/{id}/consents`, `POST .../consents/withdraw` and
//! `GET .../consents`: the HTTP edge of [`crate::app::consents`]. Each handler extracts,
//! calls the use case and renders; the rules and the audit annotations are the use case's.

use actix_web::{
    web::{self, Json},
    HttpResponse,
};

use crate::{
    app::{
        consents::{self, ConsentHistory, ConsentRecorded, ConsentRequest, WithdrawRequest},
        Call, Gateway,
    },
    error::{ApiError, Problem},
};

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/consents", tag = "consent",
    params(("subject_id" = String, Path)), request_body = ConsentRequest,
    responses((status = 201, body = ConsentRecorded),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn record_consent(
    gateway: web::Data<Gateway>,
    call: Call,
    subject: web::Path<String>,
    body: Json<ConsentRequest>,
) -> Result<HttpResponse, ApiError> {
    let subject = crate::app::input::subject(&call, &subject)?;
    let recorded = consents::record(&gateway, &call, &subject, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(recorded))
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/consents/withdraw", tag = "consent",
    params(("subject_id" = String, Path)), request_body = WithdrawRequest,
    responses((status = 201, body = ConsentRecorded),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn withdraw(
    gateway: web::Data<Gateway>,
    call: Call,
    subject: web::Path<String>,
    body: Json<WithdrawRequest>,
) -> Result<HttpResponse, ApiError> {
    let subject = crate::app::input::subject(&call, &subject)?;
    let recorded = consents::withdraw(&gateway, &call, &subject, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(recorded))
}

#[utoipa::path(get, path = "/v1/subjects/{subject_id}/consents", tag = "consent",
    params(("subject_id" = String, Path)),
    responses((status = 200, body = ConsentHistory),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn history(
    gateway: web::Data<Gateway>,
    call: Call,
    subject: web::Path<String>,
) -> Result<Json<ConsentHistory>, ApiError> {
    let subject = crate::app::input::subject(&call, &subject)?;
    Ok(Json(consents::history(&gateway, &call, &subject).await?))
}
