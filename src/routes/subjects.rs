//! `POST /v1/subjects`, `GET /v1/subjects/lookup` and `POST /v1/subjects/{id}/discharge`:
//! the HTTP edge of [`crate::app::subjects`]. Each handler extracts, calls the use case and
//! renders; the rules and the audit annotations are the use case's.

use actix_web::{
    web::{self, Json, Query},
    HttpResponse,
};

use crate::{
    app::{
        subjects::{self, DischargeRequest, Discharged, EnrolRequest, LookupQuery, SubjectRef},
        Call, Gateway,
    },
    error::{ApiError, Problem},
};

#[utoipa::path(post, path = "/v1/subjects", tag = "subjects", request_body = EnrolRequest,
    responses((status = 201, body = SubjectRef),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Already enrolled", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn enrol(
    gateway: web::Data<Gateway>,
    call: Call,
    body: Json<EnrolRequest>,
) -> Result<HttpResponse, ApiError> {
    let enrolled = subjects::enrol(&gateway, &call, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(enrolled))
}

#[utoipa::path(get, path = "/v1/subjects/lookup", tag = "subjects", params(LookupQuery),
    responses((status = 200, body = SubjectRef),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn lookup(
    gateway: web::Data<Gateway>,
    call: Call,
    query: Query<LookupQuery>,
) -> Result<Json<SubjectRef>, ApiError> {
    Ok(Json(
        subjects::lookup(&gateway, &call, query.into_inner()).await?,
    ))
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/discharge", tag = "subjects",
    params(("subject_id" = String, Path)), request_body = DischargeRequest,
    responses((status = 200, body = Discharged),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Already discharged", body = Problem, content_type = "application/problem+json")))]
pub async fn discharge(
    gateway: web::Data<Gateway>,
    call: Call,
    subject: web::Path<String>,
    body: Json<DischargeRequest>,
) -> Result<Json<Discharged>, ApiError> {
    let subject = crate::app::input::subject(&call, &subject)?;
    let discharged = subjects::discharge(&gateway, &call, &subject, body.into_inner()).await?;
    Ok(Json(discharged))
}
