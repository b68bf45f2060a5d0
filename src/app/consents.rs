//! Consent: recorded and withdrawn by coordinators, read with its full history by
//! coordinators and IG auditors. Every version is kept; the effective consent is derived.
//! Evidence is stored sealed and returned only in the history; entries name the subject
//! and the version, never what was consented to or how.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{
    input::{parse_date, parse_text, today},
    subjects::{name_subject, require_subject},
    AppError, Call, Gateway,
};
use crate::{
    db::{agencies, subjects},
    domain::{
        consent::{
            check_given, check_withdrawn, effective_at, excluded_categories, ConsentKind,
            ConsentLevel, EffectiveConsent,
        },
        subject::SubjectId,
        AgencyId, Role,
    },
};

/// Evidence is a note of how consent was obtained (not a document store).
const MAX_EVIDENCE: usize = 10_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    pub level: ConsentLevel,
    /// Agencies the consent covers; absent covers every party.
    pub agencies: Option<Vec<String>>,
    /// Categories the person does not want shared.
    pub excluded_categories: Option<Vec<String>>,
    /// How consent was obtained. Stored encrypted; never logged or audited.
    pub evidence: String,
    /// `YYYY-MM-DD`, not in the future.
    pub given_on: String,
    /// `YYYY-MM-DD`, after `given_on`.
    pub expires_on: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    pub evidence: String,
    /// `YYYY-MM-DD`, not in the future: a withdrawal takes effect at once.
    pub withdrawn_on: String,
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

/// Records a consent given as the subject's next version.
pub async fn record(
    gateway: &Gateway,
    call: &Call,
    subject: &SubjectId,
    request: ConsentRequest,
) -> Result<ConsentRecorded, AppError> {
    name_subject(call, subject);
    call.require_any(&[Role::Coordinator])?;
    let evidence = parse_text("evidence", &request.evidence, MAX_EVIDENCE)?;
    let given_on = parse_date("given_on", &request.given_on)?;
    let expires_on = request
        .expires_on
        .as_deref()
        .map(|raw| parse_date("expires_on", raw))
        .transpose()?;
    check_given(given_on, expires_on, today())?;
    let excluded = excluded_categories(
        request.excluded_categories.unwrap_or_default(),
        &gateway.record_types,
    )?;
    let agencies = match request.agencies {
        Some(list) => Some(known_agencies(gateway, list).await?),
        None => None,
    };
    require_subject(gateway, subject).await?;
    let kind = ConsentKind::Given {
        level: request.level,
        agencies,
        excluded_categories: excluded,
        given_on,
        expires_on,
    };
    append(gateway, call, subject, kind, evidence).await
}

/// Records a withdrawal as the subject's next version: from then on nothing is shared
/// on consent.
pub async fn withdraw(
    gateway: &Gateway,
    call: &Call,
    subject: &SubjectId,
    request: WithdrawRequest,
) -> Result<ConsentRecorded, AppError> {
    name_subject(call, subject);
    call.require_any(&[Role::Coordinator])?;
    let evidence = parse_text("evidence", &request.evidence, MAX_EVIDENCE)?;
    let withdrawn_on = parse_date("withdrawn_on", &request.withdrawn_on)?;
    check_withdrawn(withdrawn_on, today())?;
    require_subject(gateway, subject).await?;
    let kind = ConsentKind::Withdrawn { withdrawn_on };
    append(gateway, call, subject, kind, evidence).await
}

/// Every version, newest first, and the consent in force now. The entry names the version
/// in force.
pub async fn history(
    gateway: &Gateway,
    call: &Call,
    subject: &SubjectId,
) -> Result<ConsentHistory, AppError> {
    name_subject(call, subject);
    call.require_any(&[Role::Coordinator, Role::IgAuditor])?;
    require_subject(gateway, subject).await?;
    let (keys, lookup) = (gateway.keys.clone(), subject.clone());
    let recorded = gateway
        .database
        .run(move |conn| subjects::consent_history(conn, &keys, &lookup))
        .await?;
    let versions: Vec<_> = recorded.iter().map(|r| r.version.clone()).collect();
    let effective = effective_at(&versions, OffsetDateTime::now_utc());
    let in_force = effective.version.map(i64::from);
    call.audit
        .annotate(|entry| entry.consent_version = in_force);
    Ok(ConsentHistory {
        subject_id: subject.to_string(),
        effective: effective_view(effective),
        history: recorded.into_iter().rev().map(history_item).collect(),
    })
}

/// The agencies a consent names, each one registered. The refusal does not repeat what
/// was sent.
async fn known_agencies(
    gateway: &Gateway,
    raw: Vec<String>,
) -> Result<BTreeSet<AgencyId>, AppError> {
    let unknown = || AppError::invalid("agencies", "names an agency that is not registered");
    let ids = raw
        .iter()
        .map(|raw| AgencyId::parse(raw).map_err(|_| unknown()))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let lookup = ids.clone();
    let all_known = gateway
        .database
        .run(move |conn| {
            for agency in &lookup {
                if agencies::find(conn, agency)?.is_none() {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await?;
    if all_known {
        Ok(ids)
    } else {
        Err(unknown())
    }
}

/// Appends `kind` as the next version. The entry names the version and is durable before
/// the version is written; a coordinator recording in between makes this a conflict, not
/// a silent renumbering.
async fn append(
    gateway: &Gateway,
    call: &Call,
    subject: &SubjectId,
    kind: ConsentKind,
    evidence: String,
) -> Result<ConsentRecorded, AppError> {
    let next = subject.clone();
    let version = gateway
        .database
        .run(move |conn| subjects::next_consent_version(conn, &next))
        .await?;
    call.audit
        .annotate(|entry| entry.consent_version = Some(i64::from(version)));
    call.record_before_change().await?;
    let (keys, stored, by) = (gateway.keys.clone(), subject.clone(), call.by());
    gateway
        .database
        .run(move |conn| {
            subjects::record_consent(conn, &keys, &stored, version, &kind, &evidence, &by)
        })
        .await?;
    Ok(ConsentRecorded {
        consent_version: version,
    })
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

fn history_item(item: subjects::RecordedConsent) -> HistoryItem {
    let version = item.version;
    let mut view = HistoryItem {
        version: version.version,
        kind: version.kind.as_str(),
        level: None,
        agencies: None,
        excluded_categories: Vec::new(),
        given_on: None,
        expires_on: None,
        withdrawn_on: None,
        evidence: item.evidence,
        recorded_by: version.recorded_by,
        recorded_at: version.recorded_at.to_rfc3339(),
    };
    match version.kind {
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
            view.given_on = Some(given_on.to_string());
            view.expires_on = expires_on.map(|day| day.to_string());
        }
        ConsentKind::Withdrawn { withdrawn_on } => {
            view.withdrawn_on = Some(withdrawn_on.to_string());
        }
    }
    view
}

/// What a consent may name: the registered agencies (id, name) and the categories of
/// information a person may exclude.
#[derive(Debug, Clone)]
pub struct ConsentChoices {
    pub agencies: Vec<(String, String)>,
    pub categories: Vec<String>,
}

/// The choices a coordinator recording consent picks from.
pub async fn choices(gateway: &Gateway, call: &Call) -> Result<ConsentChoices, AppError> {
    call.require_any(&[Role::Coordinator])?;
    let registered = gateway.database.run(agencies::list).await?;
    Ok(ConsentChoices {
        agencies: registered
            .into_iter()
            .map(|agency| (agency.id.to_string(), agency.name))
            .collect(),
        categories: gateway
            .record_types
            .categories()
            .map(str::to_owned)
            .collect(),
    })
}
