//! Agreements: read by principals of a party agency, admins and IG auditors; drafted,
//! approved by an IG lead of every party, suspended or terminated with a reason; imported
//! directly by an admin. Who may do which is decided by [`govern`] alone: each use case
//! asks it of the history it loaded for the early answer, and storage asks it again under
//! the agreement lock, so the answer does not depend on a race. Status is derived from the
//! stored history on every call.

use std::collections::BTreeMap;

use serde::Serialize;
use time::Date;
use utoipa::ToSchema;

use super::{
    input::{parse_text, today},
    AppError, Call, Gateway,
};
use crate::{
    audit::entry::format_time,
    db::agreements as store,
    domain::{
        agreement::{
            govern, Agreement, AgreementDocument, AgreementHistory, AgreementRef, AgreementStatus,
            GovernanceAction, Known, Requester, StatusChange,
        },
        AgencyId, AgencyKind, Role,
    },
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

/// One line of the operator's listing.
#[derive(Debug, Clone)]
pub struct AgreementSummary {
    pub id: String,
    pub status: AgreementStatus,
    pub in_force_version: Option<i32>,
    /// Of the newest version.
    pub valid_until: Option<String>,
    /// Of the newest version.
    pub review_by: Option<String>,
    /// The version in force is past its review date.
    pub review_overdue: bool,
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub agreement: AgreementRef,
    /// False when the same version was imported before.
    pub changed: bool,
}

type Agencies = BTreeMap<AgencyId, AgencyKind>;

fn requester(call: &Call) -> Requester {
    Requester {
        agency: call.agency().cloned(),
        roles: Role::ALL
            .into_iter()
            .filter(|role| call.has_role(*role))
            .collect(),
    }
}

fn known<'a>(gateway: &'a Gateway, agencies: &'a Agencies) -> Known<'a> {
    Known {
        agencies,
        record_types: &gateway.record_types,
    }
}

fn view(history: &AgreementHistory, known: &Known<'_>, today: Date) -> AgreementView {
    let standing = store::standing(history, known, today);
    AgreementView {
        id: history.id.clone(),
        status: standing.status,
        in_force_version: standing.in_force.map(|a| a.version),
        versions: history
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
                        agency: a.agency.to_string(),
                        approved_by: a.approved_by.clone(),
                        approved_at: format_time(a.approved_at),
                    })
                    .collect(),
            })
            .collect(),
        events: history
            .events
            .iter()
            .map(|e| EventView {
                kind: e.kind.as_str().to_owned(),
                version: e.version,
                reason: e.reason.clone(),
                recorded_by: e.recorded_by.clone(),
                recorded_at: format_time(e.recorded_at),
            })
            .collect(),
    }
}

/// Every agreement the caller may see, and the registered agencies validation needs.
async fn load_visible_all(
    gateway: &Gateway,
    call: &Call,
) -> Result<(Vec<AgreementHistory>, Agencies), AppError> {
    let (histories, agencies) = gateway
        .database
        .run(|conn| Ok((store::load_all(conn)?, store::known_agencies(conn)?)))
        .await?;
    let who = requester(call);
    let visible = histories
        .into_iter()
        .filter(|h| h.visible_to(&who))
        .collect();
    Ok((visible, agencies))
}

/// One agreement, or "no such agreement" when it does not exist or the caller may not see
/// it (the two are not told apart).
async fn load_visible(
    gateway: &Gateway,
    call: &Call,
    id: &str,
) -> Result<(AgreementHistory, Agencies), AppError> {
    let id = id.to_owned();
    let (history, agencies) = gateway
        .database
        .run(move |conn| Ok((store::load(conn, &id)?, store::known_agencies(conn)?)))
        .await?;
    let history = history
        .filter(|h| h.visible_to(&requester(call)))
        .ok_or_else(|| AppError::not_found("agreement"))?;
    Ok((history, agencies))
}

fn check(
    gateway: &Gateway,
    agencies: &Agencies,
    document: &AgreementDocument,
) -> Result<Agreement, AppError> {
    document
        .validate(&known(gateway, agencies))
        .map_err(|error| AppError::invalid(&error.key, error.message))
}

/// Checks a document against the agencies registered and the record types configured now;
/// a failure names the key (`shares[1].recipients`).
pub async fn validate(
    gateway: &Gateway,
    document: &AgreementDocument,
) -> Result<Agreement, AppError> {
    let agencies = gateway.database.run(store::known_agencies).await?;
    check(gateway, &agencies, document)
}

pub async fn list(gateway: &Gateway, call: &Call) -> Result<AgreementList, AppError> {
    let (histories, agencies) = load_visible_all(gateway, call).await?;
    let (known, today) = (known(gateway, &agencies), today());
    Ok(AgreementList {
        agreements: histories.iter().map(|h| view(h, &known, today)).collect(),
    })
}

/// The operator's listing: status, dates, and whether the version in force is overdue for
/// review.
pub async fn summaries(gateway: &Gateway, call: &Call) -> Result<Vec<AgreementSummary>, AppError> {
    let (histories, agencies) = load_visible_all(gateway, call).await?;
    let (known, today) = (known(gateway, &agencies), today());
    Ok(histories
        .iter()
        .map(|history| {
            let standing = store::standing(history, &known, today);
            let latest = history.latest().map(|v| &v.document);
            AgreementSummary {
                id: history.id.clone(),
                status: standing.status,
                in_force_version: standing.in_force.as_ref().map(|a| a.version),
                valid_until: latest.map(|d| d.valid_until.clone()),
                review_by: latest.map(|d| d.review_by.clone()),
                review_overdue: standing.in_force.is_some_and(|a| a.review_overdue(today)),
            }
        })
        .collect())
}

pub async fn get(gateway: &Gateway, call: &Call, id: &str) -> Result<AgreementView, AppError> {
    let (history, agencies) = load_visible(gateway, call, id).await?;
    Ok(view(&history, &known(gateway, &agencies), today()))
}

/// Stores `document` as a new version, a draft until every party approves it.
pub async fn draft(
    gateway: &Gateway,
    call: &Call,
    document: AgreementDocument,
) -> Result<AgreementChanged, AppError> {
    call.require_any(GovernanceAction::Draft(&document).roles())?;
    let agreement = document.reference();
    call.audit
        .annotate(|entry| entry.agreements = vec![agreement.to_string()]);
    validate(gateway, &document).await?;
    let id = document.id.clone();
    let history = gateway
        .database
        .run(move |conn| store::load(conn, &id))
        .await?
        .unwrap_or_else(|| AgreementHistory::new(&document.id));
    let who = requester(call);
    govern(&history, &who, GovernanceAction::Draft(&document))?;
    call.record_before_change().await?;
    let by = call.by();
    gateway
        .database
        .run(move |conn| store::insert_version(conn, &document, &who, &by))
        .await??;
    Ok(AgreementChanged {
        id: agreement.id,
        version: Some(agreement.version),
        status: AgreementStatus::Draft,
    })
}

/// The caller's agency approves one version; it comes into force once every party it
/// needs has approved it.
pub async fn approve(
    gateway: &Gateway,
    call: &Call,
    agreement: AgreementRef,
) -> Result<AgreementChanged, AppError> {
    call.audit
        .annotate(|entry| entry.agreements = vec![agreement.to_string()]);
    let action = GovernanceAction::Approve(agreement.version);
    call.require_any(action.roles())?;
    let (history, agencies) = load_visible(gateway, call, &agreement.id).await?;
    let record = history
        .version(agreement.version)
        .ok_or_else(|| AppError::not_found("agreement version"))?;
    // A version that no longer validates (an agency or record type removed) could never
    // be in force: refuse to approve it.
    check(gateway, &agencies, &record.document)?;
    let who = requester(call);
    govern(&history, &who, action)?;
    call.record_before_change().await?;
    let (by, target) = (call.by(), agreement.clone());
    let complete = gateway
        .database
        .run(move |conn| store::approve(conn, &target, &who, &by))
        .await??;
    Ok(AgreementChanged {
        id: agreement.id,
        version: Some(agreement.version),
        status: if complete {
            AgreementStatus::Active
        } else {
            AgreementStatus::Draft
        },
    })
}

pub async fn suspend(
    gateway: &Gateway,
    call: &Call,
    id: &str,
    reason: &str,
) -> Result<AgreementChanged, AppError> {
    change(gateway, call, id, reason, StatusChange::Suspend).await
}

pub async fn terminate(
    gateway: &Gateway,
    call: &Call,
    id: &str,
    reason: &str,
) -> Result<AgreementChanged, AppError> {
    change(gateway, call, id, reason, StatusChange::Terminate).await
}

async fn change(
    gateway: &Gateway,
    call: &Call,
    id: &str,
    reason: &str,
    change: StatusChange,
) -> Result<AgreementChanged, AppError> {
    call.audit
        .annotate(|entry| entry.agreements = vec![id.to_owned()]);
    let action = GovernanceAction::Change(change);
    call.require_any(action.roles())?;
    let reason = parse_text("reason", reason, 2000)?;
    let (history, _) = load_visible(gateway, call, id).await?;
    if let Some(current) = history.current_reference() {
        call.audit
            .annotate(|entry| entry.agreements = vec![current.to_string()]);
    }
    let who = requester(call);
    govern(&history, &who, action)?;
    call.record_before_change().await?;
    let (by, target) = (call.by(), id.to_owned());
    gateway
        .database
        .run(move |conn| store::change_status(conn, &target, change, &reason, &who, &by))
        .await??;
    Ok(AgreementChanged {
        id: id.to_owned(),
        version: None,
        status: change.status(),
    })
}

/// An admin makes `document`'s version the one in force without approvals (setting up,
/// exceptional cases). Importing the same document again changes nothing; different
/// content under an existing version is refused.
pub async fn import(
    gateway: &Gateway,
    call: &Call,
    document: AgreementDocument,
) -> Result<Imported, AppError> {
    let agreement = document.reference();
    call.audit
        .annotate(|entry| entry.agreements = vec![agreement.to_string()]);
    call.require_any(&[Role::Admin])?;
    validate(gateway, &document).await?;
    call.record_before_change().await?;
    let by = call.by();
    let changed = gateway
        .database
        .run(move |conn| store::import(conn, &document, &by))
        .await?;
    Ok(Imported { agreement, changed })
}
