//! `/v1/agreements`: drafted by admins and IG leads, approved by an IG lead of every party,
//! suspended or terminated with a reason; visible to principals of a party agency, admins
//! and IG auditors. Each handler calls one use case of [`crate::app::agreements`].

use actix_web::{
    web::{self, Json},
    HttpResponse,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::{
    app::{
        agreements::{self, AgreementChanged, AgreementList, AgreementView},
        Call, Gateway,
    },
    domain::agreement::{AgreementDocument, AgreementRef},
    error::{ApiError, Problem},
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    reason: String,
}

#[utoipa::path(get, path = "/v1/agreements", tag = "agreements",
    responses((status = 200, body = AgreementList)))]
pub async fn list(
    gateway: web::Data<Gateway>,
    call: Call,
) -> Result<Json<AgreementList>, ApiError> {
    Ok(Json(agreements::list(&gateway, &call).await?))
}

#[utoipa::path(get, path = "/v1/agreements/{id}", tag = "agreements", params(("id" = String, Path)),
    responses((status = 200, body = AgreementView),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    gateway: web::Data<Gateway>,
    call: Call,
    id: web::Path<String>,
) -> Result<Json<AgreementView>, ApiError> {
    Ok(Json(agreements::get(&gateway, &call, &id).await?))
}

#[utoipa::path(post, path = "/v1/agreements", tag = "agreements", request_body = AgreementDocument,
    responses((status = 201, body = AgreementChanged),
              (status = 403, description = "Not an admin, or an IG lead of a governing party", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "The version is not the next one", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Names the share and key", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    gateway: web::Data<Gateway>,
    call: Call,
    document: Json<AgreementDocument>,
) -> Result<HttpResponse, ApiError> {
    let changed = agreements::draft(&gateway, &call, document.into_inner()).await?;
    Ok(HttpResponse::Created().json(changed))
}

#[utoipa::path(post, path = "/v1/agreements/{id}/versions/{version}/approve", tag = "agreements",
    params(("id" = String, Path), ("version" = i32, Path)),
    responses((status = 200, body = AgreementChanged),
              (status = 403, description = "Not an IG lead of a party the version needs", body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Already approved by this agency, superseded, or terminated", body = Problem, content_type = "application/problem+json")))]
pub async fn approve(
    gateway: web::Data<Gateway>,
    call: Call,
    path: web::Path<(String, i32)>,
) -> Result<Json<AgreementChanged>, ApiError> {
    let (id, version) = path.into_inner();
    let agreement = AgreementRef::new(id, version);
    Ok(Json(agreements::approve(&gateway, &call, agreement).await?))
}

#[utoipa::path(post, path = "/v1/agreements/{id}/suspend", tag = "agreements", params(("id" = String, Path)),
    request_body = ReasonRequest,
    responses((status = 200, body = AgreementChanged),
              (status = 403, description = "Not an admin, or an IG lead of a governing party", body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "The agreement is terminated", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "The reason is empty or too long", body = Problem, content_type = "application/problem+json")))]
pub async fn suspend(
    gateway: web::Data<Gateway>,
    call: Call,
    id: web::Path<String>,
    body: Json<ReasonRequest>,
) -> Result<Json<AgreementChanged>, ApiError> {
    let changed = agreements::suspend(&gateway, &call, &id, &body.reason).await?;
    Ok(Json(changed))
}

#[utoipa::path(post, path = "/v1/agreements/{id}/terminate", tag = "agreements", params(("id" = String, Path)),
    request_body = ReasonRequest,
    responses((status = 200, body = AgreementChanged),
              (status = 403, description = "Not an admin, or an IG lead of a governing party", body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "The agreement is terminated", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "The reason is empty or too long", body = Problem, content_type = "application/problem+json")))]
pub async fn terminate(
    gateway: web::Data<Gateway>,
    call: Call,
    id: web::Path<String>,
    body: Json<ReasonRequest>,
) -> Result<Json<AgreementChanged>, ApiError> {
    let changed = agreements::terminate(&gateway, &call, &id, &body.reason).await?;
    Ok(Json(changed))
}
