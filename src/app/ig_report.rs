//! The information governance (IG) audit report, for an IG lead or auditor: over a period,
//! every disclosure and the lawful basis of the agreement it was made under, the agreements
//! past their review date, each break-glass access with its review against the 72-hour
//! rule, the refused requests by agency and rule, the people whose consent is about to run
//! out, and the latest signed checkpoint with its witnesses. `concordat ig report` asks
//! through [`report`].
//!
//! The database hands over rows and the pure functions below compute every figure from
//! them, so each rule is tested without a database; the trail is read a page at a time and
//! tallied as it goes. Nothing identifying is ever read into the report: no name, NHS
//! number, record content, break-glass justification or review note. Subject ids, which
//! are pseudonymous, appear only where someone must act on them: a consent about to expire.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Serialize, Serializer};
use time::{Date, OffsetDateTime};

use super::{
    audit::{is_alert, is_overdue, ReviewOutcome, REVIEW_WITHIN_HOURS},
    input, AppError, Call, Gateway,
};
use crate::{
    audit::{
        checkpoint::VerifierKey,
        export::PAGE,
        store::{self, Filter, StoredCheckpoint, StoredEntry},
        Action, Decision, LeafIndex,
    },
    db::{
        agreements,
        alerts::{self, Verdict},
        subjects, DbError,
    },
    domain::{
        agreement::{Agreement, AgreementHistory, Known},
        consent::{expires_on, ConsentVersion},
        purpose::Purpose,
        Role, Timestamp,
    },
};

/// Consents that run out within this many days of the report's day are listed.
pub const CONSENT_EXPIRY_DAYS: i64 = 30;
/// What a note signature line starts with (C2SP signed note): an em dash and a space.
const SIGNATURE_LINE: &str = "\u{2014} ";
const MICROS_PER_HOUR: f64 = 3_600_000_000.0;

/// The period asked for, as the command line gives it: two days, `YYYY-MM-DD`, inclusive.
#[derive(Debug, Clone)]
pub struct IgQuery {
    pub from: String,
    pub to: String,
}

/// The days covered, and the instants that bound them: from the first day's midnight (UTC)
/// up to, not including, the midnight after the last day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    #[serde(serialize_with = "day")]
    pub from: Date,
    #[serde(serialize_with = "day")]
    pub to: Date,
    #[serde(serialize_with = "instant")]
    pub starts_at: Timestamp,
    #[serde(serialize_with = "instant")]
    pub ends_before: Timestamp,
}

impl Period {
    pub fn parse(query: &IgQuery) -> Result<Self, AppError> {
        let from = input::parse_date("from", &query.from)?;
        let to = input::parse_date("to", &query.to)?;
        if to < from {
            return Err(AppError::invalid("to", "must not be before the from date"));
        }
        let after = to
            .next_day()
            .ok_or_else(|| AppError::invalid("to", "is beyond the last date there is"))?;
        Ok(Self {
            from,
            to,
            starts_at: Timestamp::from(from.midnight().assume_utc()),
            ends_before: Timestamp::from(after.midnight().assume_utc()),
        })
    }
}

fn day<S: Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(date)
}

fn instant<S: Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(at)
}

fn optional_instant<S: Serializer>(
    at: &Option<Timestamp>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serializer.collect_str(at),
        None => serializer.serialize_none(),
    }
}

// ---- The report ----

/// The whole report. Its JSON form is documented field by field in `docs/operations.md`
/// ("IG audit report"); the names are stable.
#[derive(Debug, Serialize)]
pub struct IgReport {
    pub period: Period,
    #[serde(serialize_with = "instant")]
    pub generated_at: Timestamp,
    /// The day agreement reviews and consent expiry are judged on: the day the report is
    /// made, since they are lists of things to do now.
    #[serde(serialize_with = "day")]
    pub as_of: Date,
    pub disclosures: Disclosures,
    pub overdue_reviews: Vec<OverdueReview>,
    pub break_glass: BreakGlass,
    pub refused: Refused,
    pub expiring_consents: ExpiringConsents,
    /// `None` before the first checkpoint is signed.
    pub checkpoint: Option<CheckpointSummary>,
}

/// Records disclosed (granted `records.read`), by the agreement version that allowed them.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Disclosures {
    /// Reads in the period that returned at least one record; one under two agreements
    /// counts once here and under each.
    pub total: u64,
    /// Distinct people they were about.
    pub subjects: u64,
    pub by_agreement: Vec<AgreementDisclosures>,
    /// Reads to which no agreement applied: an agency reading only records it holds itself.
    pub own_records: DisclosureCount,
}

#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct DisclosureCount {
    pub disclosures: u64,
    pub subjects: u64,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct AgreementDisclosures {
    /// `id@version`, as the entries name it.
    pub agreement: String,
    pub agreement_id: String,
    /// `None` only for a name the gateway does not write.
    pub version: Option<i32>,
    /// `None` when no such version is stored.
    pub title: Option<String>,
    pub lawful_basis: Vec<String>,
    pub disclosures: u64,
    pub subjects: u64,
}

/// An agreement whose version in force is past its review date.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct OverdueReview {
    pub agreement_id: String,
    pub version: i32,
    pub title: String,
    #[serde(serialize_with = "day")]
    pub review_by: Date,
    pub days_overdue: i64,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct BreakGlass {
    pub review_within_hours: i64,
    pub total: u64,
    pub justified: u64,
    pub unjustified: u64,
    pub unreviewed: u64,
    /// Reviewed later than the rule allows, or unreviewed and already older than it.
    pub breaches: u64,
    /// Oldest first.
    pub accesses: Vec<BreakGlassAccess>,
}

/// One break-glass read or attempt: no subject and no justification, which may identify.
#[derive(Debug, PartialEq, Serialize)]
pub struct BreakGlassAccess {
    #[serde(serialize_with = "leaf")]
    pub leaf_index: LeafIndex,
    #[serde(serialize_with = "instant")]
    pub time: Timestamp,
    pub agency_id: Option<String>,
    /// `granted`, or `denied` for an attempt the gateway refused.
    pub decision: Decision,
    pub outcome: Review,
    #[serde(serialize_with = "optional_instant")]
    pub reviewed_at: Option<Timestamp>,
    /// Hours from the access to its review; for one unreviewed, the hours it has waited so
    /// far. One decimal.
    pub review_delay_hours: f64,
    pub breach: bool,
}

fn leaf<S: Serializer>(index: &LeafIndex, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(index.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Review {
    Justified,
    Unjustified,
    Unreviewed,
}

impl Review {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Justified => "justified",
            Self::Unjustified => "unjustified",
            Self::Unreviewed => "unreviewed",
        }
    }
}

/// Refused requests (decision `denied`), an entry that stands for several counting as many.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Refused {
    pub total: u64,
    /// Most refused first.
    pub by_agency: Vec<AgencyRefusals>,
    /// Most refused first.
    pub by_reason: Vec<ReasonCount>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct AgencyRefusals {
    /// `None` for a caller no agency was known for (no valid certificate, say).
    pub agency_id: Option<String>,
    pub refused: u64,
    pub by_reason: Vec<ReasonCount>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct ReasonCount {
    /// The rule that refused, as the entry's `reason` names it.
    pub reason: String,
    pub refused: u64,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct ExpiringConsents {
    pub within_days: i64,
    pub count: u64,
    /// Soonest first.
    pub subjects: Vec<ExpiringConsent>,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct ExpiringConsent {
    /// Pseudonymous (`subj_...`): the IG lead needs it to act; no name or NHS number.
    pub subject_id: String,
    /// The last day the consent covers.
    #[serde(serialize_with = "day")]
    pub expires_on: Date,
    pub days_left: i64,
}

/// The latest signed checkpoint, with the witness cosignatures kept for it.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointSummary {
    pub tree_size: u64,
    #[serde(serialize_with = "instant")]
    pub signed_at: Timestamp,
    /// The gateway's signature verifies under its key, over the size and root stored.
    pub signature_verified: bool,
    pub cosignatures: u64,
    /// Witness names, as their cosignature lines give them.
    pub witnesses: Vec<String>,
    /// The note exactly as `GET /v1/audit/checkpoint` serves it.
    pub signed_note: String,
}

// ---- Tallying the trail ----

/// What the period's entries say, counted a page at a time so that a long trail is never
/// held whole. Subject ids are kept only to count distinct people, never shown.
#[derive(Debug, Default)]
pub struct Tally {
    disclosures: u64,
    subjects: BTreeSet<String>,
    by_agreement: BTreeMap<String, People>,
    own_records: People,
    break_glass: Vec<Emergency>,
    refused: BTreeMap<Option<String>, BTreeMap<String, u64>>,
}

#[derive(Debug, Default)]
struct People {
    disclosures: u64,
    subjects: BTreeSet<String>,
}

impl People {
    fn add(&mut self, subject: Option<&String>) {
        self.disclosures += 1;
        self.subjects.extend(subject.cloned());
    }

    fn count(&self) -> DisclosureCount {
        DisclosureCount {
            disclosures: self.disclosures,
            subjects: len(&self.subjects),
        }
    }
}

fn len<T>(set: &BTreeSet<T>) -> u64 {
    u64::try_from(set.len()).unwrap_or(u64::MAX)
}

/// A break-glass access as the trail's columns give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emergency {
    pub leaf_index: LeafIndex,
    pub time: Timestamp,
    pub agency_id: Option<String>,
    pub decision: Decision,
}

impl Tally {
    /// Counts one entry of the period. Only the entries the report uses are decoded.
    pub fn count(&mut self, row: &StoredEntry) -> Result<(), DbError> {
        let (action, decision) = (row.action(), row.decision());
        // A break-glass access as `/v1/audit/alerts` lists them.
        if let (true, Some(decided)) = (is_alert(row), decision) {
            self.break_glass.push(Emergency {
                leaf_index: row.index(),
                time: row.time(),
                agency_id: row.agency_id.clone(),
                decision: decided,
            });
        }
        if action == Some(Action::RecordsRead) && decision == Some(Decision::Granted) {
            let entry = store::decode(row)?;
            // A read that returned no record disclosed nothing: none of its own released a
            // field and no share applied (every record was left out, or there were none). A
            // record shared with every field withheld still says that it exists.
            if entry.released.is_empty() && entry.agreements.is_empty() {
                return Ok(());
            }
            let subject = row.subject_id.as_ref();
            self.disclosures += 1;
            self.subjects.extend(subject.cloned());
            if entry.agreements.is_empty() {
                self.own_records.add(subject);
            }
            for agreement in entry.agreements {
                self.by_agreement.entry(agreement).or_default().add(subject);
            }
        }
        if decision == Some(Decision::Denied) {
            let entry = store::decode(row)?;
            // An entry that stands for several refused requests counts as that many.
            let requests = entry.refusals.unwrap_or(1);
            *self
                .refused
                .entry(row.agency_id.clone())
                .or_default()
                .entry(entry.reason)
                .or_default() += requests;
        }
        Ok(())
    }

    /// The leaf indexes of the break-glass accesses counted, to look up their reviews.
    pub fn break_glass_indexes(&self) -> Vec<LeafIndex> {
        self.break_glass.iter().map(|e| e.leaf_index).collect()
    }

    /// The disclosures, each agreement named with its title and lawful basis as stored.
    pub fn disclosures(&self, histories: &[AgreementHistory]) -> Disclosures {
        let by_id: BTreeMap<&str, &AgreementHistory> =
            histories.iter().map(|h| (h.id.as_str(), h)).collect();
        let mut by_agreement: Vec<AgreementDisclosures> = self
            .by_agreement
            .iter()
            .map(|(name, people)| {
                let (agreement_id, version) = match name.rsplit_once('@') {
                    Some((id, version)) => (id.to_owned(), version.parse::<i32>().ok()),
                    None => (name.clone(), None),
                };
                let document = version
                    .and_then(|v| by_id.get(agreement_id.as_str())?.version(v))
                    .map(|record| &record.document);
                AgreementDisclosures {
                    agreement: name.clone(),
                    agreement_id,
                    version,
                    title: document.map(|d| d.title.clone()),
                    lawful_basis: document.map(|d| d.lawful_basis.clone()).unwrap_or_default(),
                    disclosures: people.disclosures,
                    subjects: len(&people.subjects),
                }
            })
            .collect();
        // By agreement, then version as a number (`@10` after `@9`).
        by_agreement.sort_by(|a, b| {
            (&a.agreement_id, a.version, &a.agreement).cmp(&(
                &b.agreement_id,
                b.version,
                &b.agreement,
            ))
        });
        Disclosures {
            total: self.disclosures,
            subjects: len(&self.subjects),
            by_agreement,
            own_records: self.own_records.count(),
        }
    }

    /// Refused requests by agency and by rule, the most refused first.
    pub fn refused(&self) -> Refused {
        let mut by_reason: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_agency: Vec<AgencyRefusals> = self
            .refused
            .iter()
            .map(|(agency, reasons)| {
                for (reason, count) in reasons {
                    *by_reason.entry(reason).or_default() += count;
                }
                AgencyRefusals {
                    agency_id: agency.clone(),
                    refused: reasons.values().sum(),
                    by_reason: most_first(reasons.iter().map(|(r, n)| (r.as_str(), *n))),
                }
            })
            .collect();
        by_agency.sort_by(|a, b| {
            b.refused
                .cmp(&a.refused)
                .then(a.agency_id.cmp(&b.agency_id))
        });
        let by_reason = most_first(by_reason.into_iter());
        Refused {
            total: by_reason.iter().map(|r| r.refused).sum(),
            by_agency,
            by_reason,
        }
    }
}

fn most_first<'a>(counts: impl Iterator<Item = (&'a str, u64)>) -> Vec<ReasonCount> {
    let mut rows: Vec<ReasonCount> = counts
        .map(|(reason, refused)| ReasonCount {
            reason: reason.to_owned(),
            refused,
        })
        .collect();
    rows.sort_by(|a, b| b.refused.cmp(&a.refused).then(a.reason.cmp(&b.reason)));
    rows
}

// ---- The other sections ----

/// The agreements in force on `today` whose version is past its review date, the longest
/// overdue first.
pub fn overdue_reviews(in_force: &[Agreement], today: Date) -> Vec<OverdueReview> {
    let mut overdue: Vec<OverdueReview> = in_force
        .iter()
        .filter(|agreement| agreement.review_overdue(today))
        .map(|agreement| OverdueReview {
            agreement_id: agreement.id.clone(),
            version: agreement.version,
            title: agreement.title.clone(),
            review_by: agreement.review_by,
            days_overdue: (today - agreement.review_by).whole_days(),
        })
        .collect();
    overdue.sort_by(|a, b| (a.review_by, &a.agreement_id).cmp(&(b.review_by, &b.agreement_id)));
    overdue
}

fn hours(from: Timestamp, to: Timestamp) -> f64 {
    let micros = to.micros().saturating_sub(from.micros()) as f64;
    (micros / MICROS_PER_HOUR * 10.0).round() / 10.0
}

fn review(verdict: Option<&Verdict>) -> Result<Review, AppError> {
    let Some(verdict) = verdict else {
        return Ok(Review::Unreviewed);
    };
    match ReviewOutcome::parse(&verdict.outcome) {
        Ok(ReviewOutcome::Justified) => Ok(Review::Justified),
        Ok(ReviewOutcome::Unjustified) => Ok(Review::Unjustified),
        Err(_) => Err(AppError::internal(anyhow::anyhow!(
            "a stored alert review has an outcome the gateway does not write"
        ))),
    }
}

/// Each break-glass access with its review, judged against the 72-hour rule: a review given
/// more than 72 hours after the access breaches it, and so does an access still unreviewed
/// more than 72 hours after it, as of `now`.
pub fn break_glass(
    accesses: &[Emergency],
    verdicts: &BTreeMap<LeafIndex, Verdict>,
    now: Timestamp,
) -> Result<BreakGlass, AppError> {
    let accesses = accesses
        .iter()
        .map(|access| {
            let verdict = verdicts.get(&access.leaf_index);
            let reviewed_at = verdict.map(|v| v.reviewed_at);
            let by = reviewed_at.unwrap_or(now);
            Ok(BreakGlassAccess {
                leaf_index: access.leaf_index,
                time: access.time,
                agency_id: access.agency_id.clone(),
                decision: access.decision,
                outcome: review(verdict)?,
                reviewed_at,
                review_delay_hours: hours(access.time, by),
                breach: is_overdue(access.time, by),
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    let with = |outcome: Review| {
        let n = accesses.iter().filter(|a| a.outcome == outcome).count();
        u64::try_from(n).unwrap_or(u64::MAX)
    };
    let breaches = accesses.iter().filter(|a| a.breach).count();
    Ok(BreakGlass {
        review_within_hours: REVIEW_WITHIN_HOURS,
        total: u64::try_from(accesses.len()).unwrap_or(u64::MAX),
        justified: with(Review::Justified),
        unjustified: with(Review::Unjustified),
        unreviewed: with(Review::Unreviewed),
        breaches: u64::try_from(breaches).unwrap_or(u64::MAX),
        accesses,
    })
}

/// The people whose consent in force now runs out within [`CONSENT_EXPIRY_DAYS`] days of
/// today (today itself included: the expiry day is the last one covered). A consent already
/// lapsed, withdrawn or replaced by a newer one is not listed: there is nothing to renew.
pub fn expiring_consents(
    consents: &BTreeMap<String, Vec<ConsentVersion>>,
    now: OffsetDateTime,
) -> ExpiringConsents {
    let today = now.date();
    let mut subjects: Vec<ExpiringConsent> = consents
        .iter()
        .filter_map(|(subject, history)| {
            let expires_on = expires_on(history, now)?;
            let days_left = (expires_on - today).whole_days();
            (0..=CONSENT_EXPIRY_DAYS)
                .contains(&days_left)
                .then(|| ExpiringConsent {
                    subject_id: subject.clone(),
                    expires_on,
                    days_left,
                })
        })
        .collect();
    subjects.sort_by(|a, b| (a.expires_on, &a.subject_id).cmp(&(b.expires_on, &b.subject_id)));
    ExpiringConsents {
        within_days: CONSENT_EXPIRY_DAYS,
        count: u64::try_from(subjects.len()).unwrap_or(u64::MAX),
        subjects,
    }
}

/// The latest checkpoint as `GET /v1/audit/checkpoint` serves it (the gateway's note, then
/// each witness's cosignature line), with who cosigned it.
pub fn checkpoint_summary(
    stored: &StoredCheckpoint,
    cosignature_lines: &[String],
    key: &VerifierKey,
) -> CheckpointSummary {
    let witnesses: Vec<String> = cosignature_lines
        .iter()
        .filter_map(|line| {
            let name = line.strip_prefix(SIGNATURE_LINE)?.split(' ').next()?;
            Some(name.to_owned())
        })
        .collect();
    CheckpointSummary {
        tree_size: stored.size(),
        signed_at: Timestamp::from_micros(stored.created_at),
        signature_verified: stored.verifies_under(key),
        cosignatures: u64::try_from(witnesses.len()).unwrap_or(u64::MAX),
        witnesses,
        signed_note: stored.with_cosignatures(cosignature_lines),
    }
}

// ---- The use case ----

/// The report's entry names the sections it released; only the consent section names
/// anyone, by pseudonymous id.
fn released() -> Vec<String> {
    [
        "disclosures",
        "overdue_reviews",
        "break_glass",
        "refused",
        "expiring_consents.subject_id",
        "checkpoint",
    ]
    .iter()
    .map(|section| format!("report.ig.{section}"))
    .collect()
}

/// What the report is computed from, read in one go.
struct Sources {
    tally: Tally,
    histories: Vec<AgreementHistory>,
    in_force: Vec<Agreement>,
    verdicts: BTreeMap<LeafIndex, Verdict>,
    consents: BTreeMap<String, Vec<ConsentVersion>>,
    checkpoint: Option<(StoredCheckpoint, Vec<String>)>,
}

/// The IG audit report for the period asked (`ig_auditor` or `admin`).
pub async fn report(gateway: &Gateway, call: &Call, query: IgQuery) -> Result<IgReport, AppError> {
    call.audit
        .annotate(|entry| entry.purpose = Some(Purpose::Audit.to_string()));
    call.require_any(&[Role::IgAuditor, Role::Admin])?;
    let period = Period::parse(&query)?;
    // Named as released only once nothing can refuse the report.
    call.audit.annotate(|entry| entry.released = released());
    let now = OffsetDateTime::now_utc();
    let today = now.date();
    let record_types = gateway.record_types.clone();
    let sources = gateway
        .database
        .run(move |conn| {
            // The trail as it stood when the report began: entries appended meanwhile
            // (this report's own among them) wait for the next report.
            let filter = Filter {
                from: Some(period.starts_at),
                to: Some(period.ends_before),
                before_index: Some(LeafIndex(store::tree_size(conn)?)),
                ..Filter::default()
            };
            let mut tally = Tally::default();
            let mut after = None;
            loop {
                let page = store::entries(conn, &filter, after, PAGE)?;
                let Some(last) = page.last() else { break };
                after = Some(last.index());
                for row in &page {
                    tally.count(row)?;
                }
            }
            let verdicts = alerts::verdicts(conn, &tally.break_glass_indexes())?;
            let histories = agreements::load_all(conn)?;
            let agencies = agreements::known_agencies(conn)?;
            let known = Known {
                agencies: &agencies,
                record_types: &record_types,
            };
            let in_force = histories
                .iter()
                .filter_map(|history| agreements::standing(history, &known, today).in_force)
                .collect();
            let checkpoint = match store::latest_checkpoint(conn)? {
                Some(latest) => {
                    let lines = store::cosignatures(conn, latest.size())?;
                    Some((latest, lines))
                }
                None => None,
            };
            Ok(Sources {
                tally,
                histories,
                in_force,
                verdicts,
                consents: subjects::enrolled_consents(conn)?,
                checkpoint,
            })
        })
        .await?;
    Ok(IgReport {
        period,
        generated_at: Timestamp::from(now),
        as_of: today,
        disclosures: sources.tally.disclosures(&sources.histories),
        overdue_reviews: overdue_reviews(&sources.in_force, today),
        break_glass: break_glass(
            &sources.tally.break_glass,
            &sources.verdicts,
            Timestamp::from(now),
        )?,
        refused: sources.tally.refused(),
        expiring_consents: expiring_consents(&sources.consents, now),
        checkpoint: sources
            .checkpoint
            .map(|(stored, lines)| checkpoint_summary(&stored, &lines, gateway.signer.verifier())),
    })
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;
    use crate::{
        audit::{
            checkpoint::{Checkpoint, CheckpointSigner},
            AuditEntry, PendingEntry,
        },
        domain::{
            agreement::{AgreementDocument, VersionRecord},
            consent::{ConsentKind, ConsentLevel},
        },
    };

    fn t0() -> Timestamp {
        Timestamp::from_micros(1_790_000_000_000_000)
    }

    fn entry(index: u64, action: Action, decision: Decision, reason: &str) -> PendingEntry {
        let mut entry = PendingEntry::new(&format!("r{index}"), action, decision, reason);
        entry.time_micros = t0().micros();
        entry
    }

    /// The row the store would hand over for `entry` at leaf `index`.
    fn stored(index: u64, pending: PendingEntry) -> StoredEntry {
        let entry: AuditEntry = pending.at_index(LeafIndex(index));
        StoredEntry {
            leaf_index: i64::try_from(index).unwrap(),
            time_micros: t0().micros(),
            request_id: entry.request_id.clone(),
            principal_id: entry.principal_id.clone(),
            agency_id: entry.agency_id.clone(),
            subject_id: entry.subject_id.clone(),
            action: entry.action.clone(),
            decision: entry.decision.as_str().to_owned(),
            purpose: entry.purpose.clone(),
            break_glass: entry.break_glass,
            leaf_data: entry.leaf_data().unwrap(),
        }
    }

    fn read(index: u64, subject: &str, agreements: &[&str]) -> StoredEntry {
        let mut pending = entry(index, Action::RecordsRead, Decision::Granted, "ok");
        pending.agency_id = Some("hampshire-police".into());
        pending.subject_id = Some(subject.into());
        pending.agreements = agreements.iter().map(|a| (*a).to_owned()).collect();
        pending.released = vec!["health.crisis_plan.triggers:crisis_plan".to_owned()];
        stored(index, pending)
    }

    fn denied(
        index: u64,
        agency: Option<&str>,
        reason: &str,
        refusals: Option<u64>,
    ) -> StoredEntry {
        let mut pending = entry(index, Action::RecordsRead, Decision::Denied, reason);
        pending.agency_id = agency.map(str::to_owned);
        pending.refusals = refusals;
        stored(index, pending)
    }

    fn tally(rows: &[StoredEntry]) -> Tally {
        let mut tally = Tally::default();
        for row in rows {
            tally.count(row).unwrap();
        }
        tally
    }

    fn example_history() -> AgreementHistory {
        let document: AgreementDocument = toml::from_str(include_str!(
            "../../config/agreements/isa-iow-recovery.toml"
        ))
        .unwrap();
        AgreementHistory {
            id: document.id.clone(),
            versions: vec![VersionRecord {
                version: document.version,
                document,
                created_by: "test".into(),
                created_at: t0(),
                approvals: Vec::new(),
            }],
            events: Vec::new(),
        }
    }

    #[test]
    fn disclosures_are_grouped_by_the_agreement_each_names_with_its_lawful_basis() {
        let rows = [
            read(0, "subj_a", &["isa-iow-recovery@1"]),
            read(1, "subj_a", &["isa-iow-recovery@1"]),
            read(2, "subj_b", &["isa-iow-recovery@1", "isa-other@2"]),
            // An agency reading its own records: no agreement.
            read(3, "subj_c", &[]),
            // Neither a refusal nor another action's disclosure is a records disclosure.
            denied(4, Some("hampshire-police"), "purpose", None),
            stored(5, {
                let mut lookup = entry(5, Action::SubjectLookup, Decision::Granted, "ok");
                lookup.subject_id = Some("subj_d".into());
                lookup
            }),
            // A read that returned no record (all left out: no share applied) disclosed
            // nothing.
            stored(6, {
                let mut nothing = entry(6, Action::RecordsRead, Decision::Granted, "ok");
                nothing.subject_id = Some("subj_e".into());
                nothing.withheld = vec!["ambulance.callout.attended_at:service_usage".into()];
                nothing
            }),
            // A record shared with every field withheld still says that it exists.
            stored(7, {
                let mut withheld = entry(7, Action::RecordsRead, Decision::Granted, "ok");
                withheld.subject_id = Some("subj_b".into());
                withheld.agreements = vec!["isa-iow-recovery@1".into()];
                withheld.withheld = vec!["health.crisis_plan.diagnosis:clinical".into()];
                withheld
            }),
        ];
        let report = tally(&rows).disclosures(&[example_history()]);
        assert_eq!((report.total, report.subjects), (5, 3));
        assert_eq!(
            report.own_records,
            DisclosureCount {
                disclosures: 1,
                subjects: 1
            }
        );
        let [isa, other] = report.by_agreement.as_slice() else {
            panic!("{:?}", report.by_agreement);
        };
        assert_eq!(
            (
                isa.agreement.as_str(),
                isa.version,
                isa.disclosures,
                isa.subjects
            ),
            ("isa-iow-recovery@1", Some(1), 4, 2)
        );
        assert_eq!(
            isa.title.as_deref(),
            Some("Integrated Recovery Programme: police, NHS, ambulance and programme team")
        );
        assert_eq!(isa.lawful_basis.len(), 3);
        assert!(isa.lawful_basis[0].starts_with("UK GDPR Art 6(1)(e)"));
        // A version not stored is still counted, without a title or basis to show.
        assert_eq!(
            (
                other.agreement_id.as_str(),
                other.version,
                other.disclosures
            ),
            ("isa-other", Some(2), 1)
        );
        assert_eq!((other.title.as_ref(), other.lawful_basis.len()), (None, 0));
    }

    #[test]
    fn refusals_count_every_request_an_entry_stands_for_by_agency_and_rule() {
        let rows = [
            denied(0, Some("hampshire-police"), "purpose", None),
            denied(1, Some("hampshire-police"), "no_agreement", None),
            denied(2, Some("hampshire-police"), "purpose", None),
            // A flood from an unknown certificate, coalesced: one entry for five, then one.
            denied(3, None, "certificate_unknown", Some(5)),
            denied(4, None, "certificate_unknown", None),
            denied(5, Some("scas"), "role", Some(2)),
            read(6, "subj_a", &[]),
        ];
        let refused = tally(&rows).refused();
        assert_eq!(refused.total, 11);
        let agencies: Vec<(Option<&str>, u64)> = refused
            .by_agency
            .iter()
            .map(|a| (a.agency_id.as_deref(), a.refused))
            .collect();
        assert_eq!(
            agencies,
            [(None, 6), (Some("hampshire-police"), 3), (Some("scas"), 2)]
        );
        let police: Vec<(&str, u64)> = refused.by_agency[1]
            .by_reason
            .iter()
            .map(|r| (r.reason.as_str(), r.refused))
            .collect();
        assert_eq!(police, [("purpose", 2), ("no_agreement", 1)]);
        let reasons: Vec<(&str, u64)> = refused
            .by_reason
            .iter()
            .map(|r| (r.reason.as_str(), r.refused))
            .collect();
        assert_eq!(
            reasons,
            [
                ("certificate_unknown", 6),
                ("purpose", 2),
                ("role", 2),
                ("no_agreement", 1)
            ]
        );
    }

    fn emergency(index: u64) -> Emergency {
        Emergency {
            leaf_index: LeafIndex(index),
            time: t0(),
            agency_id: Some("hampshire-police".into()),
            decision: Decision::Granted,
        }
    }

    fn after(hours: i64) -> Timestamp {
        Timestamp::from_micros(t0().micros() + hours * 3_600_000_000)
    }

    fn verdict(outcome: ReviewOutcome, hours: i64) -> Verdict {
        Verdict {
            outcome: outcome.as_str().to_owned(),
            reviewed_at: after(hours),
        }
    }

    #[test]
    fn a_break_glass_access_breaches_the_rule_when_reviewed_or_still_waiting_after_72_hours() {
        let accesses = [emergency(1), emergency(2), emergency(3)];
        let verdicts = BTreeMap::from([
            (LeafIndex(1), verdict(ReviewOutcome::Justified, 71)),
            (LeafIndex(2), verdict(ReviewOutcome::Unjustified, 73)),
        ]);
        let judged = |now_hours: i64| break_glass(&accesses, &verdicts, after(now_hours)).unwrap();

        let old = judged(80);
        let outcomes: Vec<(Review, f64, bool)> = old
            .accesses
            .iter()
            .map(|a| (a.outcome, a.review_delay_hours, a.breach))
            .collect();
        assert_eq!(
            outcomes,
            [
                (Review::Justified, 71.0, false),
                (Review::Unjustified, 73.0, true),
                // Unreviewed and 80 hours old.
                (Review::Unreviewed, 80.0, true),
            ]
        );
        assert_eq!(
            (
                old.total,
                old.justified,
                old.unjustified,
                old.unreviewed,
                old.breaches
            ),
            (3, 1, 1, 1, 2)
        );
        assert_eq!(old.accesses[0].reviewed_at, Some(after(71)));
        assert_eq!(old.accesses[2].reviewed_at, None);

        // Unreviewed but only 10 hours old: not yet a breach.
        let recent = judged(10);
        assert!(!recent.accesses[2].breach);
        assert_eq!(recent.accesses[2].review_delay_hours, 10.0);
        assert_eq!(recent.breaches, 1);
    }

    #[test]
    fn a_review_exactly_72_hours_after_meets_the_rule() {
        let accesses = [emergency(1)];
        let verdicts = BTreeMap::from([(LeafIndex(1), verdict(ReviewOutcome::Justified, 72))]);
        assert!(
            !break_glass(&accesses, &verdicts, after(100))
                .unwrap()
                .accesses[0]
                .breach
        );
    }

    #[test]
    fn a_review_outcome_the_gateway_never_writes_is_not_shown_as_either() {
        let verdicts = BTreeMap::from([(
            LeafIndex(1),
            Verdict {
                outcome: "maybe".into(),
                reviewed_at: after(1),
            },
        )]);
        assert!(matches!(
            break_glass(&[emergency(1)], &verdicts, after(2)),
            Err(AppError::Internal(_))
        ));
    }

    fn given(version: i32, given_on: Date, expires_on: Option<Date>) -> ConsentVersion {
        ConsentVersion {
            version,
            kind: ConsentKind::Given {
                level: ConsentLevel::Coordination,
                agencies: None,
                excluded_categories: BTreeSet::new(),
                given_on,
                expires_on,
            },
            recorded_at: Timestamp::from(datetime!(2026-01-01 00:00 UTC)),
            recorded_by: "coordinator".into(),
        }
    }

    #[test]
    fn consents_expiring_within_30_days_are_listed_the_30th_day_included() {
        let now = datetime!(2026-11-30 12:00 UTC);
        let start = date!(2026 - 01 - 15);
        let one = |expires: Option<Date>| vec![given(1, start, expires)];
        let consents = BTreeMap::from([
            ("subj_day30".to_owned(), one(Some(date!(2026 - 12 - 30)))),
            ("subj_day31".to_owned(), one(Some(date!(2026 - 12 - 31)))),
            ("subj_today".to_owned(), one(Some(date!(2026 - 11 - 30)))),
            ("subj_lapsed".to_owned(), one(Some(date!(2026 - 11 - 29)))),
            ("subj_open".to_owned(), one(None)),
            (
                "subj_renewed".to_owned(),
                vec![
                    given(1, start, Some(date!(2026 - 12 - 05))),
                    given(2, date!(2026 - 11 - 01), None),
                ],
            ),
            (
                "subj_withdrawn".to_owned(),
                vec![
                    given(1, start, Some(date!(2026 - 12 - 05))),
                    ConsentVersion {
                        version: 2,
                        kind: ConsentKind::Withdrawn {
                            withdrawn_on: date!(2026 - 11 - 20),
                        },
                        recorded_at: Timestamp::from(datetime!(2026-11-20 09:00 UTC)),
                        recorded_by: "coordinator".into(),
                    },
                ],
            ),
        ]);
        let expiring = expiring_consents(&consents, now);
        let listed: Vec<(&str, i64)> = expiring
            .subjects
            .iter()
            .map(|s| (s.subject_id.as_str(), s.days_left))
            .collect();
        assert_eq!(listed, [("subj_today", 0), ("subj_day30", 30)]);
        assert_eq!((expiring.count, expiring.within_days), (2, 30));
    }

    #[test]
    fn only_agreements_in_force_past_their_review_date_are_overdue() {
        let history = example_history();
        let document = &history.versions[0].document;
        let agreement = |review_by: Date| Agreement {
            id: document.id.clone(),
            version: 1,
            title: document.title.clone(),
            parties: BTreeSet::new(),
            lawful_basis: document.lawful_basis.clone(),
            valid_from: date!(2026 - 01 - 01),
            valid_until: date!(2027 - 12 - 31),
            review_by,
            shares: Vec::new(),
        };
        let today = date!(2026 - 11 - 30);
        let overdue = overdue_reviews(
            &[
                agreement(date!(2026 - 11 - 30)),
                agreement(date!(2026 - 10 - 31)),
            ],
            today,
        );
        assert_eq!(
            overdue.len(),
            1,
            "the review date itself is not yet overdue"
        );
        assert_eq!(
            (overdue[0].review_by, overdue[0].days_overdue),
            (date!(2026 - 10 - 31), 30)
        );
    }

    #[test]
    fn the_period_runs_from_the_first_midnight_to_the_midnight_after_the_last_day() {
        let query = |from: &str, to: &str| IgQuery {
            from: from.into(),
            to: to.into(),
        };
        let period = Period::parse(&query("2026-11-01", "2026-11-30")).unwrap();
        assert_eq!(
            period.starts_at,
            Timestamp::from(datetime!(2026-11-01 00:00 UTC))
        );
        assert_eq!(
            period.ends_before,
            Timestamp::from(datetime!(2026-12-01 00:00 UTC))
        );
        let field = |from: &str, to: &str| match Period::parse(&query(from, to)) {
            Err(AppError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field("2026-11-30", "2026-11-01"), "to");
        assert_eq!(field("30/11/2026", "2026-11-30"), "from");
        assert_eq!(field("2026-11-01", "2026-11-31"), "to");
        assert!(Period::parse(&query("2026-11-30", "2026-11-30")).is_ok());
    }

    #[test]
    fn the_checkpoint_names_the_witnesses_that_cosigned_it() {
        let dir = tempfile::tempdir().unwrap();
        let signer = CheckpointSigner::load_or_create(dir.path(), "concordat.test/log").unwrap();
        let root = [7u8; 32];
        let note = signer.sign(&Checkpoint {
            origin: "concordat.test/log".into(),
            size: 42,
            root,
        });
        let stored = StoredCheckpoint {
            tree_size: 42,
            root_hash: root.to_vec(),
            signed_note: note.clone(),
            created_at: t0().micros(),
        };
        let lines = [
            "\u{2014} police-witness AAAAAQ==\n".to_owned(),
            "\u{2014} nhs-witness AAAAAg==\n".to_owned(),
        ];
        let summary = checkpoint_summary(&stored, &lines, signer.verifier());
        assert_eq!(summary.tree_size, 42);
        assert!(summary.signature_verified);
        assert_eq!(summary.cosignatures, 2);
        assert_eq!(summary.witnesses, ["police-witness", "nhs-witness"]);
        assert_eq!(
            summary.signed_note,
            format!("{note}{}{}", lines[0], lines[1])
        );

        let tampered = StoredCheckpoint {
            tree_size: 43,
            ..stored
        };
        assert!(!checkpoint_summary(&tampered, &[], signer.verifier()).signature_verified);
    }
}
