//! Consent: recorded and withdrawn by coordinators, read with its full history by
//! coordinators and IG auditors. Every version is kept; the effective consent is derived.

use std::collections::BTreeSet;

use actix_web::{
    web::{self, Json},
    HttpRequest, HttpResponse,
};
use serde::{Deserialize, Serialize};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use utoipa::ToSchema;

use super::input::{parse_date, parse_text, path_subject, today};
use crate::{
    crypto::Keyring,
    db::{agencies, subjects, Database},
    domain::{
        consent::{effective_at, ConsentKind, ConsentLevel, EffectiveConsent},
        record_type::RecordTypes,
        subject::SubjectId,
        AgencyId, Role,
    },
    error::{ApiError, Problem},
    identity::Caller,
    routes::trail::{annotate, record_before_change},
};

/// Evidence is a note of how consent was obtained (not a document store).
const MAX_EVIDENCE: usize = 10_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    level: ConsentLevel,
    /// Agencies the consent covers; absent covers every party.
    agencies: Option<Vec<String>>,
    /// Categories the person does not want shared.
    excluded_categories: Option<Vec<String>>,
    /// How consent was obtained. Stored encrypted; never logged or audited.
    evidence: String,
    /// `YYYY-MM-DD`, not in the future.
    given_on: String,
    /// `YYYY-MM-DD`, after `given_on`.
    expires_on: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    evidence: String,
    /// `YYYY-MM-DD`, not in the future: a withdrawal takes effect at once.
    withdrawn_on: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentRecorded {
    pub consent_version: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Effective {
    pub level: ConsentLevel,
    /// The version it comes from; null when none was ever in force.
    pub version: Option<i32>,
    pub agencies: Option<Vec<String>>,
    pub excluded_categories: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    pub version: i32,
    /// `given` or `withdrawn`.
    pub kind: &'static str,
    pub level: Option<ConsentLevel>,
    pub agencies: Option<Vec<String>>,
    pub excluded_categories: Vec<String>,
    pub given_on: Option<String>,
    pub expires_on: Option<String>,
    pub withdrawn_on: Option<String>,
    pub evidence: String,
    pub recorded_by: String,
    /// RFC 3339, UTC.
    pub recorded_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentHistory {
    pub subject_id: String,
    pub effective: Effective,
    /// Newest first.
    pub history: Vec<HistoryItem>,
}

async fn require_subject(
    database: &Database,
    id: &SubjectId,
) -> Result<subjects::SubjectSummary, ApiError> {
    let lookup = id.clone();
    database
        .run(move |conn| subjects::summary(conn, &lookup))
        .await?
        .ok_or_else(|| ApiError::NotFound("No such subject.".into()))
}

async fn record(
    req: &HttpRequest,
    caller: &Caller,
    database: &Database,
    keys: web::Data<Keyring>,
    id: SubjectId,
    kind: ConsentKind,
    evidence: String,
) -> Result<HttpResponse, ApiError> {
    let next = id.clone();
    let version = database
        .run(move |conn| subjects::next_consent_version(conn, &next))
        .await?;
    annotate(req, |a| a.consent_version = Some(i64::from(version)));
    record_before_change(req).await?;
    let by = caller.principal.id.to_string();
    let keys = keys.into_inner();
    database
        .run(move |conn| subjects::record_consent(conn, &keys, &id, version, &kind, &evidence, &by))
        .await?;
    Ok(HttpResponse::Created().json(ConsentRecorded {
        consent_version: version,
    }))
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/consents", tag = "consent",
    params(("subject_id" = String, Path)), request_body = ConsentRequest,
    responses((status = 201, body = ConsentRecorded),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn record_consent(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    keys: web::Data<Keyring>,
    record_types: web::Data<RecordTypes>,
    subject: web::Path<String>,
    body: Json<ConsentRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path_subject(&req, &subject)?;
    caller.require_any(&[Role::Coordinator])?;
    let body = body.into_inner();
    let evidence = parse_text("evidence", &body.evidence, MAX_EVIDENCE)?;
    let given_on = parse_date("given_on", &body.given_on)?;
    if given_on > today() {
        return Err(ApiError::invalid_field(
            "given_on",
            "must not be in the future",
        ));
    }
    let expires_on = body
        .expires_on
        .as_deref()
        .map(|d| parse_date("expires_on", d))
        .transpose()?;
    if expires_on.is_some_and(|expires| expires <= given_on) {
        return Err(ApiError::invalid_field(
            "expires_on",
            "must be after given_on",
        ));
    }
    let mut excluded = BTreeSet::new();
    for category in body.excluded_categories.unwrap_or_default() {
        if !record_types.has_category(&category) {
            return Err(ApiError::invalid_field(
                "excluded_categories",
                "names a category no record type declares",
            ));
        }
        excluded.insert(category);
    }
    let agencies = match body.agencies {
        None => None,
        Some(list) => {
            let mut ids = BTreeSet::new();
            for raw in list {
                let agency = AgencyId::parse(&raw).map_err(|_| {
                    ApiError::invalid_field("agencies", format!("unknown agency {raw:?}"))
                })?;
                let lookup = agency.clone();
                if database
                    .run(move |conn| agencies::find(conn, &lookup))
                    .await?
                    .is_none()
                {
                    return Err(ApiError::invalid_field(
                        "agencies",
                        format!("unknown agency {raw:?}"),
                    ));
                }
                ids.insert(agency);
            }
            Some(ids)
        }
    };
    require_subject(&database, &id).await?;
    let kind = ConsentKind::Given {
        level: body.level,
        agencies,
        excluded_categories: excluded,
        given_on,
        expires_on,
    };
    record(&req, &caller, &database, keys, id, kind, evidence).await
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/consents/withdraw", tag = "consent",
    params(("subject_id" = String, Path)), request_body = WithdrawRequest,
    responses((status = 201, body = ConsentRecorded),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn withdraw(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    keys: web::Data<Keyring>,
    subject: web::Path<String>,
    body: Json<WithdrawRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = path_subject(&req, &subject)?;
    caller.require_any(&[Role::Coordinator])?;
    let body = body.into_inner();
    let evidence = parse_text("evidence", &body.evidence, MAX_EVIDENCE)?;
    let withdrawn_on = parse_date("withdrawn_on", &body.withdrawn_on)?;
    if withdrawn_on > today() {
        return Err(ApiError::invalid_field(
            "withdrawn_on",
            "must not be in the future",
        ));
    }
    require_subject(&database, &id).await?;
    record(
        &req,
        &caller,
        &database,
        keys,
        id,
        ConsentKind::Withdrawn { withdrawn_on },
        evidence,
    )
    .await
}

#[utoipa::path(get, path = "/v1/subjects/{subject_id}/consents", tag = "consent",
    params(("subject_id" = String, Path)),
    responses((status = 200, body = ConsentHistory),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn history(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    keys: web::Data<Keyring>,
    subject: web::Path<String>,
) -> Result<Json<ConsentHistory>, ApiError> {
    let id = path_subject(&req, &subject)?;
    caller.require_any(&[Role::Coordinator, Role::IgAuditor])?;
    require_subject(&database, &id).await?;
    let (keys, lookup) = (keys.into_inner(), id.clone());
    let recorded = database
        .run(move |conn| subjects::consent_history(conn, &keys, &lookup))
        .await?;
    let versions: Vec<_> = recorded.iter().map(|r| r.version.clone()).collect();
    let effective = effective_at(&versions, OffsetDateTime::now_utc());
    annotate(&req, |a| {
        a.consent_version = effective.version.map(i64::from)
    });
    let mut history = Vec::with_capacity(recorded.len());
    for item in recorded.into_iter().rev() {
        history.push(history_item(item)?);
    }
    Ok(Json(ConsentHistory {
        subject_id: id.to_string(),
        effective: effective_view(effective),
        history,
    }))
}

fn effective_view(effective: EffectiveConsent) -> Effective {
    Effective {
        level: effective.level,
        version: effective.version,
        agencies: effective
            .agencies
            .map(|a| a.iter().map(ToString::to_string).collect()),
        excluded_categories: effective.excluded_categories.into_iter().collect(),
    }
}

fn history_item(item: subjects::RecordedConsent) -> Result<HistoryItem, ApiError> {
    let date = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
    let recorded_at = item
        .version
        .recorded_at
        .format(&Rfc3339)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut view = HistoryItem {
        version: item.version.version,
        kind: "given",
        level: None,
        agencies: None,
        excluded_categories: Vec::new(),
        given_on: None,
        expires_on: None,
        withdrawn_on: None,
        evidence: item.evidence,
        recorded_by: item.version.recorded_by,
        recorded_at,
    };
    match item.version.kind {
        ConsentKind::Given {
            level,
            agencies,
            excluded_categories,
            given_on,
            expires_on,
        } => {
            view.level = Some(level);
            view.agencies = agencies.map(|a| a.iter().map(ToString::to_string).collect());
            view.excluded_categories = excluded_categories.into_iter().collect();
            view.given_on = Some(date(given_on));
            view.expires_on = expires_on.map(date);
        }
        ConsentKind::Withdrawn { withdrawn_on } => {
            view.kind = "withdrawn";
            view.withdrawn_on = Some(date(withdrawn_on));
        }
    }
    Ok(view)
}
