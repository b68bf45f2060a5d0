//! Records: agencies submit the records they hold; practitioners read a subject's records
//! for a purpose and get exactly what the agreements in force and the person's consent
//! allow (`policy`), with what was withheld and why, and the receipt of the audit entry
//! that was made durable before the response was sent.

use std::collections::BTreeSet;

use actix_web::{
    http::header::{self, HeaderValue},
    web::{self, Json, Query},
    HttpRequest, HttpResponse,
};
use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};

use super::input::{path_subject, today};
use crate::{
    audit::Decision,
    crypto::Keyring,
    db::{agencies, agreements, records, subjects, Database},
    domain::{
        consent::{effective_at, ConsentLevel},
        purpose::Purpose,
        record::RecordId,
        record_type::RecordTypes,
        Role,
    },
    error::{ApiError, Problem},
    identity::Caller,
    policy::{self, AccessRequest, TypeDecision},
    redaction,
    routes::trail::{annotate, entry_for, record, record_before_change, AUDIT_ENTRY_HEADER},
};

/// Header carrying a break-glass justification.
pub const BREAK_GLASS_HEADER: &str = "concordat-break-glass";
const MIN_JUSTIFICATION: usize = 20;
const MAX_JUSTIFICATION: usize = 2000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRecord {
    /// A configured record type, e.g. `health.crisis_plan`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// RFC 3339.
    pub occurred_at: String,
    /// The record's fields, checked against the type.
    #[schema(value_type = Object)]
    pub data: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordCreated {
    pub record_id: String,
}

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
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentApplied {
    pub level: ConsentLevel,
    pub version: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedactedField {
    pub field: String,
    pub category: String,
    /// `consent`, `consent_excluded` or `agreement`.
    pub reason: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReleasedRecord {
    pub record_id: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub holder: String,
    pub occurred_at: String,
    /// The agreement the record was shared under; null when the holder reads its own.
    pub agreement_id: Option<String>,
    pub agreement_version: Option<i32>,
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    pub redacted: Vec<RedactedField>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditReceipt {
    pub leaf_index: u64,
    pub leaf_hash: String,
}

/// The disclosed part of a read, serialised on its own for the audit digest.
#[derive(Debug, Serialize, ToSchema)]
pub struct Disclosure {
    pub subject_id: String,
    pub purpose: Purpose,
    pub consent: ConsentApplied,
    pub break_glass: bool,
    pub records: Vec<ReleasedRecord>,
}

/// The read response: [`Disclosure`] and then the receipt of its audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordsResponse {
    #[serde(flatten)]
    pub disclosure: Disclosure,
    pub audit: AuditReceipt,
}

#[utoipa::path(post, path = "/v1/subjects/{subject_id}/records", tag = "records",
    params(("subject_id" = String, Path)), request_body = SubmitRecord,
    responses((status = 201, body = RecordCreated),
              (status = 403, description = "Not a practitioner or system, or the agency kind may not hold this type", body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Names the field", body = Problem, content_type = "application/problem+json")))]
pub async fn submit(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    keys: web::Data<Keyring>,
    types: web::Data<RecordTypes>,
    subject: web::Path<String>,
    body: Json<SubmitRecord>,
) -> Result<HttpResponse, ApiError> {
    let id = path_subject(&req, &subject)?;
    caller.require_any(&[Role::Practitioner, Role::System])?;
    let body = body.into_inner();
    let record_type = types
        .get(&body.record_type)
        .ok_or_else(|| ApiError::invalid_field("type", "is not a configured record type"))?;
    let agency = caller.principal.agency.clone();
    let kind = database
        .run(move |conn| agencies::find(conn, &agency))
        .await?
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("the caller's agency is not registered"))
        })?
        .kind;
    if !record_type.holders.contains(&kind) {
        return Err(ApiError::forbidden(
            "holder",
            format!("A {kind} agency may not hold {} records.", record_type.name),
        ));
    }
    let occurred_at = OffsetDateTime::parse(&body.occurred_at, &Rfc3339)
        .map_err(|_| ApiError::invalid_field("occurred_at", "must be an RFC 3339 date and time"))?;
    if occurred_at > OffsetDateTime::now_utc() {
        return Err(ApiError::invalid_field(
            "occurred_at",
            "must not be in the future",
        ));
    }
    record_type
        .validate(&body.data)
        .map_err(|problem| ApiError::invalid_field(&problem.field, problem.message))?;
    let lookup = id.clone();
    database
        .run(move |conn| subjects::summary(conn, &lookup))
        .await?
        .ok_or_else(|| ApiError::NotFound("No such subject.".into()))?;

    let record = records::Record {
        id: RecordId::generate(),
        subject: id,
        record_type: record_type.name.clone(),
        holder: caller.principal.agency.clone(),
        occurred_at: crate::domain::Timestamp::from(occurred_at),
        data: body.data,
    };
    annotate(&req, |a| a.record_ids = vec![record.id.to_string()]);
    record_before_change(&req).await?;
    let (keys, by, record_id) = (
        keys.into_inner(),
        caller.principal.id.to_string(),
        record.id.to_string(),
    );
    database
        .run(move |conn| records::insert(conn, &keys, &record, &by))
        .await?;
    Ok(HttpResponse::Created().json(RecordCreated { record_id }))
}

fn refuse(refusal: policy::Refusal, purpose: Purpose) -> ApiError {
    ApiError::forbidden(
        refusal.code(),
        match refusal {
            policy::Refusal::Role => "Only practitioners read records.".to_owned(),
            policy::Refusal::Purpose => format!("Records cannot be read for {purpose} this way."),
            policy::Refusal::NoAgreement => {
                format!("No agreement in force shares anything with your agency for {purpose}.")
            }
        },
    )
}

/// The break-glass justification, if the header is present: at least 20 characters.
fn break_glass(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(BREAK_GLASS_HEADER) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::invalid_field(
            "Concordat-Break-Glass",
            format!("a justification of {MIN_JUSTIFICATION} to {MAX_JUSTIFICATION} characters is required"),
        )
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    let length = text.chars().count();
    if !(MIN_JUSTIFICATION..=MAX_JUSTIFICATION).contains(&length) {
        return Err(invalid());
    }
    Ok(Some(text.to_owned()))
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
    caller: Caller,
    database: web::Data<Database>,
    keys: web::Data<Keyring>,
    types: web::Data<RecordTypes>,
    subject: web::Path<String>,
    query: Query<ReadQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = path_subject(&req, &subject)?;
    let query = query.into_inner();
    let purpose: Purpose = query.purpose.parse()?;
    annotate(&req, |a| a.purpose = Some(purpose.to_string()));
    let justification = break_glass(&req)?;
    // An emergency attempt is flagged even if it is refused, so it is seen and reviewed.
    if let Some(justification) = &justification {
        annotate(&req, |a| {
            a.break_glass = true;
            a.justification = Some(justification.clone());
        });
    }
    // Who asks and why can be refused before anything about the subject is read.
    policy::admit_caller(&caller.principal.roles, purpose, justification.is_some())
        .map_err(|refusal| refuse(refusal, purpose))?;
    if let Some(wanted) = &query.record_type {
        if types.get(wanted).is_none() {
            return Err(ApiError::invalid_field(
                "type",
                "is not a configured record type",
            ));
        }
    }
    let since = query
        .since
        .as_deref()
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339)
                .map(crate::domain::Timestamp::from)
                .map_err(|_| ApiError::invalid_field("since", "must be an RFC 3339 date and time"))
        })
        .transpose()?;

    // Everything the decision depends on, read afresh for this request.
    let now = OffsetDateTime::now_utc();
    let (keys, types_for_db, lookup, wanted) = (
        keys.into_inner(),
        types.clone().into_inner(),
        id.clone(),
        query.record_type.clone(),
    );
    let (summary, history, in_force, stored) = database
        .run(move |conn| {
            let summary = subjects::summary(conn, &lookup)?;
            let history = subjects::consent_history(conn, &keys, &lookup)?;
            let in_force = agreements::in_force(conn, &types_for_db, today())?;
            let stored = match summary {
                Some(_) => records::for_subject(conn, &keys, &lookup, wanted.as_deref(), since)?,
                None => Vec::new(),
            };
            Ok((summary, history, in_force, stored))
        })
        .await?;
    if summary.is_none() {
        return Err(ApiError::NotFound("No such subject.".into()));
    }
    let versions: Vec<_> = history.into_iter().map(|r| r.version).collect();
    let consent = effective_at(&versions, now);
    annotate(&req, |a| a.consent_version = consent.version.map(i64::from));
    let request = AccessRequest {
        recipient: &caller.principal.agency,
        roles: &caller.principal.roles,
        purpose,
        break_glass: justification.is_some(),
        consent: &consent,
        agreements: &in_force,
    };
    policy::admit(&request).map_err(|refusal| refuse(refusal, purpose))?;

    let mut released_records = Vec::new();
    let mut entry = entry_for(&req, Decision::Granted, "ok");
    let mut used_agreements = BTreeSet::new();
    for stored in &stored {
        entry.record_ids.push(stored.id.to_string());
        let Some(record_type) = types.get(&stored.record_type) else {
            // A type removed from configuration is never disclosed.
            continue;
        };
        let decision = policy::decide(&request, &stored.holder, record_type);
        let agreement = match &decision {
            TypeDecision::Fields {
                agreements,
                released_by,
                ..
            } => {
                used_agreements.extend(agreements.iter().cloned());
                released_by
                    .clone()
                    .or_else(|| agreements.iter().next().cloned())
            }
            _ => None,
        };
        match redaction::apply(&decision, record_type, &stored.data) {
            None => {
                let present = stored
                    .data
                    .as_object()
                    .map(|o| o.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default();
                for field in present {
                    let category = record_type
                        .fields
                        .get(&field)
                        .map_or("unknown", |s| s.category.as_str());
                    entry
                        .withheld
                        .push(format!("{}.{field}:{category}", record_type.name));
                }
            }
            Some(redacted) => {
                entry.released.extend(
                    redacted
                        .released
                        .iter()
                        .map(|(f, c)| format!("{}.{f}:{c}", record_type.name)),
                );
                entry.withheld.extend(
                    redacted
                        .withheld
                        .iter()
                        .map(|(f, c, _)| format!("{}.{f}:{c}", record_type.name)),
                );
                released_records.push(ReleasedRecord {
                    record_id: stored.id.to_string(),
                    record_type: stored.record_type.clone(),
                    holder: stored.holder.to_string(),
                    occurred_at: stored.occurred_at.to_rfc3339(),
                    agreement_id: agreement.as_ref().map(|(id, _)| id.clone()),
                    agreement_version: agreement.map(|(_, v)| v),
                    data: redacted.data,
                    redacted: redacted
                        .withheld
                        .into_iter()
                        .map(|(field, category, reason)| RedactedField {
                            field,
                            category,
                            reason: reason.as_str(),
                        })
                        .collect(),
                });
            }
        }
    }
    let disclosure = Disclosure {
        subject_id: id.to_string(),
        purpose,
        consent: ConsentApplied {
            level: consent.level,
            version: consent.version,
        },
        break_glass: justification.is_some(),
        records: released_records,
    };
    // The digest covers the disclosed object: the body without its final `audit` member.
    let disclosed = serde_json::to_vec(&disclosure).map_err(|e| ApiError::Internal(e.into()))?;
    entry.agreements = used_agreements
        .iter()
        .map(|(id, v)| format!("{id}@{v}"))
        .collect();
    entry.break_glass = justification.is_some();
    entry.justification = justification;
    entry.response_sha256 = Some(hex::encode(digest(&SHA256, &disclosed)));
    let receipt = record(&req, entry).await?;

    let body = serde_json::to_vec(&RecordsResponse {
        disclosure,
        audit: AuditReceipt {
            leaf_index: receipt.leaf_index.0,
            leaf_hash: hex::encode(receipt.leaf_hash),
        },
    })
    .map_err(|e| ApiError::Internal(e.into()))?;
    let mut response = HttpResponse::Ok();
    response.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    if let Ok(value) = HeaderValue::from_str(&receipt.leaf_index.to_string()) {
        response.insert_header((AUDIT_ENTRY_HEADER, value));
    }
    Ok(response.body(body))
}
