//! Records: an agency submits the records it holds; a practitioner reads a subject's
//! records for a purpose and gets exactly what the agreements in force and the person's
//! consent allow (`policy`, applied by `redaction`), what was withheld and why, and the
//! receipt of the audit entry that was made durable before anything was disclosed. An
//! operator re-seals, bound, the payloads stored before payloads were bound.

use std::{collections::BTreeSet, sync::Arc};

use ring::digest::{digest, SHA256};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{error::Rule, input, AppError, Call, Gateway};
use crate::{
    audit::{Decision, LeafIndex, Receipt},
    crypto::Keyring,
    db::{
        agencies,
        records::{self, RecordCursor, RecordFilter},
        subjects, Database,
    },
    domain::{
        agreement::Agreement,
        consent::{effective_at, ConsentLevel, EffectiveConsent},
        purpose::Purpose,
        record::RecordId,
        record_type::{RecordType, RecordTypes},
        subject::SubjectId,
        AgencyId, AgencyKind, Principal, Role, Timestamp,
    },
    policy::{self, AccessRequest, Refusal, TypeDecision},
    redaction,
};

/// The name a break-glass justification is reported under when it is refused (the HTTP
/// header that carries it).
const JUSTIFICATION_FIELD: &str = "Concordat-Break-Glass";
const MIN_JUSTIFICATION: usize = 20;
const MAX_JUSTIFICATION: usize = 2000;
/// Records per page of a read when the caller names no limit, and the most it may name.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;
/// Sealed payload bytes one page may open before it ends early: a page of large records is
/// shorter, so no read decrypts more than about this (plus one record).
const PAGE_BUDGET_BYTES: usize = 8 * 1024 * 1024;

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

/// A record submitted for the subject named by `subject` (as given, not yet parsed).
#[derive(Debug)]
pub struct Submission {
    pub subject: String,
    pub record: SubmitRecord,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordCreated {
    pub record_id: String,
}

/// A read of a subject's records, as the caller gave it.
#[derive(Debug)]
pub struct ReadRequest {
    pub subject: String,
    pub purpose: String,
    /// Only records of this type.
    pub record_type: Option<String>,
    /// RFC 3339: only records that occurred at or after.
    pub since: Option<String>,
    /// Records per page, 1 to 200; 50 when absent.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// The justification of an emergency (break-glass) read.
    pub justification: Option<String>,
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
    #[schema(value_type = u64)]
    pub leaf_index: LeafIndex,
    pub leaf_hash: String,
}

impl From<Receipt> for AuditReceipt {
    fn from(receipt: Receipt) -> Self {
        Self {
            leaf_index: receipt.leaf_index,
            leaf_hash: hex::encode(receipt.leaf_hash),
        }
    }
}

/// The disclosed part of a read, serialised on its own for the audit digest.
#[derive(Debug, Serialize, ToSchema)]
pub struct Disclosure {
    pub subject_id: String,
    pub purpose: Purpose,
    pub consent: ConsentApplied,
    pub break_glass: bool,
    /// Newest first; records not shared with the caller's agency are left out.
    pub records: Vec<ReleasedRecord>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The read's answer: [`Disclosure`] and then the receipt of its audit entry, whose
/// `response_sha256` is the SHA-256 of the disclosure serialised alone, i.e. of this
/// object's JSON without its final `audit` member.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordsResponse {
    #[serde(flatten)]
    pub disclosure: Disclosure,
    pub audit: AuditReceipt,
}

/// Submits a record held by the caller's agency.
pub async fn submit(
    gateway: &Gateway,
    call: &Call,
    submission: Submission,
) -> Result<RecordCreated, AppError> {
    let subject = input::subject(call, &submission.subject)?;
    call.require_any(&[Role::Practitioner, Role::System])?;
    let body = submission.record;
    let record_type = gateway
        .record_types
        .get(&body.record_type)
        .ok_or_else(|| AppError::invalid("type", "is not a configured record type"))?;
    let holder = holder_of(gateway, call, record_type).await?;
    let occurred_at = Timestamp::parse_rfc3339(&body.occurred_at)
        .ok_or_else(|| AppError::invalid("occurred_at", "must be an RFC 3339 date and time"))?;
    if occurred_at > Timestamp::now() {
        return Err(AppError::invalid(
            "occurred_at",
            "must not be in the future",
        ));
    }
    record_type
        .validate(&body.data)
        .map_err(|problem| AppError::invalid(&problem.field, problem.message))?;
    let lookup = subject.clone();
    gateway
        .database
        .read(move |conn| subjects::summary(conn, &lookup))
        .await?
        .ok_or_else(|| AppError::not_found("subject"))?;

    let record = records::Record {
        id: RecordId::generate(),
        subject,
        record_type: record_type.name.clone(),
        holder,
        occurred_at,
        data: body.data,
    };
    let record_id = record.id.to_string();
    call.audit
        .annotate(|entry| entry.record_ids = vec![record_id.clone()]);
    let sealed = records::seal(&gateway.keys, &record, &call.by())?;
    call.record_with_change(Box::new(move |conn| records::insert(conn, &sealed)))
        .await?;
    Ok(RecordCreated { record_id })
}

/// How many records one [`reseal`] call re-seals at most: one transaction, one audit entry
/// naming each of them.
pub const RESEAL_BATCH: i64 = 500;

/// Up to [`RESEAL_BATCH`] records after `after` (in id order) whose payloads are still sealed
/// unbound. Reads ids only and discloses nothing, so it is not a call of its own.
pub async fn unbound(
    database: &Database,
    after: Option<RecordId>,
) -> Result<Vec<RecordId>, AppError> {
    Ok(database
        .run(move |conn| records::unbound(conn, after.as_ref(), RESEAL_BATCH))
        .await?)
}

/// Re-seals the payloads of `ids` (from [`unbound`]) bound to their rows as they stand, and
/// returns how many were re-sealed. Every payload is opened and sealed again first; the
/// entry, naming each record, is durable before any of them is written.
pub async fn reseal(
    database: &Database,
    keys: Arc<Keyring>,
    call: &Call,
    ids: Vec<RecordId>,
) -> Result<usize, AppError> {
    call.require_any(&[Role::Admin])?;
    let rebound = database
        .run(move |conn| records::rebind(conn, &keys, &ids))
        .await?;
    if rebound.is_empty() {
        return Ok(0);
    }
    call.audit.annotate(|entry| {
        entry.record_ids = rebound.iter().map(|r| r.id().to_owned()).collect();
    });
    call.record_before_change().await?;
    Ok(database
        .run(move |conn| records::reseal(conn, &rebound))
        .await?)
}

/// The caller's agency, if its kind may hold records of `record_type`.
/// The record types the caller's agency may hold, for the forms that submit them.
pub async fn types_held(gateway: &Gateway, call: &Call) -> Result<Vec<RecordType>, AppError> {
    call.require_any(&[Role::Practitioner, Role::System])?;
    let (_, kind) = caller_agency(gateway, call).await?;
    Ok(gateway
        .record_types
        .names()
        .filter_map(|name| gateway.record_types.get(name))
        .filter(|record_type| record_type.holders.contains(&kind))
        .cloned()
        .collect())
}

/// The caller's agency and its kind; only principals of an agency hold records.
async fn caller_agency(gateway: &Gateway, call: &Call) -> Result<(AgencyId, AgencyKind), AppError> {
    let holder = call.agency().cloned().ok_or_else(|| {
        AppError::refused(
            Rule::Holder,
            "Records are submitted by a principal of the agency that holds them.",
        )
    })?;
    let lookup = holder.clone();
    let kind = gateway
        .database
        .read(move |conn| agencies::find(conn, &lookup))
        .await?
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("the caller's agency is not registered"))
        })?
        .kind;
    Ok((holder, kind))
}

async fn holder_of(
    gateway: &Gateway,
    call: &Call,
    record_type: &RecordType,
) -> Result<AgencyId, AppError> {
    let (holder, kind) = caller_agency(gateway, call).await?;
    if !record_type.holders.contains(&kind) {
        return Err(AppError::refused(
            Rule::Holder,
            format!("A {kind} agency may not hold {} records.", record_type.name),
        ));
    }
    Ok(holder)
}

/// Reads a subject's records: discloses what policy allows, after the entry that says so
/// (with the digest of exactly what is disclosed) is durable.
pub async fn read(
    gateway: &Gateway,
    call: &Call,
    request: ReadRequest,
) -> Result<RecordsResponse, AppError> {
    let asked = ask(gateway, call, request)?;
    let standing = load(gateway, &asked).await?;
    call.audit.decide_at(standing.decided_at);
    let consent = standing.consent;
    call.audit.annotate(|entry| {
        entry.consent_version = consent.version.map(i64::from);
        entry.record_types_sha256 = Some(gateway.record_types_sha256.clone());
    });
    let access = AccessRequest {
        recipient: &asked.principal.agency,
        roles: &asked.principal.roles,
        purpose: asked.purpose,
        break_glass: asked.break_glass,
        consent: &consent,
        agreements: &standing.in_force,
    };
    policy::admit(&access).map_err(|refusal| refused(refusal, asked.purpose))?;

    let release = release(&access, &gateway.record_types, &standing.records);
    let disclosure = Disclosure {
        subject_id: asked.subject.to_string(),
        purpose: asked.purpose,
        consent: ConsentApplied {
            level: consent.level,
            version: consent.version,
        },
        break_glass: asked.break_glass,
        records: release.records,
        next_cursor: standing.next.as_ref().map(cursor_text),
    };
    let disclosed = serde_json::to_vec(&disclosure).map_err(AppError::internal)?;
    call.audit.annotate(|entry| {
        entry.record_ids.extend(release.record_ids);
        entry.released = release.released;
        entry.withheld = release.withheld;
        entry.agreements = release.agreements;
    });
    let receipt = call
        .audit
        .record(
            Decision::Granted,
            "ok",
            Some(hex::encode(digest(&SHA256, &disclosed))),
        )
        .await?;
    Ok(RecordsResponse {
        disclosure,
        audit: receipt.into(),
    })
}

/// A read as parsed, by a caller who may ask it.
struct Asked<'a> {
    principal: &'a Principal,
    subject: SubjectId,
    purpose: Purpose,
    break_glass: bool,
    filter: RecordFilter,
    limit: usize,
}

/// Parses a read and refuses what can be refused before anything about the subject is
/// read: who asks and why.
fn ask<'a>(gateway: &Gateway, call: &'a Call, request: ReadRequest) -> Result<Asked<'a>, AppError> {
    let subject = input::subject(call, &request.subject)?;
    if let Some(raw) = request.justification.as_deref() {
        // Every attempt at emergency access is flagged, even one then refused (wrong
        // purpose, no agreement, a malformed justification), so that it is reviewed. What
        // is kept of the justification is bounded.
        let kept: String = raw.trim().chars().take(MAX_JUSTIFICATION).collect();
        call.audit.annotate(|entry| {
            entry.break_glass = true;
            entry.justification = Some(kept);
        });
    }
    let purpose: Purpose = request.purpose.parse()?;
    call.audit
        .annotate(|entry| entry.purpose = Some(purpose.to_string()));
    let justification = request
        .justification
        .as_deref()
        .map(justification)
        .transpose()?;
    let break_glass = justification.is_some();
    let principal = call
        .principal()
        .ok_or_else(|| refused(Refusal::Role, purpose))?;
    policy::admit_caller(&principal.roles, purpose, break_glass)
        .map_err(|refusal| refused(refusal, purpose))?;
    if let Some(wanted) = &request.record_type {
        if gateway.record_types.get(wanted).is_none() {
            return Err(AppError::invalid("type", "is not a configured record type"));
        }
    }
    let since = request
        .since
        .as_deref()
        .map(|raw| {
            Timestamp::parse_rfc3339(raw)
                .ok_or_else(|| AppError::invalid("since", "must be an RFC 3339 date and time"))
        })
        .transpose()?;
    let limit = request.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::invalid("limit", "must be between 1 and 200"));
    }
    let after = request
        .cursor
        .as_deref()
        .map(|raw| {
            parse_cursor(raw)
                .ok_or_else(|| AppError::invalid("cursor", "is not a cursor from this API"))
        })
        .transpose()?;
    Ok(Asked {
        principal,
        subject,
        purpose,
        break_glass,
        filter: RecordFilter {
            record_type: request.record_type,
            since,
            after,
        },
        limit: usize::try_from(limit).unwrap_or(1),
    })
}

/// A page's cursor as the caller sees it: `<occurred, µs since the epoch>.<record id>`.
fn cursor_text(cursor: &RecordCursor) -> String {
    format!("{}.{}", cursor.occurred_at.micros(), cursor.id)
}

fn parse_cursor(raw: &str) -> Option<RecordCursor> {
    let (micros, id) = raw.split_once('.')?;
    Some(RecordCursor {
        occurred_at: Timestamp::from_micros(micros.parse().ok()?),
        id: RecordId::parse(id).ok()?,
    })
}

/// Everything a read decides by, read afresh for each call.
struct Standing {
    /// The instant the read decides at: the entry's time.
    decided_at: Timestamp,
    /// The consent in force then.
    consent: EffectiveConsent,
    in_force: Arc<Vec<Agreement>>,
    /// This page of the subject's records.
    records: Vec<records::Record>,
    next: Option<RecordCursor>,
}

async fn load(gateway: &Gateway, asked: &Asked<'_>) -> Result<Standing, AppError> {
    let (keys, types, memo, subject, filter, limit) = (
        gateway.keys.clone(),
        gateway.record_types.clone(),
        gateway.agreements_in_force.clone(),
        asked.subject.clone(),
        asked.filter.clone(),
        asked.limit,
    );
    let (recipient, roles, purpose, break_glass) = (
        asked.principal.agency.clone(),
        asked.principal.roles.clone(),
        asked.purpose,
        asked.break_glass,
    );
    gateway
        .database
        .read(move |conn| {
            if subjects::summary(conn, &subject)?.is_none() {
                return Ok(None);
            }
            let consents = subjects::consent_versions(conn, &subject)?;
            // The instant of the decision, taken once the consent versions are read: every
            // version they hold was recorded before it, so none is ignored (a withdrawal
            // committed a moment ago counts). The agreements, the consent and the entry's
            // time all stand at it, so that a replay decides by exactly what stood then.
            let now = OffsetDateTime::now_utc();
            let in_force = memo.in_force(conn, &types, now.date())?;
            let consent = effective_at(&consents, now);
            let access = AccessRequest {
                recipient: &recipient,
                roles: &roles,
                purpose,
                break_glass,
                consent: &consent,
                agreements: &in_force,
            };
            // The same rule `release` applies: a record is left out when no share covers
            // its holder and type. Known before its payload is opened, so a page boundary
            // can be placed without revealing a record the reader is not shown.
            let shown = |holder: &str, record_type: &str| match (
                AgencyId::parse(holder),
                types.get(record_type),
            ) {
                (Ok(holder), Some(record_type)) => {
                    policy::decide(&access, &holder, record_type) != TypeDecision::Omitted
                }
                _ => false,
            };
            let page = records::page_for_subject(
                conn,
                &keys,
                &subject,
                &filter,
                limit,
                PAGE_BUDGET_BYTES,
                shown,
            )?;
            Ok(Some(Standing {
                decided_at: Timestamp::from(now),
                consent,
                in_force,
                records: page.records,
                next: page.next,
            }))
        })
        .await?
        .ok_or_else(|| AppError::not_found("subject"))
}

/// The subject a call names; its entry names it too, even if the call is then refused.
fn justification(raw: &str) -> Result<String, AppError> {
    let text = raw.trim();
    if !(MIN_JUSTIFICATION..=MAX_JUSTIFICATION).contains(&text.chars().count()) {
        return Err(AppError::invalid(
            JUSTIFICATION_FIELD,
            format!(
                "a justification of {MIN_JUSTIFICATION} to {MAX_JUSTIFICATION} characters is required"
            ),
        ));
    }
    Ok(text.to_owned())
}

/// A read refused before anything is released, in the words the caller (or an auditor's
/// replay) is given.
pub(super) fn refused(refusal: Refusal, purpose: Purpose) -> AppError {
    match refusal {
        Refusal::Role => AppError::refused(Rule::Role, "Only practitioners read records."),
        Refusal::Purpose => AppError::refused(
            Rule::Purpose,
            format!("Records cannot be read for {purpose} this way."),
        ),
        Refusal::NoAgreement => AppError::refused(
            Rule::NoAgreement,
            format!("No agreement in force shares anything with your agency for {purpose}."),
        ),
    }
}

/// What a read releases, and what its audit entry says about it.
#[derive(Debug, Default)]
pub struct Release {
    pub records: Vec<ReleasedRecord>,
    /// Every record considered, whether released or not.
    pub record_ids: Vec<String>,
    /// Field labels (`type.field:category`) released, and withheld (left out records
    /// included).
    pub released: Vec<String>,
    pub withheld: Vec<String>,
    /// `id@version` of every agreement that applied.
    pub agreements: Vec<String>,
}

/// Decides and redacts each stored record for `access` (already admitted by
/// [`policy::admit`]). Pure, and public so that `benches/decision.rs` measures the decision
/// of a read exactly as [`read`] makes it.
pub fn release(
    access: &AccessRequest<'_>,
    types: &RecordTypes,
    stored: &[records::Record],
) -> Release {
    let mut out = Release::default();
    let mut applied = BTreeSet::new();
    for record in stored {
        out.record_ids.push(record.id.to_string());
        let Some(record_type) = types.get(&record.record_type) else {
            // A type removed from configuration is never disclosed.
            continue;
        };
        let decision = policy::decide(access, &record.holder, record_type);
        applied.extend(decision.agreements().cloned());
        let redacted = redaction::apply(&decision, record_type, &record.data);
        let label = |field: &str, category: &str| field_label(&record_type.name, field, category);
        out.released
            .extend(redacted.released.iter().map(|(f, c)| label(f, c)));
        out.withheld
            .extend(redacted.withheld.iter().map(|(f, c, _)| label(f, c)));
        let Some(data) = redacted.data else {
            continue;
        };
        let shared_under = decision.shared_under();
        out.records.push(ReleasedRecord {
            record_id: record.id.to_string(),
            record_type: record.record_type.clone(),
            holder: record.holder.to_string(),
            occurred_at: record.occurred_at.to_rfc3339(),
            agreement_id: shared_under.map(|shared| shared.id.clone()),
            agreement_version: shared_under.map(|shared| shared.version),
            data,
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
    out.agreements = applied.iter().map(ToString::to_string).collect();
    out
}

/// How an audit entry names a field released or withheld: `type.field:category`, never its
/// value.
fn field_label(record_type: &str, field: &str, category: &str) -> String {
    format!("{record_type}.{field}:{category}")
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::json;

    use super::*;
    use crate::domain::{
        agreement::{AgreementDocument, Known},
        consent::EffectiveConsent,
        AgencyKind,
    };

    fn agency(id: &str) -> AgencyId {
        AgencyId::parse(id).unwrap()
    }

    fn types() -> RecordTypes {
        RecordTypes::from_toml(include_str!("../../config/record-types.toml"), "t").unwrap()
    }

    fn example(types: &RecordTypes) -> Agreement {
        let agencies: BTreeMap<AgencyId, AgencyKind> = [
            ("hampshire-police", AgencyKind::Police),
            ("iow-nhs", AgencyKind::Health),
            ("scas", AgencyKind::Ambulance),
            ("iow-recovery", AgencyKind::Programme),
        ]
        .into_iter()
        .map(|(id, kind)| (agency(id), kind))
        .collect();
        let document: AgreementDocument = toml::from_str(include_str!(
            "../../config/agreements/isa-iow-recovery.toml"
        ))
        .unwrap();
        document
            .validate(&Known {
                agencies: &agencies,
                record_types: types,
            })
            .unwrap()
    }

    fn stored(record_type: &str, holder: &str, data: Value) -> records::Record {
        records::Record {
            id: RecordId::generate(),
            subject: SubjectId::parse("subj_aaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap(),
            record_type: record_type.to_owned(),
            holder: agency(holder),
            occurred_at: Timestamp::from_micros(1_772_355_600_000_000),
            data,
        }
    }

    #[test]
    fn the_entry_names_every_field_released_or_withheld_and_every_record_considered() {
        let types = types();
        let agreements = vec![example(&types)];
        let roles: BTreeSet<Role> = [Role::Practitioner].into_iter().collect();
        let police = agency("hampshire-police");
        let consent = EffectiveConsent {
            level: ConsentLevel::Crisis,
            version: Some(1),
            agencies: None,
            excluded_categories: BTreeSet::new(),
        };
        let access = AccessRequest {
            recipient: &police,
            roles: &roles,
            purpose: Purpose::CrisisResponse,
            break_glass: false,
            consent: &consent,
            agreements: &agreements,
        };
        let records = [
            stored(
                "health.crisis_plan",
                "iow-nhs",
                json!({"updated_on": "2026-03-01", "triggers": "t", "diagnosis": "d"}),
            ),
            // Not shared with the police at all: left out, its fields still named.
            stored(
                "ambulance.callout",
                "scas",
                json!({"attended_at": "2026-03-03T01:00:00Z", "clinical_impression": "c"}),
            ),
            // A type no longer configured: considered, never disclosed.
            stored("health.dream_diary", "iow-nhs", json!({"dream": "x"})),
        ];

        let release = release(&access, &types, &records);

        assert_eq!(release.record_ids.len(), 3);
        assert_eq!(
            release.released,
            [
                "health.crisis_plan.triggers:crisis_plan",
                "health.crisis_plan.updated_on:crisis_plan"
            ]
        );
        assert_eq!(
            release.withheld,
            [
                "health.crisis_plan.diagnosis:clinical",
                "ambulance.callout.attended_at:service_usage",
                "ambulance.callout.clinical_impression:clinical"
            ]
        );
        assert_eq!(release.agreements, ["isa-iow-recovery@1"]);
        let [plan] = release.records.as_slice() else {
            panic!("{:?}", release.records)
        };
        assert_eq!(plan.agreement_id.as_deref(), Some("isa-iow-recovery"));
        assert_eq!(plan.agreement_version, Some(1));
        assert_eq!(plan.occurred_at, "2026-03-01T09:00:00Z");
        assert_eq!(
            plan.data.keys().collect::<Vec<_>>(),
            ["triggers", "updated_on"]
        );
        let redacted: Vec<_> = plan
            .redacted
            .iter()
            .map(|r| (r.field.as_str(), r.category.as_str(), r.reason))
            .collect();
        assert_eq!(redacted, [("diagnosis", "clinical", "consent")]);
    }
}
