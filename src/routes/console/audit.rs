//! The IG auditor's pages: the audit trail searched with the API's filters, one entry with
//! its inclusion in the latest signed checkpoint checked and, for a read, its decision
//! replayed field by field, the break-glass queue with
//! review, a subject access report that prints cleanly, checkpoint status, and charts of
//! activity. The coordinator reaches the subject access report too.

use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::{
    form_token, given,
    guard::Submitted,
    page::{self, chart, form_again, london_time, ok, page, see_other, Errors, Field, Viewer},
    Services,
};
use crate::{
    app::{
        audit::{self, AlertsQuery, Inclusion, ReviewRequest, SearchQuery},
        explain::{self, FieldReplay, Replay, ReplayOutcome},
        reports::{self, ReportQuery},
        Call,
    },
    audit::{Action, AuditEntry, Decision, LeafIndex},
    charts,
    error::ApiError,
};

fn entry_link(index: u64) -> Markup {
    html! { a href=(format!("/console/audit/entries/{index}")) { "#" (index) } }
}

// ---- Search ----

/// The search form's fields: the API's filters, blank meaning "any".
#[derive(Debug, Default, Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    principal: String,
    #[serde(default)]
    agency: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    break_glass: String,
    #[serde(default)]
    cursor: String,
}

/// A date typed in the form (`YYYY-MM-DD`) as the start of that day, UTC; anything else is
/// passed on for the use case to judge.
fn instant(value: &str) -> Option<String> {
    given(value).map(|raw| {
        if raw.len() == 10 {
            format!("{raw}T00:00:00Z")
        } else {
            raw
        }
    })
}

impl SearchForm {
    fn query(&self) -> SearchQuery {
        SearchQuery {
            from: instant(&self.from),
            to: instant(&self.to),
            principal: given(&self.principal),
            agency: given(&self.agency),
            subject: given(&self.subject),
            action: given(&self.action),
            decision: given(&self.decision),
            break_glass: match self.break_glass.as_str() {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            },
            cursor: given(&self.cursor),
            limit: Some(50),
        }
    }

    /// This search's address with another cursor: the next page.
    fn next_page(&self, cursor: &str) -> String {
        let pairs = [
            ("from", &self.from),
            ("to", &self.to),
            ("principal", &self.principal),
            ("agency", &self.agency),
            ("subject", &self.subject),
            ("action", &self.action),
            ("decision", &self.decision),
            ("break_glass", &self.break_glass),
        ];
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.append_pair("cursor", cursor);
        format!("/console/audit?{}", query.finish())
    }
}

fn search_form(form: &SearchForm, errors: &Errors) -> Markup {
    let mut actions = vec![(String::new(), "any".to_owned())];
    actions.extend(
        Action::ALL
            .iter()
            .map(|a| (a.name().to_owned(), a.name().to_owned())),
    );
    let decisions: Vec<(String, String)> = ["", "granted", "denied", "error"]
        .iter()
        .map(|d| {
            (
                (*d).to_owned(),
                if d.is_empty() { "any" } else { d }.to_owned(),
            )
        })
        .collect();
    let break_glass: Vec<(String, String)> =
        [("", "any"), ("yes", "only break-glass"), ("no", "none")]
            .iter()
            .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
            .collect();
    html! {
        (errors.summary())
        form method="get" action="/console/audit" class="no-print" {
            (Field::new("from", "From").kind("date").value(&form.from).hint("Entries on or after this day (UTC).").error(errors).render())
            (Field::new("to", "Before").kind("date").value(&form.to).error(errors).render())
            (Field::new("principal", "Principal").value(&form.principal).error(errors).render())
            (Field::new("agency", "Agency").value(&form.agency).error(errors).render())
            (Field::new("subject", "Subject id").value(&form.subject).error(errors).render())
            (page::select("action", "Action", &actions, &form.action, errors))
            (page::select("decision", "Decision", &decisions, &form.decision, errors))
            (page::select("break_glass", "Break-glass", &break_glass, &form.break_glass, errors))
            button type="submit" { "Search" }
        }
    }
}

fn entries_table(entries: &[AuditEntry]) -> Markup {
    html! {
        div class="table-wrap" {
            table {
                thead { tr { th scope="col" { "Entry" } th scope="col" { "Time" } th scope="col" { "Who" }
                    th scope="col" { "Action" } th scope="col" { "Decision" } th scope="col" { "Subject" } th scope="col" { "Purpose" } } }
                tbody {
                    @for entry in entries {
                        tr class=[entry.break_glass.then_some("overdue")] {
                            td { (entry_link(entry.leaf_index)) }
                            td { (london_time(&entry.time)) }
                            td { (entry.principal_id.as_deref().unwrap_or("—")) br; span class="hint" { (entry.agency_id.as_deref().unwrap_or("")) } }
                            td { (entry.action) @if entry.break_glass { " " span class="tag" { "break-glass" } } }
                            td { (entry.decision.as_str()) @if entry.reason != "ok" { br; span class="hint" { (entry.reason) } } }
                            td { @if let Some(subject) = &entry.subject_id { code { (subject) } } @else { "—" } }
                            td { (entry.purpose.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn search(
    gateway: Services,
    call: Call,
    form: web::Query<SearchForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    let viewer = Viewer::of(&call);
    let results = match audit::search(&gateway, &call, form.query()).await {
        Ok(results) => results,
        Err(error) => {
            return form_again(error, |errors| {
                page(&viewer, "Audit trail", search_form(&form, errors))
            })
        }
    };
    Ok(ok(page(
        &viewer,
        "Audit trail",
        html! {
            (search_form(&form, &Errors::none()))
            h2 { "Entries" }
            @if results.entries.is_empty() { p { "No entries match." } }
            @else { (entries_table(&results.entries)) }
            @if let Some(cursor) = &results.next_cursor {
                p { a href=(form.next_page(cursor)) { "Next page" } }
            }
        },
    )))
}

// ---- One entry ----

pub async fn entry(
    gateway: Services,
    call: Call,
    index: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let checked = audit::checked_entry(&gateway, &call, LeafIndex(index.into_inner())).await?;
    let entry = &checked.entry;
    let replayable =
        entry.action == Action::RecordsRead.name() && entry.decision == Decision::Granted;
    let list = |items: &[String]| {
        if items.is_empty() {
            "—".to_owned()
        } else {
            items.join(", ")
        }
    };
    Ok(ok(page(
        &Viewer::of(&call),
        &format!("Audit entry #{}", entry.leaf_index),
        html! {
            @match checked.inclusion {
                Inclusion::Verified { tree_size } => p class="notice verified" role="status" {
                    "Verified: this entry is in the log committed to by the latest signed checkpoint (" (tree_size) " entries)." }
                Inclusion::Failed { tree_size } => p class="warning failed" role="alert" {
                    "NOT VERIFIED: the inclusion proof does not match the signed checkpoint of " (tree_size) " entries. Report this at once." }
                Inclusion::Pending => p class="notice" role="status" {
                    "Not yet covered by a checkpoint; checkpoints are signed every few seconds. Reload to check again." }
            }
            dl class="facts" {
                dt { "Time" } dd { (london_time(&entry.time)) }
                dt { "Action" } dd { (entry.action) }
                dt { "Decision" } dd { (entry.decision.as_str()) " (" (entry.reason) ")" }
                dt { "Principal" } dd { (entry.principal_id.as_deref().unwrap_or("—")) }
                dt { "Agency" } dd { (entry.agency_id.as_deref().unwrap_or("—")) }
                dt { "Roles" } dd { (list(&entry.roles)) }
                dt { "Subject" } dd { (entry.subject_id.as_deref().unwrap_or("—")) }
                dt { "Purpose" } dd { (entry.purpose.as_deref().unwrap_or("—")) }
                dt { "Break-glass" } dd { @if entry.break_glass { "yes" } @else { "no" } }
                dt { "Justification" } dd { (entry.justification.as_deref().unwrap_or("—")) }
                dt { "Consent version" } dd { (entry.consent_version.map_or("—".to_owned(), |v| v.to_string())) }
                dt { "Agreements" } dd { (list(&entry.agreements)) }
                dt { "Released" } dd { (list(&entry.released)) }
                dt { "Withheld" } dd { (list(&entry.withheld)) }
                dt { "Records" } dd { (list(&entry.record_ids)) }
                dt { "Request id" } dd { code { (entry.request_id) } }
                dt { "Certificate SHA-256" } dd { code { (entry.certificate_sha256.as_deref().unwrap_or("—")) } }
                dt { "Response SHA-256" } dd { code { (entry.response_sha256.as_deref().unwrap_or("—")) } }
                @if let Some(sha256) = &entry.record_types_sha256 {
                    dt { "Record types SHA-256" } dd { code { (sha256) } }
                }
                dt { "Leaf hash" } dd { code { (checked.leaf_hash) } }
            }
            @if replayable {
                p { a href=(format!("/console/audit/entries/{}/explain", entry.leaf_index)) { "Replay this decision: why each field was released or withheld" } }
            }
        },
    )))
}

/// A records read's decision, made again with what its entry names.
pub async fn explain(
    gateway: Services,
    call: Call,
    index: web::Path<u64>,
) -> Result<HttpResponse, ApiError> {
    let replay = explain::explain(&gateway, &call, LeafIndex(index.into_inner())).await?;
    Ok(ok(page(
        &Viewer::of(&call),
        &format!(
            "Why each field was released or withheld: entry #{}",
            replay.leaf_index.0
        ),
        replay_section(&replay),
    )))
}

/// The decision replayed: does it match what the entry says, and why each field was
/// released or withheld, in words.
fn replay_section(replay: &Replay) -> Markup {
    html! {
            p { a href=(format!("/console/audit/entries/{}", replay.leaf_index.0)) { "Back to entry #" (replay.leaf_index.0) } }
            @match replay.outcome {
                ReplayOutcome::Match => p class="notice" {
                    "Replayed: the rules, applied again to the agreements, consent and record types named below, release and withhold exactly what this entry records." }
                ReplayOutcome::Mismatch => div class="warning failed" role="alert" {
                    p { "MISMATCH: applied again, the rules do not give what this entry records. Report this at once." }
                    ul { @for difference in &replay.differences { li { (difference) } } }
                }
                ReplayOutcome::NotReplayable => div class="warning" role="alert" {
                    p { "This decision cannot be replayed: something it was made with is not stored as it was. Treat it like a mismatch." }
                    ul { @for difference in &replay.differences { li { (difference) } } }
                }
                ReplayOutcome::NotARelease => p class="notice" {
                    "This entry is not a granted read of records: nothing was released, so there is no decision to replay." }
            }
            @if let Some(inputs) = &replay.inputs {
                dl class="facts" {
                    dt { "Read by" } dd { (inputs.recipient) }
                    dt { "Purpose" } dd { (inputs.purpose) }
                    dt { "Break-glass" } dd { @if inputs.break_glass { "yes" } @else { "no" } }
                    dt { "Consent applied" } dd {
                        (inputs.consent.level.as_str())
                        @if let Some(version) = inputs.consent.version { " (version " (version) ")" }
                        @if !inputs.consent.excluded_categories.is_empty() { "; excludes " (inputs.consent.excluded_categories.join(", ")) }
                        @if let Some(agencies) = &inputs.consent.agencies { "; covers only " (agencies.join(", ")) }
                    }
                    dt { "Agreements" } dd { @if inputs.agreements.is_empty() { "—" } @else { (inputs.agreements.join(", ")) } }
                    dt { "Record types" } dd { "version " (inputs.record_types.version) ", first used " (london_time(&inputs.record_types.registered_at)) }
                }
            }
            @for record in &replay.records {
                div class="record" {
                    h3 { (record.record_type.as_deref().unwrap_or("Record")) " " span class="hint" { (record.holder.as_deref().unwrap_or("")) } }
                    p class="hint" { code { (record.record_id) } " · " (record_decision(record.decision)) }
                    @if !record.fields.is_empty() {
                        div class="table-wrap" {
                            table {
                                thead { tr { th scope="col" { "Field" } th scope="col" { "Category" } th scope="col" { "Outcome" } th scope="col" { "Why" } } }
                                tbody {
                                    @for field in &record.fields {
                                        tr {
                                            td { (field.field) }
                                            td { (field.category) }
                                            td { @if field.released { "released" } @else { span class="withheld" { "withheld" } } }
                                            td { (field_reason(field)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
    }
}

fn record_decision(decision: &str) -> &'static str {
    match decision {
        "whole" => "the reading agency holds this record: shown whole",
        "shared" => "shared under an agreement, field by field",
        "omitted" => "no agreement shares this type with the agency for this purpose: left out",
        "type_not_configured" => "its type was not configured: never shown",
        _ => "not stored",
    }
}

/// The rule that decided a field, in words a non-engineer can check.
fn field_reason(field: &FieldReplay) -> String {
    let agreement = field.agreement.as_deref().unwrap_or("an agreement");
    let level = field.required_level.map_or("", |level| level.as_str());
    match field.rule {
        "holder_own_record" => "the reading agency's own record".to_owned(),
        "agreement_share" => {
            format!("{agreement} shares it at consent level {level}, which the consent meets")
        }
        "agreement_share_without_consent" => {
            format!("{agreement} shares it without consent (its lawful basis)")
        }
        "emergency_category" => format!("break-glass: an emergency category of {agreement}"),
        "consent_level" => format!("the consent is below {level}, the level the agreement needs"),
        "excluded_category" => "the person excluded this category".to_owned(),
        "agency_scope" => "the person's consent does not cover this agency".to_owned(),
        "not_declared" => "not a field of the record type".to_owned(),
        _ => "no agreement shares this category with the agency for this purpose".to_owned(),
    }
}

// ---- Break-glass alerts ----

#[derive(Debug, Default, Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    note: String,
}

fn alerts_page(
    viewer: &Viewer,
    token: &str,
    alerts: &audit::Alerts,
    failed: Option<(u64, &Errors)>,
) -> Markup {
    page(
        viewer,
        "Break-glass alerts",
        html! {
            p { "Emergency accesses and attempts not yet reviewed, newest first. Those unreviewed after 72 hours are overdue." }
            @if alerts.alerts.is_empty() { p class="notice" { "Nothing is waiting for review." } }
            @for alert in &alerts.alerts {
                @let index = alert.leaf_index.0;
                @let errors = failed.filter(|(at, _)| *at == index).map(|(_, e)| e);
                section class=(if alert.overdue { "record overdue" } else { "record" }) aria-labelledby=(format!("a-{index}")) {
                    h2 id=(format!("a-{index}")) { "Entry " (entry_link(index)) @if alert.overdue { " " span class="tag failed" { "overdue" } } }
                    dl class="facts" {
                        dt { "Time" } dd { (london_time(&alert.time)) }
                        dt { "Who" } dd { (alert.principal_id.as_deref().unwrap_or("—")) " (" (alert.agency_id.as_deref().unwrap_or("—")) ")" }
                        dt { "Subject" } dd { (alert.subject_id.as_deref().unwrap_or("—")) }
                        dt { "Reason given" } dd { (alert.justification.as_deref().unwrap_or("—")) }
                    }
                    form method="post" action=(format!("/console/audit/alerts/{index}/review")) {
                        (page::form_token(token))
                        @if let Some(errors) = errors { (errors.summary()) }
                        fieldset id="f-outcome" {
                            legend { "Was this access justified?" }
                            label class="choice" { input type="radio" name="outcome" value="justified" required; " Justified" }
                            label class="choice" { input type="radio" name="outcome" value="unjustified"; " Unjustified" }
                        }
                        @let none = Errors::none();
                        (Field::new("note", "Review note").kind("textarea").required().error(errors.unwrap_or(&none)).render())
                        button type="submit" { "Record review" }
                    }
                }
            }
            @if let Some(cursor) = &alerts.next_cursor {
                p { a href=(format!("/console/audit/alerts?cursor={cursor}")) { "Older alerts" } }
            }
        },
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct AlertsPageQuery {
    /// Where the previous page ended ("Older alerts").
    cursor: Option<String>,
}

pub async fn alerts(
    gateway: Services,
    call: Call,
    query: web::Query<AlertsPageQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = AlertsQuery {
        cursor: query.into_inner().cursor,
        limit: None,
    };
    let alerts = audit::alerts(&gateway, &call, query).await?;
    Ok(ok(alerts_page(
        &Viewer::of(&call),
        &form_token(&gateway, &call),
        &alerts,
        None,
    )))
}

pub async fn review(
    gateway: Services,
    call: Call,
    index: web::Path<u64>,
    Submitted(form): Submitted<ReviewForm>,
) -> Result<HttpResponse, ApiError> {
    let index = index.into_inner();
    let request = ReviewRequest {
        outcome: form.outcome,
        note: form.note,
    };
    match audit::review(&gateway, &call, LeafIndex(index), request).await {
        Ok(_) => Ok(see_other("/console/audit/alerts")),
        Err(error @ crate::app::AppError::Invalid { .. }) => {
            let alerts = audit::alerts(&gateway, &call, AlertsQuery::default()).await?;
            let token = form_token(&gateway, &call);
            form_again(error, |errors| {
                alerts_page(&Viewer::of(&call), &token, &alerts, Some((index, errors)))
            })
        }
        Err(error) => Err(error.into()),
    }
}

// ---- Subject access report ----

/// What a disclosure released, in words for the person the report is about: for a read,
/// each record type with the fields released from it (the entry's `type.field:category`).
fn shared_in_words(action: &str, released: &[String]) -> Markup {
    let mut by_type: Vec<(String, Vec<String>)> = Vec::new();
    for label in released {
        let field_path = label.split(':').next().unwrap_or(label);
        let Some((record_type, field)) = field_path.rsplit_once('.') else {
            continue;
        };
        let record_type = record_type.replace(['.', '_'], " ");
        let field = field.replace('_', " ");
        match by_type.iter_mut().find(|(t, _)| *t == record_type) {
            Some((_, fields)) if !fields.contains(&field) => fields.push(field),
            Some(_) => {}
            None => by_type.push((record_type, vec![field])),
        }
    }
    html! {
        @match action {
            "subject.lookup" => "That you are in the programme (found by NHS number or PNC id)",
            "consent.history" => "Your consent, its history and how it was recorded",
            _ => @if by_type.is_empty() { "Nothing beyond that records exist" } @else {
                ul { @for (record_type, fields) in &by_type {
                    li { strong { (record_type) } ": " (fields.join(", ")) }
                } }
            },
        }
    }
}

pub async fn access_report(
    gateway: Services,
    call: Call,
    subject: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let report = audit::access_report(&gateway, &call, &subject).await?;
    let today = crate::app::input::today().to_string();
    Ok(ok(page(
        &Viewer::of(&call),
        "Who has seen your information",
        html! {
            p { "Subject access report for the person with reference " code { (report.subject_id) } ", produced on " (page::day(&today)) "." }
            p { "This lists every time information about you was shared through the Concordat gateway: when, by which organisation "
                "and person, for what purpose, and what was shared. Attempts that were refused shared nothing and are not listed." }
            p class="no-print" { "Use your browser's Print command to print this report or save it as a PDF." }
            @if report.accesses.is_empty() { p { "No information about you has been shared." } }
            @else {
                div class="table-wrap" {
                    table {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Organisation" } th scope="col" { "Person" }
                            th scope="col" { "Purpose" } th scope="col" { "What was shared" } } }
                        tbody {
                            @for access in &report.accesses {
                                tr {
                                    td { (london_time(&access.time)) }
                                    td { (access.agency_id.as_deref().unwrap_or("—")) }
                                    td { (access.principal_id.as_deref().unwrap_or("—")) }
                                    td { (access.purpose.as_deref().map_or("—".to_owned(), |p| p.replace('_', " ")))
                                        @if access.break_glass { br; strong { "Emergency access" } } }
                                    td { (shared_in_words(&access.action, &access.released)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )))
}

// ---- Checkpoint and activity ----

pub async fn checkpoint(gateway: Services, call: Call) -> Result<HttpResponse, ApiError> {
    let status = audit::checkpoint_status(&gateway, &call).await?;
    Ok(ok(page(
        &Viewer::of(&call),
        "Checkpoint",
        html! {
            @match status {
                None => p class="notice" { "No checkpoint has been signed yet." },
                Some(status) => {
                    @if status.signature_verified {
                        p class="notice verified" role="status" { "Signature verified with the gateway's checkpoint key." }
                    } @else {
                        p class="warning failed" role="alert" { "The latest checkpoint's signature does NOT verify. Report this at once." }
                    }
                    dl class="facts" {
                        dt { "Entries covered" } dd { (status.size) }
                        dt { "Signed" } dd { (london_time(&status.signed_at.to_rfc3339())) }
                        dt { "Root hash" } dd { code { (status.root_hash) } }
                        dt { "Verifier key" } dd { code { (status.verifier_key) } }
                    }
                    p { "Independent witnesses should keep the checkpoint and check each new one extends it." }
                }
            }
        },
    )))
}

pub async fn activity(gateway: Services, call: Call) -> Result<HttpResponse, ApiError> {
    let activity = audit::activity(&gateway, &call).await?;
    let total: u64 = activity
        .accesses
        .iter()
        .flat_map(|(_, counts)| counts)
        .sum();
    let denied: u64 = activity.denied.iter().sum();
    Ok(ok(page(
        &Viewer::of(&call),
        "Activity",
        html! {
            p { "The last " (audit::ACTIVITY_DAYS) " days (UTC): " (total) " disclosures granted and " (denied) " requests denied." }
            h2 { "Disclosures by agency" }
            (chart(charts::daily_bars_svg("Disclosures granted per day, by agency", &activity.days, &activity.accesses)))
            h2 { "Denied requests" }
            (chart(charts::daily_bars_svg("Requests denied per day", &activity.days, &[("denied".to_owned(), activity.denied.clone())])))
        },
    )))
}

// ---- Service use report ----

#[derive(Debug, Default, Deserialize)]
pub struct ReportForm {
    #[serde(default)]
    as_of: String,
}

pub async fn service_usage(
    gateway: Services,
    call: Call,
    form: web::Query<ReportForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    let query = ReportQuery {
        windows: None,
        as_of: given(&form.as_of),
    };
    let viewer = Viewer::of(&call);
    let report_form = |errors: &Errors| {
        html! {
            form method="get" action="/console/reports/service-usage" class="no-print" {
                (Field::new("as_of", "As of").kind("date").value(&form.as_of).hint("Blank for today; moved back to the end of the previous month.").error(errors).render())
                button type="submit" { "Show" }
            }
        }
    };
    let report = match reports::service_usage(&gateway, &call, query).await {
        Ok(report) => report,
        Err(error) => {
            return form_again(error, |errors| {
                page(&viewer, "Service use", report_form(errors))
            })
        }
    };
    Ok(ok(page(
        &viewer,
        "Service use before and after enrolment",
        html! {
            (report_form(&Errors::none()))
            p { "As of " (page::day(&report.as_of)) ". Counts below " (report.suppression_threshold) " are suppressed (shown as <" (report.suppression_threshold) ") so that no one can be recognised." }
            (chart(charts::service_usage_svg(&report)))
            @for window in &report.windows {
                h2 { (window.months) " months (subjects: " (window.subjects) ")" }
                div class="table-wrap" {
                    table {
                        thead { tr { th scope="col" { "Measure" } th scope="col" { "Before" } th scope="col" { "After" } th scope="col" { "Change" } } }
                        tbody { @for row in &window.measures {
                            tr { td { (row.label) } td { (row.before) } td { (row.after) }
                                td { @match row.change_percent { Some(c) => (format!("{c:+.1}%")), None => "—" } } }
                        } }
                    }
                }
            }
        },
    )))
}
