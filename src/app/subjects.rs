//! Subjects: enrolment and discharge (coordinator), lookup by NHS number or PNC id
//! (coordinator, practitioner). Identifiers and names arrive here, are validated into
//! domain types and go to storage sealed; answers and audit entries carry only the
//! pseudonymous subject id.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};

use super::{
    input::{parse_date, parse_text, today},
    AppError, Call, Gateway,
};
use crate::{
    db::{
        subjects::{self, Enrolled, Identifier, SubjectSummary},
        Conflict, DbError,
    },
    domain::{
        consent::{effective_at, expires_on, review_due, EffectiveConsent},
        subject::{check_discharge, Enrolment, NhsNumber, PersonName, PncId, SubjectId},
        Role,
    },
};

/// Longest discharge reason kept.
const MAX_REASON: usize = 2000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// Ten digits, spaces allowed, valid modulus-11 check digit.
    pub nhs_number: Option<String>,
    /// `YY/NNNNNNNX` with its check letter.
    pub pnc_id: Option<String>,
    pub given_name: String,
    pub family_name: String,
    /// `YYYY-MM-DD`, in the past.
    pub date_of_birth: String,
    /// `YYYY-MM-DD`, not before birth, not in the future.
    pub enrolled_on: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectRef {
    pub subject_id: String,
}

/// Exactly one of the two identifiers.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    pub nhs_number: Option<String>,
    pub pnc_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DischargeRequest {
    /// `YYYY-MM-DD`, not before enrolment, not in the future.
    pub discharged_on: String,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Discharged {
    pub subject_id: String,
    pub discharged_on: String,
}

/// Names the subject in the call's entry, first thing, so that even a refused call says
/// whom it was about.
pub(crate) fn name_subject(call: &Call, subject: &SubjectId) {
    let id = subject.to_string();
    call.audit.annotate(|entry| entry.subject_id = Some(id));
}

/// The subject, or "No such subject." for an id nobody is enrolled under.
pub(crate) async fn require_subject(
    gateway: &Gateway,
    subject: &SubjectId,
) -> Result<SubjectSummary, AppError> {
    let lookup = subject.clone();
    gateway
        .database
        .run(move |conn| subjects::summary(conn, &lookup))
        .await?
        .ok_or_else(|| AppError::not_found("subject"))
}

/// Enrols a person once: a second enrolment of either identifier is a conflict, refused
/// before the entry is written.
pub async fn enrol(
    gateway: &Gateway,
    call: &Call,
    request: EnrolRequest,
) -> Result<SubjectRef, AppError> {
    call.require_any(&[Role::Coordinator])?;
    let enrolment = Enrolment::new(
        request
            .nhs_number
            .as_deref()
            .map(NhsNumber::parse)
            .transpose()?,
        request.pnc_id.as_deref().map(PncId::parse).transpose()?,
        PersonName::parse("given_name", &request.given_name)?,
        PersonName::parse("family_name", &request.family_name)?,
        parse_date("date_of_birth", &request.date_of_birth)?,
        parse_date("enrolled_on", &request.enrolled_on)?,
        today(),
    )?;
    let (keys, check) = (gateway.keys.clone(), enrolment.clone());
    gateway
        .database
        .run(move |conn| subjects::check_not_enrolled(conn, &keys, &check))
        .await?;
    let id = SubjectId::generate();
    name_subject(call, &id);
    call.record_before_change().await?;
    let (keys, stored, by) = (gateway.keys.clone(), id.clone(), call.by());
    gateway
        .database
        .run(move |conn| subjects::enrol(conn, &keys, &stored, &enrolment, &by))
        .await?;
    Ok(SubjectRef {
        subject_id: id.to_string(),
    })
}

/// The identifier a lookup is by, owned so that it can move to the database thread.
enum LookupKey {
    Nhs(NhsNumber),
    Pnc(PncId),
}

impl LookupKey {
    fn parse(query: &LookupQuery) -> Result<Self, AppError> {
        match (query.nhs_number.as_deref(), query.pnc_id.as_deref()) {
            (Some(nhs), None) => Ok(Self::Nhs(NhsNumber::parse(nhs)?)),
            (None, Some(pnc)) => Ok(Self::Pnc(PncId::parse(pnc)?)),
            _ => Err(AppError::invalid(
                "nhs_number",
                "give exactly one of nhs_number or pnc_id",
            )),
        }
    }

    fn identifier(&self) -> Identifier<'_> {
        match self {
            Self::Nhs(nhs) => Identifier::Nhs(nhs),
            Self::Pnc(pnc) => Identifier::Pnc(pnc),
        }
    }
}

/// The subject enrolled under an NHS number or a PNC id. The entry names the subject only
/// once one is found.
pub async fn lookup(
    gateway: &Gateway,
    call: &Call,
    query: LookupQuery,
) -> Result<SubjectRef, AppError> {
    call.require_any(&[Role::Coordinator, Role::Practitioner])?;
    let key = LookupKey::parse(&query)?;
    let keys = gateway.keys.clone();
    let id = gateway
        .database
        .run(move |conn| subjects::find_by_identifier(conn, &keys, key.identifier()))
        .await?
        .ok_or_else(|| AppError::NotFound("No subject is enrolled with that identifier.".into()))?;
    name_subject(call, &id);
    Ok(SubjectRef {
        subject_id: id.to_string(),
    })
}

/// Discharges a subject once, on a day between enrolment and today. Everything is checked
/// before the entry is written, and the entry is durable before the discharge is.
pub async fn discharge(
    gateway: &Gateway,
    call: &Call,
    subject: &SubjectId,
    request: DischargeRequest,
) -> Result<Discharged, AppError> {
    name_subject(call, subject);
    call.require_any(&[Role::Coordinator])?;
    let discharged_on = parse_date("discharged_on", &request.discharged_on)?;
    let reason = parse_text("reason", &request.reason, MAX_REASON)?;
    let summary = require_subject(gateway, subject).await?;
    check_discharge(summary.enrolled_on, discharged_on, today())?;
    if summary.discharged_on.is_some() {
        return Err(DbError::Conflict(Conflict::AlreadyDischarged).into());
    }
    call.record_before_change().await?;
    let (keys, stored, by) = (gateway.keys.clone(), subject.clone(), call.by());
    gateway
        .database
        .run(move |conn| subjects::discharge(conn, &keys, &stored, discharged_on, &reason, &by))
        .await?;
    Ok(Discharged {
        subject_id: subject.to_string(),
        discharged_on: discharged_on.to_string(),
    })
}

/// One line of the coordinators' caseload.
#[derive(Debug, Clone)]
pub struct CaseloadEntry {
    pub subject: Enrolled,
    pub consent: EffectiveConsent,
    /// When the consent in force falls due for review; `None` when none is in force.
    pub review_due: Option<Date>,
    /// The expiry of the consent in force.
    pub expires_on: Option<Date>,
}

/// Everyone enrolled and not discharged, those with no consent in force first (it needs
/// seeking), then by the soonest review. Names and identifiers are opened for the
/// coordinators who enrolled them; the entry names no subject (it lists many).
pub async fn caseload(gateway: &Gateway, call: &Call) -> Result<Vec<CaseloadEntry>, AppError> {
    call.require_any(&[Role::Coordinator])?;
    let keys = gateway.keys.clone();
    let enrolled = gateway
        .database
        .run(move |conn| subjects::caseload(conn, &keys))
        .await?;
    let now = OffsetDateTime::now_utc();
    let mut entries: Vec<CaseloadEntry> = enrolled
        .into_iter()
        .map(|subject| {
            let consent = effective_at(&subject.consents, now);
            CaseloadEntry {
                review_due: review_due(&subject.consents, now),
                expires_on: expires_on(&subject.consents, now),
                consent,
                subject,
            }
        })
        .collect();
    entries.sort_by_key(|entry| (entry.review_due.is_some(), entry.review_due));
    Ok(entries)
}
