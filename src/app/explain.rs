//! Decision replay for auditors: why was this field released to that agency? Takes one
//! audit entry of a records read and runs the pure decision core (`policy::explain`) again
//! on exactly what the entry names: the agreement versions applied, the consent version,
//! purpose, break-glass, the records considered and the record type definitions (by
//! digest). Shows, per record and field, released or withheld and the rule
//! that decided it, and reports a mismatch when the replay would release or withhold
//! anything other than what the entry says was.
//!
//! Everything a replay reads is append-only: agreement versions, consent versions, records
//! (holder, type, payload) and record type catalogues. The payloads are opened to learn
//! which fields each record has; no value leaves this module, only field names and
//! categories, as in the entry itself.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use utoipa::ToSchema;

use super::{
    records::{release, Release},
    AppError, Call, Gateway,
};
use crate::{
    audit::{store, Action, AuditEntry, Decision, LeafIndex},
    crypto::Keyring,
    db::{agreements, record_types, records, subjects, DbConnection, DbError, Missing},
    domain::{
        agreement::{Agreement, AgreementRef, Known},
        consent::{as_applied, ConsentLevel, ConsentVersion, EffectiveConsent},
        purpose::Purpose,
        record::RecordId,
        record_type::RecordTypes,
        subject::SubjectId,
        AgencyId, Role, Timestamp,
    },
    policy::{self, AccessRequest, Explanation, Ground},
};

/// What a replay found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplayOutcome {
    /// The replay releases and withholds exactly what the entry says.
    Match,
    /// The replay differs from the entry: see `differences`.
    Mismatch,
    /// The entry is not a granted read of records: nothing was released to replay.
    NotARelease,
    /// Something the replay needs is not stored (see `differences`): the decision cannot
    /// be checked, which an auditor should treat like a mismatch.
    NotReplayable,
}

/// The replay of one entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replay {
    #[schema(value_type = u64)]
    pub leaf_index: LeafIndex,
    pub outcome: ReplayOutcome,
    /// The entry's action, decision and reason, as recorded.
    pub action: String,
    pub decision: Decision,
    pub reason: String,
    /// What the decision was replayed with; null when nothing was replayed.
    pub inputs: Option<ReplayInputs>,
    /// Every record the entry names, in its order.
    pub records: Vec<RecordReplay>,
    /// Each difference between the replay and the entry, in words; empty on a match.
    pub differences: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayInputs {
    /// The agency the records were read by.
    pub recipient: String,
    pub purpose: Purpose,
    pub break_glass: bool,
    pub consent: ReplayedConsent,
    /// `id@version` of each agreement version the entry names.
    pub agreements: Vec<String>,
    pub record_types: ReplayedCatalogue,
}

/// The consent version the entry names, as it stood on the day of the read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayedConsent {
    /// Null when no consent had ever been recorded.
    pub version: Option<i32>,
    pub level: ConsentLevel,
    pub excluded_categories: Vec<String>,
    /// The agencies the consent covers; null for every party.
    pub agencies: Option<Vec<String>>,
}

/// The record type definitions the entry names (`record_types_sha256`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayedCatalogue {
    pub version: i32,
    /// Hex SHA-256 of the stored definitions.
    pub sha256: String,
    /// RFC 3339: when they were first stored (by a gateway or an operator command starting
    /// with them).
    pub registered_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordReplay {
    pub record_id: String,
    /// Null when the record is not stored.
    #[serde(rename = "type")]
    pub record_type: Option<String>,
    pub holder: Option<String>,
    /// `whole` (the holder's own record), `shared` (decided field by field), `omitted`
    /// (no share covers its type: left out of the response), `type_not_configured` (never
    /// disclosed), `not_stored`.
    pub decision: &'static str,
    /// Each field the record has, with the rule that decided it.
    pub fields: Vec<FieldReplay>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FieldReplay {
    pub field: String,
    pub category: String,
    pub released: bool,
    /// `holder_own_record`, `agreement_share` (released at or above the share's consent
    /// level), `agreement_share_without_consent` (the share's level is `none`),
    /// `emergency_category` (break-glass), `not_shared` (no share lists the category, or
    /// none covers the type), `consent_level`, `excluded_category`, `agency_scope` (the
    /// consent does not cover the recipient), `not_declared` (the type does not declare
    /// the field).
    pub rule: &'static str,
    /// `id@version` of the agreement whose share released the field.
    pub agreement: Option<String>,
    /// The consent level the share needs: what released the field, or the lowest any
    /// share would have needed when it was withheld for consent.
    pub required_level: Option<ConsentLevel>,
}

/// Replays the decision recorded at `index`. The replay shows the subject's consent terms,
/// so the call's own entry names the subject and the consent version, as a consent history
/// read does.
pub async fn explain(gateway: &Gateway, call: &Call, index: LeafIndex) -> Result<Replay, AppError> {
    call.require_any(&[Role::IgAuditor])?;
    let keys = gateway.keys.clone();
    let (replay, subject) = gateway
        .database
        .run(move |conn| {
            let stored =
                store::entry_at(conn, index)?.ok_or(DbError::NotFound(Missing::AuditEntry))?;
            let entry = store::decode(&stored)?;
            let subject = entry.subject_id.clone();
            Ok((replay(conn, &keys, index, entry)?, subject))
        })
        .await?;
    // Only a replay that was made shows the person's consent terms.
    if let Some(inputs) = &replay.inputs {
        call.audit.annotate(|entry| {
            entry.subject_id = subject;
            entry.consent_version = inputs.consent.version.map(i64::from);
        });
    }
    Ok(replay)
}

/// The replay of `entry`, stored at `index`, from what is stored.
pub fn replay(
    conn: &mut DbConnection,
    keys: &Keyring,
    index: LeafIndex,
    entry: AuditEntry,
) -> Result<Replay, DbError> {
    let mut replay = Replay {
        leaf_index: index,
        outcome: ReplayOutcome::NotARelease,
        action: entry.action.clone(),
        decision: entry.decision,
        reason: entry.reason.clone(),
        inputs: None,
        records: Vec::new(),
        differences: Vec::new(),
    };
    if entry.action != Action::RecordsRead.name() || entry.decision != Decision::Granted {
        return Ok(replay);
    }
    let stored = match Stored::load(conn, keys, &entry)? {
        Ok(stored) => stored,
        Err(missing) => {
            replay.outcome = ReplayOutcome::NotReplayable;
            replay.differences = missing;
            return Ok(replay);
        }
    };
    let access = AccessRequest {
        recipient: &stored.recipient,
        roles: &stored.roles,
        purpose: stored.purpose,
        break_glass: entry.break_glass,
        consent: &stored.consent,
        agreements: &stored.agreements,
    };
    let replayed = release(&access, &stored.catalogue.record_types, &stored.records);
    replay.differences = differences(&entry, &stored, &replayed);
    // Who asked and why are replayed too: a granted read the rules would have refused
    // outright is a mismatch, whatever it released.
    if let Err(refusal) = policy::admit_caller(&stored.roles, stored.purpose, entry.break_glass) {
        let refused = super::records::refused(refusal, stored.purpose);
        replay.differences.insert(
            0,
            format!("the replay refuses the read outright: {refused}"),
        );
    }
    replay.records = entry
        .record_ids
        .iter()
        .map(|id| record_replay(&access, &stored, id))
        .collect();
    replay.outcome = if replay.differences.is_empty() {
        ReplayOutcome::Match
    } else {
        ReplayOutcome::Mismatch
    };
    replay.inputs = Some(ReplayInputs {
        recipient: stored.recipient.to_string(),
        purpose: stored.purpose,
        break_glass: entry.break_glass,
        consent: ReplayedConsent {
            version: stored.consent.version,
            level: stored.consent.level,
            excluded_categories: stored.consent.excluded_categories.iter().cloned().collect(),
            agencies: stored
                .consent
                .agencies
                .as_ref()
                .map(|agencies| agencies.iter().map(ToString::to_string).collect()),
        },
        agreements: entry.agreements.clone(),
        record_types: ReplayedCatalogue {
            version: stored.catalogue.version,
            sha256: stored.catalogue.sha256.clone(),
            registered_at: stored.catalogue.registered_at.to_rfc3339(),
        },
    });
    Ok(replay)
}

/// Everything the entry names, as stored.
struct Stored {
    recipient: AgencyId,
    roles: BTreeSet<Role>,
    purpose: Purpose,
    consent: EffectiveConsent,
    agreements: Vec<Agreement>,
    catalogue: record_types::Catalogue,
    /// The records the entry names, in its order.
    records: Vec<records::Record>,
    /// The subject the entry names.
    subject: SubjectId,
}

impl Stored {
    /// Loads what the entry names; `Err` lists, in words, what is not stored or cannot be
    /// read (a replay with a part missing would prove nothing).
    fn load(
        conn: &mut DbConnection,
        keys: &Keyring,
        entry: &AuditEntry,
    ) -> Result<Result<Self, Vec<String>>, DbError> {
        let mut missing = Vec::new();
        let time = Timestamp::parse_rfc3339(&entry.time);
        let recipient = entry.agency_id.as_deref().map(AgencyId::parse);
        let purpose = entry.purpose.as_deref().map(str::parse::<Purpose>);
        let subject = entry.subject_id.as_deref().map(SubjectId::parse);
        let (Some(time), Some(Ok(recipient)), Some(Ok(purpose)), Some(Ok(subject))) =
            (time, recipient, purpose, subject)
        else {
            return Ok(Err(vec![
                "the entry does not name a time, an agency, a purpose and a subject".to_owned(),
            ]));
        };
        let roles = entry
            .roles
            .iter()
            .filter_map(|role| role.parse().ok())
            .collect();
        let catalogue = match entry.record_types_sha256.as_deref() {
            None => {
                missing.push(
                    "the entry does not name the record type definitions it was decided by"
                        .to_owned(),
                );
                None
            }
            Some(sha256) => match record_types::by_sha256(conn, sha256) {
                Ok(Some(catalogue)) => Some(catalogue),
                Ok(None) => {
                    missing.push(format!("record type definitions {sha256} are not stored"));
                    None
                }
                Err(DbError::Corrupt(problem)) => {
                    missing.push(problem.to_string());
                    None
                }
                Err(other) => return Err(other),
            },
        };
        let history: Vec<ConsentVersion> = subjects::consent_versions(conn, &subject)?;
        let day = time.to_datetime().map(|t| t.date());
        let consent = match (entry.consent_version.map(i32::try_from).transpose(), day) {
            (Ok(version), Some(day)) => as_applied(&history, version, day),
            _ => None,
        };
        if consent.is_none() {
            missing.push(match entry.consent_version {
                Some(version) => format!("consent version {version} is not stored"),
                None => "the entry's time is not a date".to_owned(),
            });
        }
        let Some(catalogue) = catalogue else {
            return Ok(Err(missing));
        };
        let agreements = named_agreements(
            conn,
            &catalogue.record_types,
            &entry.agreements,
            &mut missing,
        )?;
        let ids: Vec<RecordId> = entry
            .record_ids
            .iter()
            .filter_map(|id| RecordId::parse(id).ok())
            .collect();
        let mut by_id: BTreeMap<String, Result<records::Record, String>> =
            records::by_ids(conn, keys, &ids)?
                .into_iter()
                .map(|opened| {
                    let id = match &opened {
                        Ok(record) => record.id.to_string(),
                        Err(id) => id.clone(),
                    };
                    (id, opened)
                })
                .collect();
        let records: Vec<records::Record> = entry
            .record_ids
            .iter()
            .filter_map(|id| match by_id.remove(id) {
                Some(Ok(record)) => Some(record),
                Some(Err(_)) => {
                    missing.push(format!(
                        "record {id} does not open where it is stored: it was moved or \
                         altered, or its data key is not in keys.dir"
                    ));
                    None
                }
                None => {
                    missing.push(format!("record {id} is not stored"));
                    None
                }
            })
            .collect();
        match consent {
            Some(consent) if missing.is_empty() => Ok(Ok(Self {
                recipient,
                roles,
                purpose,
                consent,
                agreements,
                catalogue,
                records,
                subject,
            })),
            _ => Ok(Err(missing)),
        }
    }
}

/// The agreement versions the entry names (`id@version`), validated against the record
/// types of the time; what is not stored or no longer validates is added to `missing`.
fn named_agreements(
    conn: &mut DbConnection,
    record_types: &RecordTypes,
    named: &[String],
    missing: &mut Vec<String>,
) -> Result<Vec<Agreement>, DbError> {
    let agencies = agreements::known_agencies(conn)?;
    let known = Known {
        agencies: &agencies,
        record_types,
    };
    let mut found = Vec::new();
    for reference in named {
        let parsed = reference
            .rsplit_once('@')
            .and_then(|(id, version)| Some((id, version.parse::<i32>().ok()?)));
        let Some((id, version)) = parsed else {
            missing.push(format!("agreement {reference} is not a version reference"));
            continue;
        };
        let history = agreements::load(conn, id)?;
        let Some(stored) = history.as_ref().and_then(|h| h.version(version)) else {
            missing.push(format!("agreement {reference} is not stored"));
            continue;
        };
        match stored.document.validate(&known) {
            Ok(agreement) => found.push(agreement),
            Err(error) => missing.push(format!(
                "agreement {reference} does not validate against the record types of the time: {error}"
            )),
        }
    }
    Ok(found)
}

/// How the replay differs from the entry, in words.
fn differences(entry: &AuditEntry, stored: &Stored, replayed: &Release) -> Vec<String> {
    let mut found = Vec::new();
    let mut compare = |what: &str, recorded: &[String], replayed: &[String]| {
        let count = |labels: &[String]| {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for label in labels {
                *counts.entry(label.clone()).or_default() += 1;
            }
            counts
        };
        let (recorded, replayed) = (count(recorded), count(replayed));
        for (label, times) in &replayed {
            let said = recorded.get(label).copied().unwrap_or_default();
            if said != *times {
                found.push(format!(
                    "the replay {what} {label} {times} time(s); the entry says {said}"
                ));
            }
        }
        for (label, said) in &recorded {
            if !replayed.contains_key(label) {
                found.push(format!(
                    "the entry says {what} {label} {said} time(s); the replay never does"
                ));
            }
        }
    };
    compare("released", &entry.released, &replayed.released);
    compare("withheld", &entry.withheld, &replayed.withheld);
    compare("applied agreement", &entry.agreements, &replayed.agreements);
    for record in &stored.records {
        if record.subject != stored.subject {
            found.push(format!(
                "record {} is not a record of the entry's subject",
                record.id
            ));
        }
    }
    found
}

/// One record's replay, field by field.
fn record_replay(access: &AccessRequest<'_>, stored: &Stored, id: &str) -> RecordReplay {
    let Some(record) = stored.records.iter().find(|r| r.id.to_string() == id) else {
        return RecordReplay {
            record_id: id.to_owned(),
            record_type: None,
            holder: None,
            decision: "not_stored",
            fields: Vec::new(),
        };
    };
    let mut replay = RecordReplay {
        record_id: id.to_owned(),
        record_type: Some(record.record_type.clone()),
        holder: Some(record.holder.to_string()),
        decision: "type_not_configured",
        fields: Vec::new(),
    };
    let Some(record_type) = stored.catalogue.record_types.get(&record.record_type) else {
        return replay;
    };
    let explanation = policy::explain(access, &record.holder, record_type);
    let present = record
        .data
        .as_object()
        .map(|data| data.keys())
        .into_iter()
        .flatten();
    replay.decision = match &explanation {
        Explanation::Whole => "whole",
        Explanation::Omitted => "omitted",
        Explanation::Fields(_) => "shared",
    };
    replay.fields = present
        .map(|field| {
            let category = record_type
                .fields
                .get(field)
                .map_or("unknown", |spec| spec.category.as_str());
            let decided = match &explanation {
                Explanation::Whole => Decided::Own,
                Explanation::Omitted => Decided::TypeNotShared,
                Explanation::Fields(grounds) => grounds
                    .iter()
                    .find(|g| g.field == field)
                    .map_or(Decided::NotDeclared, |g| Decided::By(g.ground)),
            };
            decided.field(field, category)
        })
        .collect();
    replay
}

/// How one present field was decided.
enum Decided<'a> {
    Own,
    TypeNotShared,
    NotDeclared,
    By(Ground<'a>),
}

impl Decided<'_> {
    fn field(&self, field: &str, category: &str) -> FieldReplay {
        let (released, rule, agreement, required_level) = match self {
            Self::Own => (true, "holder_own_record", None, None),
            Self::TypeNotShared => (false, "not_shared", None, None),
            Self::NotDeclared => (false, "not_declared", None, None),
            Self::By(ground) => {
                let required = match ground {
                    Ground::Consent { required, .. } | Ground::ConsentLevel { required } => {
                        Some(*required)
                    }
                    Ground::NoConsentNeeded { .. } => Some(ConsentLevel::None),
                    _ => None,
                };
                let agreement = ground
                    .outcome()
                    .ok()
                    .map(|a| AgreementRef::new(a.id.clone(), a.version).to_string());
                (ground.outcome().is_ok(), ground.rule(), agreement, required)
            }
        };
        FieldReplay {
            field: field.to_owned(),
            category: category.to_owned(),
            released,
            rule,
            agreement,
            required_level,
        }
    }
}
