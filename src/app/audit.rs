//! The auditor's use cases (`ig_auditor`): searching the trail, an entry with its inclusion
//! proof, the signed checkpoint and its verifier key, consistency proofs, exports, and the
//! break-glass alerts with their review; and the subject access report, which coordinators
//! may ask for too. Each is itself audited: by the caller's edge once the call is over, or,
//! for an export and a review, by the use case before the first byte or the change.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{error::Rule, input, AppError, Call, Gateway};
use crate::{
    audit::{
        export::{Export, ExportFormat, PAGE},
        merkle,
        store::{self, Filter, StoredEntry, StoredNodes},
        Action, AuditEntry, Decision, LeafIndex,
    },
    db::{alerts, subjects, Conflict, Database, DbConnection, DbError, Missing},
    domain::{purpose::Purpose, Role, Timestamp},
};

/// Entries per search page when the caller names no limit, and the most it may name.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
/// A break-glass access must be reviewed within this many hours: an unreviewed one older
/// is overdue (the alerts), and a review given later breaks the rule (the IG report).
pub const REVIEW_WITHIN_HOURS: i64 = 72;
/// Longest review note kept.
const NOTE_CHARS: usize = 4000;

/// A page size the caller named, or the default: 1 to [`MAX_LIMIT`].
fn page_limit(named: Option<i64>) -> Result<i64, AppError> {
    let limit = named.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::invalid("limit", "must be between 1 and 1000"));
    }
    Ok(limit)
}

/// A leaf index given back as a cursor (the trail's pages end at one).
fn leaf_cursor(raw: Option<&str>) -> Result<Option<LeafIndex>, AppError> {
    raw.map(|raw| {
        raw.parse()
            .map(LeafIndex)
            .map_err(|_| AppError::invalid("cursor", "is not a cursor from this API"))
    })
    .transpose()
}

fn auditor(call: &Call) -> Result<(), AppError> {
    call.require_any(&[Role::IgAuditor])
}

fn hex_list(hashes: &[merkle::Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

fn decode(row: &StoredEntry) -> Result<AuditEntry, AppError> {
    Ok(store::decode(row)?)
}

/// Every entry matching `filter` that `keep` accepts, page by page, so that what is kept is
/// never cut off by how many entries came before it.
fn every_entry(
    conn: &mut DbConnection,
    filter: &Filter,
    keep: impl Fn(&StoredEntry) -> bool,
) -> Result<Vec<StoredEntry>, DbError> {
    let mut kept = Vec::new();
    let mut after = None;
    loop {
        let page = store::entries(conn, filter, after, PAGE)?;
        let Some(last) = page.last() else {
            return Ok(kept);
        };
        after = Some(last.index());
        kept.extend(page.into_iter().filter(|row| keep(row)));
    }
}

/// The size of the latest checkpoint: entries beyond it have no proof yet.
async fn checkpointed_size(database: &Database) -> Result<u64, AppError> {
    Ok(database
        .run(store::latest_checkpoint)
        .await?
        .map_or(0, |checkpoint| checkpoint.size()))
}

// ---- Search ----

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// RFC 3339; entries at or after.
    pub from: Option<String>,
    /// RFC 3339; entries before.
    pub to: Option<String>,
    pub principal: Option<String>,
    pub agency: Option<String>,
    pub subject: Option<String>,
    /// An audited action, e.g. `records.read`.
    pub action: Option<String>,
    /// `granted`, `denied` or `error`.
    pub decision: Option<String>,
    pub break_glass: Option<bool>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A search page: what to match, where to start and how many.
#[derive(Debug)]
struct Page {
    filter: Filter,
    after: Option<LeafIndex>,
    limit: i64,
}

impl SearchQuery {
    fn page(self) -> Result<Page, AppError> {
        let limit = page_limit(self.limit)?;
        let decision = self
            .decision
            .as_deref()
            .map(|raw| {
                Decision::parse(raw).ok_or_else(|| {
                    AppError::invalid("decision", "must be granted, denied or error")
                })
            })
            .transpose()?;
        // No entry can hold an action the gateway does not write: say so rather than
        // answer an empty page as if the search were meaningful.
        let action = self
            .action
            .as_deref()
            .map(|raw| {
                Action::parse(raw)
                    .ok_or_else(|| AppError::invalid("action", "is not an audited action"))
            })
            .transpose()?;
        let after = leaf_cursor(self.cursor.as_deref())?;
        Ok(Page {
            filter: Filter {
                from: input::parse_instant("from", self.from.as_deref())?,
                to: input::parse_instant("to", self.to.as_deref())?,
                principal_id: self.principal,
                agency_id: self.agency,
                subject_id: self.subject,
                action,
                decision,
                break_glass: self.break_glass,
                before_index: None,
            },
            after,
            limit,
        })
    }
}

pub async fn search(
    gateway: &Gateway,
    call: &Call,
    query: SearchQuery,
) -> Result<SearchResults, AppError> {
    auditor(call)?;
    let Page {
        filter,
        after,
        limit,
    } = query.page()?;
    let rows = gateway
        .database
        .run(move |conn| store::entries(conn, &filter, after, limit))
        .await?;
    let full = i64::try_from(rows.len()) == Ok(limit);
    let next_cursor = rows
        .last()
        .filter(|_| full)
        .map(|row| row.index().to_string());
    let entries = rows.iter().map(decode).collect::<Result<_, _>>()?;
    Ok(SearchResults {
        entries,
        next_cursor,
    })
}

// ---- Proofs and checkpoints ----

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryWithProof {
    pub entry: AuditEntry,
    pub leaf_hash: String,
    pub tree_size: u64,
    pub root_hash: String,
    pub inclusion_proof: Vec<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TreeSizeQuery {
    /// Prove against this earlier tree size instead of the latest checkpoint.
    pub tree_size: Option<u64>,
}

/// The entry at `index` with its inclusion proof against the latest checkpoint, or against
/// the earlier tree size asked for.
pub async fn entry(
    gateway: &Gateway,
    call: &Call,
    index: LeafIndex,
    query: TreeSizeQuery,
) -> Result<EntryWithProof, AppError> {
    auditor(call)?;
    let checkpointed = checkpointed_size(&gateway.database).await?;
    let size = query.tree_size.unwrap_or(checkpointed);
    if size > checkpointed || index.0 >= size {
        return Err(AppError::NotFound(
            "No entry at that index is covered by a checkpoint of that size yet.".into(),
        ));
    }
    let (data, root, proof) = gateway
        .database
        .run(move |conn| {
            let data =
                store::leaf_data(conn, index)?.ok_or(DbError::NotFound(Missing::AuditEntry))?;
            let root = merkle::root(&mut StoredNodes(conn), size)?;
            let proof = merkle::inclusion_proof(&mut StoredNodes(conn), index.0, size)?;
            Ok((data, root, proof))
        })
        .await?;
    let entry = AuditEntry::from_leaf_data(&data).map_err(AppError::internal)?;
    Ok(EntryWithProof {
        entry,
        leaf_hash: hex::encode(merkle::leaf_hash(&data)),
        tree_size: size,
        root_hash: hex::encode(root),
        inclusion_proof: hex_list(&proof),
    })
}

/// The latest checkpoint as a C2SP signed note.
/// The latest signed checkpoint with every witness cosignature kept for it, as one note:
/// the gateway's signature line, then the witnesses' (C2SP `tlog-cosignature`).
pub async fn checkpoint(gateway: &Gateway, call: &Call) -> Result<String, AppError> {
    auditor(call)?;
    let cosigned = gateway
        .database
        .run(|conn| {
            let Some(latest) = store::latest_checkpoint(conn)? else {
                return Ok(None);
            };
            let lines = store::cosignatures(conn, latest.size())?;
            Ok(Some(latest.with_cosignatures(&lines)))
        })
        .await?;
    cosigned.ok_or_else(|| AppError::NotFound("No checkpoint has been signed yet.".into()))
}

/// The latest checkpoint as the auditor's console shows it: what it covers, when it was
/// signed, and whether its signature verifies under the gateway's verifier key.
#[derive(Debug, Clone)]
pub struct CheckpointStatus {
    pub size: u64,
    pub root_hash: String,
    pub signed_at: Timestamp,
    pub signature_verified: bool,
    pub verifier_key: String,
}

pub async fn checkpoint_status(
    gateway: &Gateway,
    call: &Call,
) -> Result<Option<CheckpointStatus>, AppError> {
    auditor(call)?;
    let latest = gateway.database.run(store::latest_checkpoint).await?;
    Ok(latest.map(|stored| CheckpointStatus {
        size: stored.size(),
        root_hash: hex::encode(&stored.root_hash),
        signed_at: Timestamp::from_micros(stored.created_at),
        signature_verified: stored.verifies_under(gateway.signer.verifier()),
        verifier_key: gateway.signer.verifier().encode(),
    }))
}

/// Whether an entry is proved to be in the log the latest signed checkpoint commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inclusion {
    /// The proof checks against the root of a checkpoint whose signature verifies.
    Verified { tree_size: u64 },
    /// The proof, the root or the checkpoint's signature does not check: the log or the
    /// checkpoint was altered.
    Failed { tree_size: u64 },
    /// No checkpoint covers the entry yet.
    Pending,
}

#[derive(Debug, Clone)]
pub struct CheckedEntry {
    pub entry: AuditEntry,
    pub leaf_hash: String,
    pub inclusion: Inclusion,
}

/// The entry at `index`, with its inclusion in the latest checkpoint checked here, against
/// the checkpoint's signed root rather than the stored one.
pub async fn checked_entry(
    gateway: &Gateway,
    call: &Call,
    index: LeafIndex,
) -> Result<CheckedEntry, AppError> {
    auditor(call)?;
    let (data, checkpoint, proof) = gateway
        .database
        .run(move |conn| {
            let data =
                store::leaf_data(conn, index)?.ok_or(DbError::NotFound(Missing::AuditEntry))?;
            let checkpoint = store::latest_checkpoint(conn)?;
            let proof = match &checkpoint {
                Some(stored) if index.0 < stored.size() => Some(merkle::inclusion_proof(
                    &mut StoredNodes(conn),
                    index.0,
                    stored.size(),
                )?),
                _ => None,
            };
            Ok((data, checkpoint, proof))
        })
        .await?;
    let entry = AuditEntry::from_leaf_data(&data).map_err(AppError::internal)?;
    let leaf = merkle::leaf_hash(&data);
    let inclusion = match (checkpoint, proof) {
        (Some(stored), Some(proof)) => {
            let tree_size = stored.size();
            let proved = gateway
                .signer
                .verifier()
                .verify(&stored.signed_note)
                .is_ok_and(|signed| {
                    signed.size == tree_size
                        && merkle::verify_inclusion(&leaf, index.0, tree_size, &proof, &signed.root)
                });
            if proved {
                Inclusion::Verified { tree_size }
            } else {
                Inclusion::Failed { tree_size }
            }
        }
        _ => Inclusion::Pending,
    };
    Ok(CheckedEntry {
        entry,
        leaf_hash: hex::encode(leaf),
        inclusion,
    })
}

// ---- Activity ----

/// Days of activity the auditor's charts cover.
pub const ACTIVITY_DAYS: i64 = 30;

/// Accesses and refusals per day (UTC) over the last [`ACTIVITY_DAYS`] days.
#[derive(Debug, Clone)]
pub struct Activity {
    /// Oldest first, ending today.
    pub days: Vec<time::Date>,
    /// Disclosures granted, per agency, a count per day.
    pub accesses: Vec<(String, Vec<u64>)>,
    /// Requests denied, a count per day.
    pub denied: Vec<u64>,
}

pub async fn activity(gateway: &Gateway, call: &Call) -> Result<Activity, AppError> {
    auditor(call)?;
    let today = input::today();
    let first = today - time::Duration::days(ACTIVITY_DAYS - 1);
    let from = Timestamp::from(first.midnight().assume_utc());
    let rows = gateway
        .database
        .run(move |conn| {
            let filter = Filter {
                from: Some(from),
                ..Filter::default()
            };
            every_entry(conn, &filter, |row| {
                row.decision() == Some(Decision::Denied)
                    || (row.decision() == Some(Decision::Granted)
                        && row.action().is_some_and(Action::discloses))
            })
        })
        .await?;
    let days: Vec<time::Date> = (0..ACTIVITY_DAYS)
        .map(|offset| first + time::Duration::days(offset))
        .collect();
    let slot = |row: &StoredEntry| {
        row.time()
            .to_datetime()
            .and_then(|at| usize::try_from((at.date() - first).whole_days()).ok())
            .filter(|day| *day < days.len())
    };
    let mut accesses: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    let mut denied = vec![0; days.len()];
    for row in &rows {
        let Some(day) = slot(row) else { continue };
        let counts = if row.decision() == Some(Decision::Denied) {
            &mut denied
        } else {
            let agency = row.agency_id.clone().unwrap_or_else(|| "(none)".to_owned());
            accesses
                .entry(agency)
                .or_insert_with(|| vec![0; days.len()])
        };
        if let Some(count) = counts.get_mut(day) {
            *count += 1;
        }
    }
    Ok(Activity {
        days,
        accesses: accesses.into_iter().collect(),
        denied,
    })
}

/// The signed-note verifier key for the gateway's checkpoints, one line.
pub fn checkpoint_key(gateway: &Gateway, call: &Call) -> Result<String, AppError> {
    auditor(call)?;
    Ok(format!("{}\n", gateway.signer.verifier().encode()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    pub first: u64,
    pub second: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    pub first_root: String,
    pub second_root: String,
    pub proof: Vec<String>,
}

pub async fn consistency(
    gateway: &Gateway,
    call: &Call,
    query: ConsistencyQuery,
) -> Result<ConsistencyProof, AppError> {
    auditor(call)?;
    let ConsistencyQuery { first, second } = query;
    if first == 0 || first > second {
        return Err(AppError::invalid(
            "first",
            "must be at least 1 and at most second",
        ));
    }
    if second > checkpointed_size(&gateway.database).await? {
        return Err(AppError::NotFound(
            "The second size is not covered by a checkpoint yet.".into(),
        ));
    }
    let (first_root, second_root, proof) = gateway
        .database
        .run(move |conn| {
            let mut nodes = StoredNodes(conn);
            Ok((
                merkle::root(&mut nodes, first)?,
                merkle::root(&mut nodes, second)?,
                merkle::consistency_proof(&mut nodes, first, second)?,
            ))
        })
        .await?;
    Ok(ConsistencyProof {
        first,
        second,
        first_root: hex::encode(first_root),
        second_root: hex::encode(second_root),
        proof: hex_list(&proof),
    })
}

// ---- Export ----

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    pub format: ExportFormat,
    /// RFC 3339; entries at or after.
    pub from: Option<String>,
    /// RFC 3339; entries before.
    pub to: Option<String>,
}

/// An export under way: its entry is already durable; the caller sends the chunks as they
/// come.
#[derive(Debug)]
pub struct ExportStream {
    database: Database,
    format: ExportFormat,
    /// `None` once the export is complete or has failed.
    export: Option<Export>,
    /// Entries handed out so far.
    written: u64,
}

impl ExportStream {
    pub fn format(&self) -> ExportFormat {
        self.format
    }

    /// How many entries have been handed out so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The next bytes of the export; `None` once it is complete. After an error there is
    /// nothing more: the reader holds a truncated export, never one with a gap.
    pub async fn next_chunk(&mut self) -> Option<Result<Vec<u8>, AppError>> {
        let mut export = self.export.take()?;
        let step = self
            .database
            .run(move |conn| {
                let chunk = export.next_chunk(conn);
                Ok((export, chunk))
            })
            .await;
        match step {
            Ok((export, Ok(Some(chunk)))) => {
                self.written = export.written();
                self.export = Some(export);
                Some(Ok(chunk))
            }
            Ok((_, Ok(None))) => None,
            Ok((_, Err(error))) | Err(error) => Some(Err(error.into())),
        }
    }
}

/// Begins an export of the trail as it stands now, and makes its entry durable before
/// anything of it is handed out. The entry's response digest stays empty: the body does
/// not exist yet.
pub async fn export(
    gateway: &Gateway,
    call: &Call,
    query: ExportQuery,
) -> Result<ExportStream, AppError> {
    auditor(call)?;
    let from = input::parse_instant("from", query.from.as_deref())?;
    let to = input::parse_instant("to", query.to.as_deref())?;
    let (format, origin) = (query.format, gateway.origin.clone());
    let export = gateway
        .database
        .run(move |conn| Export::begin(conn, format, &origin, from, to))
        .await?;
    call.audit
        .annotate(|entry| entry.purpose = Some(Purpose::Audit.to_string()));
    call.record_before_change().await?;
    Ok(ExportStream {
        database: gateway.database.clone(),
        format,
        export: Some(export),
        written: 0,
    })
}

// ---- Break-glass alerts ----

#[derive(Debug, Serialize, ToSchema)]
pub struct Alert {
    #[schema(value_type = u64)]
    pub leaf_index: LeafIndex,
    pub time: String,
    pub principal_id: Option<String>,
    pub agency_id: Option<String>,
    pub subject_id: Option<String>,
    pub justification: Option<String>,
    /// Unreviewed for more than 72 hours.
    pub overdue: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Alerts {
    /// Newest first.
    pub alerts: Vec<Alert>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Alerts per page, 1 to 1000; 100 when absent.
    pub limit: Option<i64>,
}

/// An alert is an emergency read the gateway decided on, granted or refused: an attempt
/// is as much for the IG auditor to see as an access. (A server error decided nothing.)
pub fn is_alert(row: &StoredEntry) -> bool {
    row.break_glass
        && row.action() == Some(Action::RecordsRead)
        && matches!(row.decision(), Some(Decision::Granted | Decision::Denied))
}

/// Whether an access at `at`, reviewed (or still waiting) at `by`, broke the review rule:
/// strictly more than [`REVIEW_WITHIN_HOURS`] later.
pub fn is_overdue(at: Timestamp, by: Timestamp) -> bool {
    at < by.hours_before(REVIEW_WITHIN_HOURS)
}

/// Break-glass reads and attempts not yet reviewed, newest first, a page at a time.
pub async fn alerts(
    gateway: &Gateway,
    call: &Call,
    query: AlertsQuery,
) -> Result<Alerts, AppError> {
    auditor(call)?;
    let limit = page_limit(query.limit)?;
    let before = leaf_cursor(query.cursor.as_deref())?;
    // One more than the page, to learn whether another follows.
    let mut rows = gateway
        .database
        .run(move |conn| store::unreviewed_alerts(conn, before, limit + 1))
        .await?;
    let more = i64::try_from(rows.len()).is_ok_and(|n| n > limit);
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let now = Timestamp::now();
    let alerts: Vec<Alert> = rows
        .iter()
        .map(|row| {
            let entry = decode(row)?;
            Ok(Alert {
                leaf_index: row.index(),
                time: entry.time,
                principal_id: entry.principal_id,
                agency_id: entry.agency_id,
                subject_id: entry.subject_id,
                justification: entry.justification,
                overdue: is_overdue(row.time(), now),
            })
        })
        .collect::<Result<_, AppError>>()?;
    let next_cursor = more
        .then(|| alerts.last().map(|alert| alert.leaf_index.to_string()))
        .flatten();
    Ok(Alerts {
        alerts,
        next_cursor,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `justified` or `unjustified`.
    pub outcome: String,
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReviewOutcome {
    Justified,
    Unjustified,
}

impl ReviewOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Justified => "justified",
            Self::Unjustified => "unjustified",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, AppError> {
        [Self::Justified, Self::Unjustified]
            .into_iter()
            .find(|outcome| outcome.as_str() == raw)
            .ok_or_else(|| AppError::invalid("outcome", "must be justified or unjustified"))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reviewed {
    #[schema(value_type = u64)]
    pub leaf_index: LeafIndex,
    pub outcome: ReviewOutcome,
}

/// Whoever broke the glass cannot clear their own emergency access, even holding the
/// auditor's role as well: the review must be someone else's.
fn may_review(reviewer: &str, broke_glass: Option<&str>) -> Result<(), AppError> {
    if broke_glass == Some(reviewer) {
        return Err(AppError::refused(
            Rule::OwnAlert,
            "A principal may not review their own break-glass access.",
        ));
    }
    Ok(())
}

/// Records an IG auditor's verdict on one alert; each alert is reviewed once.
pub async fn review(
    gateway: &Gateway,
    call: &Call,
    index: LeafIndex,
    request: ReviewRequest,
) -> Result<Reviewed, AppError> {
    auditor(call)?;
    let outcome = ReviewOutcome::parse(&request.outcome)?;
    let note = input::parse_text("note", &request.note, NOTE_CHARS)?;
    let (row, reviewed) = gateway
        .database
        .run(move |conn| {
            let row = store::entry_at(conn, index)?.filter(is_alert);
            Ok((row, alerts::is_reviewed(conn, index)?))
        })
        .await?;
    let row =
        row.ok_or_else(|| AppError::NotFound("No break-glass access at that index.".into()))?;
    let subject = row.subject_id.clone();
    call.audit.annotate(|entry| entry.subject_id = subject);
    may_review(&call.by(), row.principal_id.as_deref())?;
    if reviewed {
        return Err(DbError::Conflict(Conflict::AlreadyReviewed).into());
    }
    call.record_before_change().await?;
    let (keys, by) = (gateway.keys.clone(), call.by());
    gateway
        .database
        .run(move |conn| {
            let review = alerts::Review {
                leaf_index: index,
                outcome: outcome.as_str(),
                note: &note,
                reviewed_by: &by,
            };
            alerts::insert_review(conn, &keys, review)
        })
        .await?;
    Ok(Reviewed {
        leaf_index: index,
        outcome,
    })
}

// ---- Subject access ----

#[derive(Debug, Serialize, ToSchema)]
pub struct Access {
    pub time: String,
    /// `records.read`, `subject.lookup`, `consent.history` or `audit.explain`.
    pub action: String,
    pub agency_id: Option<String>,
    pub principal_id: Option<String>,
    pub purpose: Option<String>,
    /// `type.field:category` released.
    pub released: Vec<String>,
    pub break_glass: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessReport {
    pub subject_id: String,
    pub accesses: Vec<Access>,
}

/// A granted entry of a disclosing action released something about its subject; refused
/// attempts disclosed nothing and changes disclose nothing.
fn is_disclosure(row: &StoredEntry) -> bool {
    row.decision() == Some(Decision::Granted) && row.action().is_some_and(Action::discloses)
}

/// "Who has seen my data?": every disclosure about the subject, oldest first.
pub async fn access_report(
    gateway: &Gateway,
    call: &Call,
    subject: &str,
) -> Result<AccessReport, AppError> {
    let id = input::subject(call, subject)?;
    call.require_any(&[Role::IgAuditor, Role::Coordinator])?;
    let lookup = id.clone();
    let rows = gateway
        .database
        .run(move |conn| {
            subjects::summary(conn, &lookup)?.ok_or(DbError::NotFound(Missing::Subject))?;
            let filter = Filter {
                subject_id: Some(lookup.to_string()),
                decision: Some(Decision::Granted),
                ..Filter::default()
            };
            every_entry(conn, &filter, is_disclosure)
        })
        .await?;
    let accesses = rows
        .iter()
        .map(|row| {
            let entry = decode(row)?;
            Ok(Access {
                time: entry.time,
                action: entry.action,
                agency_id: entry.agency_id,
                principal_id: entry.principal_id,
                purpose: entry.purpose,
                released: entry.released,
                break_glass: entry.break_glass,
            })
        })
        .collect::<Result<_, AppError>>()?;
    Ok(AccessReport {
        subject_id: id.to_string(),
        accesses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(action: &str, decision: Decision, break_glass: bool) -> StoredEntry {
        StoredEntry {
            leaf_index: 3,
            time_micros: 0,
            request_id: "r".into(),
            principal_id: Some("police-mentor".into()),
            agency_id: None,
            subject_id: None,
            action: action.into(),
            decision: decision.as_str().into(),
            purpose: None,
            break_glass,
            leaf_data: Vec::new(),
        }
    }

    #[test]
    fn alerts_are_break_glass_reads_granted_or_refused() {
        assert!(is_alert(&row("records.read", Decision::Granted, true)));
        assert!(is_alert(&row("records.read", Decision::Denied, true)));
        assert!(!is_alert(&row("records.read", Decision::Error, true)));
        assert!(!is_alert(&row("records.read", Decision::Granted, false)));
        assert!(!is_alert(&row("subject.lookup", Decision::Granted, true)));
    }

    #[test]
    fn disclosures_are_granted_entries_of_disclosing_actions() {
        for action in ["records.read", "subject.lookup", "consent.history"] {
            assert!(is_disclosure(&row(action, Decision::Granted, false)));
            assert!(!is_disclosure(&row(action, Decision::Denied, false)));
        }
        for action in ["consent.record", "subject.enrol", "no.such_action"] {
            assert!(!is_disclosure(&row(action, Decision::Granted, false)));
        }
    }

    #[test]
    fn an_alert_is_overdue_after_72_hours() {
        let now = Timestamp::now();
        assert!(!is_overdue(now.hours_before(71), now));
        assert!(is_overdue(now.hours_before(73), now));
    }

    #[test]
    fn no_one_reviews_their_own_break_glass_access() {
        let refused = may_review("police-mentor", Some("police-mentor")).unwrap_err();
        assert!(matches!(
            refused,
            AppError::Refused {
                rule: Rule::OwnAlert,
                ..
            }
        ));
        assert!(may_review("ig-auditor", Some("police-mentor")).is_ok());
        assert!(may_review("ig-auditor", None).is_ok());
    }

    #[test]
    fn search_parameters_are_typed_and_named_when_wrong() {
        let field = |query: SearchQuery| match query.page() {
            Err(AppError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let query = |change: fn(&mut SearchQuery)| {
            let mut query = SearchQuery::default();
            change(&mut query);
            query
        };
        assert_eq!(field(query(|q| q.limit = Some(0))), "limit");
        assert_eq!(
            field(query(|q| q.decision = Some("maybe".into()))),
            "decision"
        );
        assert_eq!(
            field(query(|q| q.action = Some("records.write".into()))),
            "action"
        );
        assert_eq!(field(query(|q| q.cursor = Some("-1".into()))), "cursor");
        assert_eq!(field(query(|q| q.from = Some("yesterday".into()))), "from");
        let page = query(|q| {
            q.action = Some("records.read".into());
            q.decision = Some("denied".into());
            q.cursor = Some("41".into());
        })
        .page()
        .unwrap();
        assert_eq!(page.filter.action, Some(Action::RecordsRead));
        assert_eq!(page.filter.decision, Some(Decision::Denied));
        assert_eq!((page.after, page.limit), (Some(LeafIndex(41)), 100));
    }
}
