//! Subjects: enrolment and discharge (coordinator), lookup by identifier (coordinator,
//! practitioner). Identifiers and names arrive here, are validated into domain types and
//! go to storage sealed; responses and audit entries carry only the pseudonymous id.

use actix_web::{
    web::{self, Json, Query},
    HttpRequest, HttpResponse,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::input::{parse_date, parse_text, path_subject, today};
use crate::{
    crypto::Keyring,
    db::{
        subjects::{self, Identifier},
        Database,
    },
    domain::{
        subject::{Enrolment, NhsNumber, PersonName, PncId, SubjectId},
        Role,
    },
    error::{ApiError, Problem},
    identity::Caller,
    routes::trail::{annotate, record_before_change},
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// Ten digits, spaces allowed, valid modulus-11 check digit.
    nhs_number: Option<String>,
    /// `YY/NNNNNNNX` with its check letter.
    pnc_id: Option<String>,
    given_name: String,
    family_name: String,
    /// `YYYY-MM-DD`, in the past.
    date_of_birth: String,
    /// `YYYY-MM-DD`, not before birth, not in the future.
    enrolled_on: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectRef {
    pub subject_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    nhs_number: Option<String>,
    pnc_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DischargeRequest {
    /// `YYYY-MM-DD`, not before enrolment, not in the future.
    discharged_on: String,
    reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Discharged {
    pub subject_id: String,
    pub discharged_on: String,
}

#[utoipa::path(post, path = "/v1/subjects", tag = "subjects", request_body = EnrolRequest,
    responses((status = 201, body = SubjectRef),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Already enrolled", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn enrol(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    keys: web::Data<Keyring>,
    body: Json<EnrolRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(&[Role::Coordinator])?;
    let body = body.into_inner();
    let enrolment = Enrolment::new(
        body.nhs_number
            .as_deref()
            .map(NhsNumber::parse)
            .transpose()?,
        body.pnc_id.as_deref().map(PncId::parse).transpose()?,
        PersonName::parse("given_name", &body.given_name)?,
        PersonName::parse("family_name", &body.family_name)?,
        parse_date("date_of_birth", &body.date_of_birth)?,
        parse_date("enrolled_on", &body.enrolled_on)?,
        today(),
    )?;
    let keys = keys.into_inner();
    let (check_keys, check) = (keys.clone(), enrolment.clone());
    let already = database
        .run(move |conn| {
            for identifier in check
                .nhs_number
                .as_ref()
                .map(Identifier::Nhs)
                .into_iter()
                .chain(check.pnc_id.as_ref().map(Identifier::Pnc))
            {
                if subjects::find_by_identifier(conn, &check_keys, identifier)?.is_some() {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await?;
    if already {
        return Err(ApiError::Conflict(
            "A subject with this NHS number or PNC id is already enrolled.".into(),
        ));
    }
    let id = SubjectId::generate();
    annotate(&req, |a| a.subject_id = Some(id.to_string()));
    record_before_change(&req).await?;
    let (by, stored) = (caller.principal.id.to_string(), id.clone());
    database
        .run(move |conn| subjects::enrol(conn, &keys, &stored, &enrolment, &by))
        .await?;
    Ok(HttpResponse::Created().json(SubjectRef {
        subject_id: id.to_string(),
    }))
}

#[utoipa::path(get, path = "/v1/subjects/lookup", tag = "subjects", params(LookupQuery),
    responses((status = 200, body = SubjectRef),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn lookup(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    keys: web::Data<Keyring>,
    query: Query<LookupQuery>,
) -> Result<Json<SubjectRef>, ApiError> {
    caller.require_any(&[Role::Coordinator, Role::Practitioner])?;
    let query = query.into_inner();
    let found = match (query.nhs_number.as_deref(), query.pnc_id.as_deref()) {
        (Some(nhs), None) => {
            let nhs = NhsNumber::parse(nhs)?;
            let keys = keys.into_inner();
            database
                .run(move |conn| subjects::find_by_identifier(conn, &keys, Identifier::Nhs(&nhs)))
                .await?
        }
        (None, Some(pnc)) => {
            let pnc = PncId::parse(pnc)?;
            let keys = keys.into_inner();
            database
                .run(move |conn| subjects::find_by_identifier(conn, &keys, Identifier::Pnc(&pnc)))
                .await?
        }
        _ => {
            return Err(ApiError::invalid_field(
                "nhs_number",
                "give exactly one of nhs_number or pnc_id",
            ))
        }
    };
    let id = found
        .ok_or_else(|| ApiError::NotFound("No subject is enrolled with that identifier.".into()))?;
    annotate(&req, |a| a.subject_id = Some(id.to_string()));
    Ok(Json(SubjectRef {
        subject_id: id.to_string(),
    }))
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/discharge", tag = "subjects",
    params(("subject_id" = String, Path)), request_body = DischargeRequest,
    responses((status = 200, body = Discharged),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Already discharged", body = Problem, content_type = "application/problem+json")))]
pub async fn discharge(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    keys: web::Data<Keyring>,
    subject: web::Path<String>,
    body: Json<DischargeRequest>,
) -> Result<Json<Discharged>, ApiError> {
    let id = path_subject(&req, &subject)?;
    caller.require_any(&[Role::Coordinator])?;
    let body = body.into_inner();
    let discharged_on = parse_date("discharged_on", &body.discharged_on)?;
    let reason = parse_text("reason", &body.reason, 2000)?;
    let lookup_id = id.clone();
    let summary = database
        .run(move |conn| subjects::summary(conn, &lookup_id))
        .await?
        .ok_or_else(|| ApiError::NotFound("No such subject.".into()))?;
    if discharged_on < summary.enrolled_on {
        return Err(ApiError::invalid_field(
            "discharged_on",
            "must not be before enrolment",
        ));
    }
    if discharged_on > today() {
        return Err(ApiError::invalid_field(
            "discharged_on",
            "must not be in the future",
        ));
    }
    record_before_change(&req).await?;
    let (by, keys, store_id) = (
        caller.principal.id.to_string(),
        keys.into_inner(),
        id.clone(),
    );
    database
        .run(move |conn| subjects::discharge(conn, &keys, &store_id, discharged_on, &reason, &by))
        .await?;
    Ok(Json(Discharged {
        subject_id: id.to_string(),
        discharged_on: body.discharged_on,
    }))
}
