//! Agreements: drafted by admins and IG leads, approved by an IG lead of every party,
//! suspended or terminated with a reason. Visible to principals of a party agency, admins
//! and IG auditors. Status is derived from the stored events on every request.

use std::collections::BTreeSet;

use actix_web::{
    web::{self, Json},
    HttpRequest, HttpResponse,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::input::{parse_text, today};
use crate::{
    audit::entry::format_time,
    db::{
        agreements::{self, EventKind, StoredAgreement},
        Database,
    },
    domain::{
        agreement::{status_on, AgreementDocument, AgreementStatus, Known},
        record_type::RecordTypes,
        AgencyId, Role,
    },
    error::{ApiError, Problem},
    identity::Caller,
    routes::trail::{annotate, record_before_change},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    pub agency: String,
    pub approved_by: String,
    pub approved_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub version: i32,
    pub document: AgreementDocument,
    pub created_by: String,
    pub created_at: String,
    pub approvals: Vec<ApprovalView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// `approved`, `imported`, `suspended` or `terminated`.
    pub kind: String,
    pub version: Option<i32>,
    pub reason: Option<String>,
    pub recorded_by: String,
    pub recorded_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementView {
    pub id: String,
    pub status: AgreementStatus,
    /// The version in force today, if any.
    pub in_force_version: Option<i32>,
    pub versions: Vec<VersionView>,
    pub events: Vec<EventView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementList {
    pub agreements: Vec<AgreementView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementChanged {
    pub id: String,
    pub version: Option<i32>,
    pub status: AgreementStatus,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    reason: String,
}

fn event_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Approved => "approved",
        EventKind::Imported => "imported",
        EventKind::Suspended => "suspended",
        EventKind::Terminated => "terminated",
    }
}

/// Status and view of one stored agreement on `today`.
pub fn view(stored: &StoredAgreement, known: &Known<'_>) -> AgreementView {
    let validated = stored.validated(known);
    let (status, current) = status_on(&validated, &stored.lifecycle(), today());
    AgreementView {
        id: stored.id.clone(),
        status,
        in_force_version: current.map(|a| a.version),
        versions: stored
            .versions
            .iter()
            .map(|v| VersionView {
                version: v.version,
                document: v.document.clone(),
                created_by: v.created_by.clone(),
                created_at: format_time(v.created_at),
                approvals: v
                    .approvals
                    .iter()
                    .map(|a| ApprovalView {
                        agency: a.agency.clone(),
                        approved_by: a.approved_by.clone(),
                        approved_at: format_time(a.approved_at),
                    })
                    .collect(),
            })
            .collect(),
        events: stored
            .events
            .iter()
            .map(|e| EventView {
                kind: event_name(e.kind).to_owned(),
                version: e.version,
                reason: e.reason.clone(),
                recorded_by: e.recorded_by.clone(),
                recorded_at: format_time(e.recorded_at),
            })
            .collect(),
    }
}

fn sees_everything(caller: &Caller) -> bool {
    caller.principal.has_role(Role::Admin) || caller.principal.has_role(Role::IgAuditor)
}

fn visible(caller: &Caller, stored: &StoredAgreement) -> bool {
    sees_everything(caller) || stored.parties().contains(caller.principal.agency.as_str())
}

type Agencies = std::collections::BTreeMap<AgencyId, crate::domain::AgencyKind>;

/// Every stored agreement and the registered agencies (what validation needs), in one go.
async fn load(database: &Database) -> Result<(Vec<StoredAgreement>, Agencies), ApiError> {
    Ok(database
        .run(|conn| {
            Ok((
                agreements::load_all(conn)?,
                agreements::known_agencies(conn)?,
            ))
        })
        .await?)
}

#[utoipa::path(get, path = "/v1/agreements", tag = "agreements",
    responses((status = 200, body = AgreementList)))]
pub async fn list(
    caller: Caller,
    database: web::Data<Database>,
    types: web::Data<RecordTypes>,
) -> Result<Json<AgreementList>, ApiError> {
    let (stored, agencies) = load(&database).await?;
    let known = Known {
        agencies: &agencies,
        record_types: &types,
    };
    Ok(Json(AgreementList {
        agreements: stored
            .iter()
            .filter(|a| visible(&caller, a))
            .map(|a| view(a, &known))
            .collect(),
    }))
}

async fn find_visible(
    caller: &Caller,
    database: &Database,
    id: &str,
) -> Result<(StoredAgreement, Agencies), ApiError> {
    let (stored, agencies) = load(database).await?;
    let agreement = stored
        .into_iter()
        .find(|a| a.id == id)
        .filter(|a| visible(caller, a))
        .ok_or_else(|| ApiError::NotFound("No such agreement.".into()))?;
    Ok((agreement, agencies))
}

#[utoipa::path(get, path = "/v1/agreements/{id}", tag = "agreements", params(("id" = String, Path)),
    responses((status = 200, body = AgreementView),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    caller: Caller,
    database: web::Data<Database>,
    types: web::Data<RecordTypes>,
    id: web::Path<String>,
) -> Result<Json<AgreementView>, ApiError> {
    let (stored, agencies) = find_visible(&caller, &database, &id).await?;
    let known = Known {
        agencies: &agencies,
        record_types: &types,
    };
    Ok(Json(view(&stored, &known)))
}

#[utoipa::path(post, path = "/v1/agreements", tag = "agreements", request_body = AgreementDocument,
    responses((status = 201, body = AgreementChanged),
              (status = 409, description = "The version is not the next one", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Names the share and key", body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    types: web::Data<RecordTypes>,
    document: Json<AgreementDocument>,
) -> Result<HttpResponse, ApiError> {
    caller.require_any(&[Role::Admin, Role::IgLead])?;
    let document = document.into_inner();
    annotate(&req, |a| {
        a.agreements = vec![format!("{}@{}", document.id, document.version)]
    });
    let agencies = database.run(agreements::known_agencies).await?;
    let agreement = document
        .validate(&Known {
            agencies: &agencies,
            record_types: &types,
        })
        .map_err(|e| ApiError::invalid_field(&e.key, e.message))?;
    if !caller.principal.has_role(Role::Admin) {
        let (existing, _) = load(&database).await?;
        let governed_by_caller = match existing.iter().find(|a| a.id == document.id) {
            // A new version of an existing agreement: only its governing parties draft it.
            Some(stored) => stored
                .governing_parties()
                .contains(caller.principal.agency.as_str()),
            None => agreement.parties.contains(&caller.principal.agency),
        };
        if !governed_by_caller {
            return Err(ApiError::forbidden(
                "role",
                "An IG lead drafts agreements that their agency is a party to.",
            ));
        }
    }
    record_before_change(&req).await?;
    let (stored, by) = (document.clone(), caller.principal.id.to_string());
    database
        .run(move |conn| agreements::insert_version(conn, &stored, &by))
        .await?;
    Ok(HttpResponse::Created().json(AgreementChanged {
        id: document.id,
        version: Some(document.version),
        status: AgreementStatus::Draft,
    }))
}

#[utoipa::path(post, path = "/v1/agreements/{id}/versions/{version}/approve", tag = "agreements",
    params(("id" = String, Path), ("version" = i32, Path)),
    responses((status = 200, body = AgreementChanged),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Already approved by this agency", body = Problem, content_type = "application/problem+json")))]
pub async fn approve(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    types: web::Data<RecordTypes>,
    path: web::Path<(String, i32)>,
) -> Result<Json<AgreementChanged>, ApiError> {
    let (id, version) = path.into_inner();
    annotate(&req, |a| a.agreements = vec![format!("{id}@{version}")]);
    caller.require_any(&[Role::IgLead])?;
    let (stored, agencies) = find_visible(&caller, &database, &id).await?;
    let document = stored
        .versions
        .iter()
        .find(|v| v.version == version)
        .map(|v| v.document.clone())
        .ok_or_else(|| ApiError::NotFound("No such agreement version.".into()))?;
    let agreement = document
        .validate(&Known {
            agencies: &agencies,
            record_types: &types,
        })
        .map_err(|e| ApiError::invalid_field(&e.key, e.message))?;
    if stored
        .events
        .iter()
        .any(|e| e.kind == EventKind::Terminated)
    {
        return Err(ApiError::Conflict("The agreement is terminated.".into()));
    }
    if stored
        .approved_version()
        .is_some_and(|approved| version <= approved)
    {
        return Err(ApiError::Conflict(
            "A newer or equal version is already approved; draft a new version.".into(),
        ));
    }
    // A version supersedes only with the consent of every party to it and of every party
    // governing the agreement now, so no subset of parties can rewrite it. (Checked here
    // to refuse early; `agreements::approve` decides again under the lock.)
    let mut required = agreement.parties.clone();
    for party in stored.governing_parties() {
        required.extend(AgencyId::parse(&party).ok());
    }
    if !required.contains(&caller.principal.agency) {
        return Err(ApiError::forbidden(
            "role",
            "Only an IG lead of a party approves.",
        ));
    }
    record_before_change(&req).await?;
    let (agency, parties, by, approve_id) = (
        caller.principal.agency.clone(),
        agreement.parties.clone(),
        caller.principal.id.to_string(),
        id.clone(),
    );
    let complete = database
        .run(move |conn| agreements::approve(conn, &approve_id, version, &agency, &parties, &by))
        .await?;
    Ok(Json(AgreementChanged {
        id,
        version: Some(version),
        status: if complete {
            AgreementStatus::Active
        } else {
            AgreementStatus::Draft
        },
    }))
}

async fn change(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    id: String,
    body: ReasonRequest,
    kind: EventKind,
) -> Result<Json<AgreementChanged>, ApiError> {
    annotate(&req, |a| a.agreements = vec![id.clone()]);
    caller.require_any(&[Role::IgLead, Role::Admin])?;
    let reason = parse_text("reason", &body.reason, 2000)?;
    let (stored, _) = find_visible(&caller, &database, &id).await?;
    let in_force = stored
        .approved_version()
        .or_else(|| stored.versions.last().map(|v| v.version));
    annotate(&req, |a| {
        a.agreements = vec![in_force.map_or_else(|| id.clone(), |v| format!("{id}@{v}"))]
    });
    if !caller.principal.has_role(Role::Admin)
        && !stored
            .governing_parties()
            .contains(caller.principal.agency.as_str())
    {
        return Err(ApiError::forbidden(
            "role",
            "Only an IG lead of a party or an admin changes an agreement.",
        ));
    }
    if stored
        .events
        .iter()
        .any(|e| e.kind == EventKind::Terminated)
    {
        return Err(ApiError::Conflict(
            "The agreement is already terminated.".into(),
        ));
    }
    record_before_change(&req).await?;
    let (by, change_id) = (caller.principal.id.to_string(), id.clone());
    database
        .run(move |conn| agreements::change_status(conn, &change_id, kind, &reason, &by))
        .await?;
    Ok(Json(AgreementChanged {
        id,
        version: None,
        status: match kind {
            EventKind::Terminated => AgreementStatus::Terminated,
            _ => AgreementStatus::Suspended,
        },
    }))
}

#[utoipa::path(post, path = "/v1/agreements/{id}/suspend", tag = "agreements", params(("id" = String, Path)),
    request_body = ReasonRequest, responses((status = 200, body = AgreementChanged)))]
pub async fn suspend(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    id: web::Path<String>,
    body: Json<ReasonRequest>,
) -> Result<Json<AgreementChanged>, ApiError> {
    change(
        req,
        caller,
        database,
        id.into_inner(),
        body.into_inner(),
        EventKind::Suspended,
    )
    .await
}

#[utoipa::path(post, path = "/v1/agreements/{id}/terminate", tag = "agreements", params(("id" = String, Path)),
    request_body = ReasonRequest, responses((status = 200, body = AgreementChanged)))]
pub async fn terminate(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    id: web::Path<String>,
    body: Json<ReasonRequest>,
) -> Result<Json<AgreementChanged>, ApiError> {
    change(
        req,
        caller,
        database,
        id.into_inner(),
        body.into_inner(),
        EventKind::Terminated,
    )
    .await
}

/// Versions past their review date, for warnings.
pub fn overdue_reviews(stored: &StoredAgreement) -> BTreeSet<i32> {
    let today = OffsetDateTime::now_utc().date();
    stored
        .versions
        .iter()
        .filter(|v| {
            time::Date::parse(
                &v.document.review_by,
                &time::format_description::well_known::Iso8601::DATE,
            )
            .is_ok_and(|review_by| review_by < today)
        })
        .map(|v| v.version)
        .collect()
}
