//! The auditor API (`ig_auditor`): search, entries with inclusion proofs, checkpoints and
//! the verifier key, consistency proofs and streamed exports. Every call is itself
//! audited: by the audit middleware, or for exports by the handler before streaming.

use actix_web::{
    http::header::ContentType,
    web::{self, Json, Query},
    HttpRequest, HttpResponse,
};
use futures_util::stream;
use serde::{Deserialize, Serialize};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};

use crate::{
    audit::{
        checkpoint::CheckpointSigner,
        export::{ExportFormat, Exporter, PAGE},
        merkle,
        store::{self, Filter, StoredNodes},
        AuditEntry, Decision,
    },
    db::Database,
    domain::Role,
    error::{ApiError, Problem},
    identity::Caller,
    routes::trail::{entry_for, record},
};

/// The gateway's audit configuration that handlers need.
#[derive(Debug)]
pub struct AuditContext {
    pub origin: String,
    pub signer: std::sync::Arc<CheckpointSigner>,
}

const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// RFC 3339; entries at or after.
    from: Option<String>,
    /// RFC 3339; entries before.
    to: Option<String>,
    principal: Option<String>,
    agency: Option<String>,
    subject: Option<String>,
    action: Option<String>,
    /// `granted`, `denied` or `error`.
    decision: Option<String>,
    break_glass: Option<bool>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 1000, default 100.
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResults {
    pub entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EntryWithProof {
    pub entry: AuditEntry,
    pub leaf_hash: String,
    pub tree_size: u64,
    pub root_hash: String,
    pub inclusion_proof: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    pub first_root: String,
    pub second_root: String,
    pub proof: Vec<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TreeSizeQuery {
    /// Prove against this earlier tree size instead of the latest checkpoint.
    tree_size: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    first: u64,
    second: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    format: ExportFormat,
    from: Option<String>,
    to: Option<String>,
}

fn auditor(caller: &Caller) -> Result<(), ApiError> {
    caller.require_any(&[Role::IgAuditor])
}

pub fn parse_time(field: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    raw.map(|raw| {
        OffsetDateTime::parse(raw, &Rfc3339)
            .map(|t| crate::domain::Timestamp::from(t).micros())
            .map_err(|_| ApiError::invalid_field(field, "must be an RFC 3339 timestamp"))
    })
    .transpose()
}

fn hex_list(hashes: &[merkle::Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// The size of the latest checkpoint: entries beyond it have no proof yet.
async fn checkpointed_size(database: &Database) -> Result<u64, ApiError> {
    Ok(database
        .run(store::latest_checkpoint)
        .await?
        .map_or(0, |c| c.tree_size as u64))
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(SearchQuery),
    responses((status = 200, body = SearchResults),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn search(
    caller: Caller,
    database: web::Data<Database>,
    query: Query<SearchQuery>,
) -> Result<Json<SearchResults>, ApiError> {
    auditor(&caller)?;
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "must be between 1 and 1000",
        ));
    }
    if let Some(decision) = &query.decision {
        if Decision::parse(decision).is_none() {
            return Err(ApiError::invalid_field(
                "decision",
                "must be granted, denied or error",
            ));
        }
    }
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| ApiError::invalid_field("cursor", "is not a cursor from this API"))
        })
        .transpose()?;
    let filter = Filter {
        from_micros: parse_time("from", query.from.as_deref())?,
        to_micros: parse_time("to", query.to.as_deref())?,
        principal_id: query.principal,
        agency_id: query.agency,
        subject_id: query.subject,
        action: query.action,
        decision: query.decision,
        break_glass: query.break_glass,
        before_index: None,
    };
    let rows = database
        .run(move |conn| store::entries(conn, &filter, after, limit))
        .await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.leaf_index.to_string()))
        .flatten();
    let entries = rows.iter().map(store::decode).collect::<Result<_, _>>()?;
    Ok(Json(SearchResults {
        entries,
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/v1/audit/entries/{leaf_index}", tag = "audit", params(("leaf_index" = u64, Path), TreeSizeQuery),
    responses((status = 200, body = EntryWithProof),
              (status = 404, description = "No such entry, or not yet covered by a checkpoint", body = Problem, content_type = "application/problem+json")))]
pub async fn entry(
    caller: Caller,
    database: web::Data<Database>,
    leaf_index: web::Path<u64>,
    query: Query<TreeSizeQuery>,
) -> Result<Json<EntryWithProof>, ApiError> {
    auditor(&caller)?;
    let index = leaf_index.into_inner();
    let checkpointed = checkpointed_size(&database).await?;
    let size = query.tree_size.unwrap_or(checkpointed);
    if size > checkpointed || index >= size {
        return Err(ApiError::NotFound(
            "No entry at that index is covered by a checkpoint of that size yet.".into(),
        ));
    }
    let (data, root, proof) = database
        .run(move |conn| {
            let data = store::leaf_data(conn, index)?;
            let root = merkle::root(&mut StoredNodes(conn), size)?;
            let proof = merkle::inclusion_proof(&mut StoredNodes(conn), index, size)?;
            Ok((data, root, proof))
        })
        .await?;
    let data = data.ok_or_else(|| ApiError::NotFound("No entry at that index.".into()))?;
    let entry = AuditEntry::from_leaf_data(&data).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(EntryWithProof {
        entry,
        leaf_hash: hex::encode(merkle::leaf_hash(&data)),
        tree_size: size,
        root_hash: hex::encode(root),
        inclusion_proof: hex_list(&proof),
    }))
}

#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, description = "C2SP signed note", content_type = "text/plain"),
              (status = 404, description = "No checkpoint signed yet", body = Problem, content_type = "application/problem+json")))]
pub async fn checkpoint(
    caller: Caller,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    auditor(&caller)?;
    let latest = database
        .run(store::latest_checkpoint)
        .await?
        .ok_or_else(|| ApiError::NotFound("No checkpoint has been signed yet.".into()))?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(latest.signed_note))
}

#[utoipa::path(get, path = "/v1/audit/checkpoint/key", tag = "audit",
    responses((status = 200, description = "Signed-note verifier key", content_type = "text/plain")))]
pub async fn checkpoint_key(
    caller: Caller,
    context: web::Data<AuditContext>,
) -> Result<HttpResponse, ApiError> {
    auditor(&caller)?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(format!("{}\n", context.signer.verifier().encode())))
}

#[utoipa::path(get, path = "/v1/audit/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn consistency(
    caller: Caller,
    database: web::Data<Database>,
    query: Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    auditor(&caller)?;
    let ConsistencyQuery { first, second } = query.into_inner();
    if first == 0 || first > second {
        return Err(ApiError::invalid_field(
            "first",
            "must be at least 1 and at most second",
        ));
    }
    if second > checkpointed_size(&database).await? {
        return Err(ApiError::NotFound(
            "The second size is not covered by a checkpoint yet.".into(),
        ));
    }
    let (first_root, second_root, proof) = database
        .run(move |conn| {
            let mut nodes = StoredNodes(conn);
            Ok((
                merkle::root(&mut nodes, first)?,
                merkle::root(&mut nodes, second)?,
                merkle::consistency_proof(&mut nodes, first, second)?,
            ))
        })
        .await?;
    Ok(Json(ConsistencyProof {
        first,
        second,
        first_root: hex::encode(first_root),
        second_root: hex::encode(second_root),
        proof: hex_list(&proof),
    }))
}

#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", params(ExportQuery),
    responses((status = 200, description = "Streamed NDJSON (leaf data, one a line), CSV, or a FHIR R4 Bundle of AuditEvent")))]
pub async fn export(
    request: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    context: web::Data<AuditContext>,
    query: Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    auditor(&caller)?;
    let query = query.into_inner();
    let size = database.run(store::tree_size).await?;
    let filter = Filter {
        from_micros: parse_time("from", query.from.as_deref())?,
        to_micros: parse_time("to", query.to.as_deref())?,
        // The trail as it stands now, so a busy gateway cannot keep the export open.
        before_index: Some(size),
        ..Filter::default()
    };
    // The export's own entry is written before the first byte leaves; its response digest
    // stays empty because the body does not exist yet.
    let mut entry = entry_for(&request, Decision::Granted, "ok");
    entry.purpose = Some("audit".into());
    record(&request, entry).await?;

    let exporter = Exporter::new(query.format, &context.origin);
    let database = database.into_inner();
    let start = exporter.begin();
    let pages = stream::unfold(
        (exporter, None::<u64>, false),
        move |(mut exporter, after, done)| {
            let database = std::sync::Arc::clone(&database);
            let filter = filter.clone();
            async move {
                if done {
                    return None;
                }
                let page = database
                    .run(move |conn| store::entries(conn, &filter, after, PAGE))
                    .await;
                let chunk = match page {
                    Ok(page) if page.is_empty() => {
                        return Some((
                            Ok(web::Bytes::from(exporter.end())),
                            (exporter, after, true),
                        ))
                    }
                    Ok(page) => {
                        let next = page.last().map(|r| r.leaf_index as u64);
                        match exporter.page(&page) {
                            Ok(bytes) => {
                                return Some((Ok(web::Bytes::from(bytes)), (exporter, next, false)))
                            }
                            Err(error) => error,
                        }
                    }
                    Err(error) => error,
                };
                // Ends the stream with an error: the client sees a truncated body.
                tracing::error!(error = %chunk, "audit export failed part-way");
                Some((
                    Err(actix_web::error::ErrorInternalServerError("export failed")),
                    (exporter, after, true),
                ))
            }
        },
    );
    let body = futures_util::StreamExt::chain(
        stream::once(async move { Ok::<_, actix_web::Error>(web::Bytes::from(start)) }),
        pages,
    );
    Ok(HttpResponse::Ok()
        .content_type(query.format.content_type())
        .streaming(body))
}

/// Unreviewed break-glass accesses older than this are overdue.
const REVIEW_WITHIN_HOURS: i64 = 72;

#[derive(Debug, Serialize, ToSchema)]
pub struct Alert {
    pub leaf_index: u64,
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
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `justified` or `unjustified`.
    outcome: String,
    note: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reviewed {
    pub leaf_index: u64,
    pub outcome: String,
}

fn break_glass_reads() -> Filter {
    Filter {
        action: Some("records.read".into()),
        decision: Some("granted".into()),
        break_glass: Some(true),
        ..Filter::default()
    }
}

#[utoipa::path(get, path = "/v1/audit/alerts", tag = "audit",
    responses((status = 200, description = "Break-glass accesses not yet reviewed, oldest first", body = Alerts)))]
pub async fn alerts(
    caller: Caller,
    database: web::Data<Database>,
) -> Result<Json<Alerts>, ApiError> {
    auditor(&caller)?;
    let (rows, reviewed) = database
        .run(|conn| {
            // Every break-glass read, page by page: an unreviewed one is never cut off
            // by how many came before it.
            let mut rows = Vec::new();
            let mut after = None;
            loop {
                let page = store::entries(conn, &break_glass_reads(), after, PAGE)?;
                let Some(last) = page.last() else { break };
                after = Some(last.leaf_index as u64);
                rows.extend(page);
            }
            Ok((rows, crate::db::alerts::reviewed(conn)?))
        })
        .await?;
    let overdue_before =
        crate::domain::Timestamp::now().micros() - REVIEW_WITHIN_HOURS * 3600 * 1_000_000;
    let mut alerts = Vec::new();
    for row in rows.iter().filter(|r| !reviewed.contains(&r.leaf_index)) {
        let entry = store::decode(row)?;
        alerts.push(Alert {
            leaf_index: entry.leaf_index,
            time: entry.time,
            principal_id: entry.principal_id,
            agency_id: entry.agency_id,
            subject_id: entry.subject_id,
            justification: entry.justification,
            overdue: row.time_micros < overdue_before,
        });
    }
    Ok(Json(Alerts { alerts }))
}

#[utoipa::path(post, path = "/v1/audit/alerts/{leaf_index}/review", tag = "audit",
    params(("leaf_index" = u64, Path)), request_body = ReviewRequest,
    responses((status = 200, body = Reviewed),
              (status = 404, description = "No break-glass access at that index", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Already reviewed", body = Problem, content_type = "application/problem+json")))]
pub async fn review(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    keys: web::Data<crate::crypto::Keyring>,
    leaf_index: web::Path<u64>,
    body: Json<ReviewRequest>,
) -> Result<Json<Reviewed>, ApiError> {
    auditor(&caller)?;
    let index = leaf_index.into_inner();
    let body = body.into_inner();
    if !matches!(body.outcome.as_str(), "justified" | "unjustified") {
        return Err(ApiError::invalid_field(
            "outcome",
            "must be justified or unjustified",
        ));
    }
    let note = crate::routes::input::parse_text("note", &body.note, 4000)?;
    let (row, reviewed) = database
        .run(move |conn| {
            let filter = Filter {
                before_index: Some(index + 1),
                ..break_glass_reads()
            };
            let row = store::entries(conn, &filter, index.checked_sub(1), 1)?
                .into_iter()
                .find(|r| r.leaf_index as u64 == index);
            Ok((row, crate::db::alerts::reviewed(conn)?))
        })
        .await?;
    let row =
        row.ok_or_else(|| ApiError::NotFound("No break-glass access at that index.".into()))?;
    if reviewed.contains(&row.leaf_index) {
        return Err(ApiError::Conflict(
            "This alert has already been reviewed.".into(),
        ));
    }
    crate::routes::trail::annotate(&req, |a| a.subject_id = row.subject_id.clone());
    crate::routes::trail::record_before_change(&req).await?;
    let (keys, outcome, by) = (
        keys.into_inner(),
        body.outcome.clone(),
        caller.principal.id.to_string(),
    );
    database
        .run(move |conn| crate::db::alerts::insert_review(conn, &keys, index, &outcome, &note, &by))
        .await?;
    Ok(Json(Reviewed {
        leaf_index: index,
        outcome: body.outcome,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Access {
    pub time: String,
    /// `records.read`, `subject.lookup` or `consent.history`.
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

#[utoipa::path(get, path = "/v1/subjects/{subject_id}/access-report", tag = "audit",
    params(("subject_id" = String, Path)),
    responses((status = 200, description = "Every disclosure of the subject's records, from the audit trail", body = AccessReport)))]
pub async fn access_report(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    subject: web::Path<String>,
) -> Result<Json<AccessReport>, ApiError> {
    let id = crate::routes::input::path_subject(&req, &subject)?;
    caller.require_any(&[Role::IgAuditor, Role::Coordinator])?;
    let lookup = id.clone();
    database
        .run(move |conn| crate::db::subjects::summary(conn, &lookup))
        .await?
        .ok_or_else(|| ApiError::NotFound("No such subject.".into()))?;
    // Every granted disclosure of the subject's data: record reads, lookups by identifier
    // and consent reads. (Refused attempts disclosed nothing; changes disclosed nothing.)
    let filter = Filter {
        subject_id: Some(id.to_string()),
        decision: Some("granted".into()),
        ..Filter::default()
    };
    const DISCLOSURES: [&str; 3] = ["records.read", "subject.lookup", "consent.history"];
    let mut accesses = Vec::new();
    let mut after = None;
    loop {
        let page_filter = filter.clone();
        let page = database
            .run(move |conn| store::entries(conn, &page_filter, after, PAGE))
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.leaf_index as u64);
        for row in page
            .iter()
            .filter(|r| DISCLOSURES.contains(&r.action.as_str()))
        {
            let entry = store::decode(row)?;
            accesses.push(Access {
                action: entry.action,
                time: entry.time,
                agency_id: entry.agency_id,
                principal_id: entry.principal_id,
                purpose: entry.purpose,
                released: entry.released,
                break_glass: entry.break_glass,
            });
        }
    }
    Ok(Json(AccessReport {
        subject_id: id.to_string(),
        accesses,
    }))
}
