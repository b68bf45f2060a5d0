//! Information-sharing agreements: the list with parties, versions, approvals, status and
//! review dates (IG auditors see all, IG leads their agency's), and the IG lead's
//! approval of a draft version and suspension.

use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::{
    form_token,
    guard::Submitted,
    page::{self, day, form_again, london_time, ok, page, see_other, Errors, Field, Viewer},
    Services,
};
use crate::{
    app::{
        agreements::{self, AgreementView, VersionView},
        input, Call,
    },
    domain::{
        agreement::{AgreementRef, AgreementStatus},
        Role,
    },
    error::ApiError,
};

fn agreement_path(id: &str) -> String {
    format!("/console/agreements/{id}")
}

/// Whether `version`, or a later one, came into force: by its last approval, or imported
/// by an operator. Such a version takes no more approvals (the gateway refuses them), so
/// none is waited for or offered.
fn settled(agreement: &AgreementView, version: i32) -> bool {
    agreement.events.iter().any(|e| {
        (e.kind == "approved" || e.kind == "imported") && e.version.is_some_and(|v| v >= version)
    })
}

/// Whether an operator imported `version` itself, with no approvals in the gateway.
fn imported(agreement: &AgreementView, version: i32) -> bool {
    agreement
        .events
        .iter()
        .any(|e| e.kind == "imported" && e.version == Some(version))
}

/// The title of the version in force, or of the newest when none is: a draft's new title
/// is not the agreement's until it is approved.
fn title(agreement: &AgreementView) -> &str {
    agreement
        .versions
        .iter()
        .rev()
        .find(|v| Some(v.version) == agreement.in_force_version)
        .or(agreement.versions.last())
        .map_or(agreement.id.as_str(), |v| v.document.title.as_str())
}

fn review_cell(version: Option<&VersionView>, today: &str) -> Markup {
    html! {
        @if let Some(version) = version {
            (day(&version.document.review_by))
            @if version.document.review_by.as_str() < today { " " span class="tag failed" { "review overdue" } }
        } @else { "—" }
    }
}

pub async fn list(gateway: Services, call: Call) -> Result<HttpResponse, ApiError> {
    let listed = agreements::list(&gateway, &call).await?;
    let today = input::today().to_string();
    Ok(ok(page(
        &Viewer::of(&call),
        "Agreements",
        html! {
            @if listed.agreements.is_empty() { p { "No agreements your agency is party to." } }
            @else {
                div class="table-wrap" {
                    table {
                        thead { tr { th scope="col" { "Agreement" } th scope="col" { "Parties" } th scope="col" { "Status" }
                            th scope="col" { "In force" } th scope="col" { "Versions" } th scope="col" { "Review by" } } }
                        tbody {
                            @for agreement in &listed.agreements {
                                @let latest = agreement.versions.last();
                                tr {
                                    td { a href=(agreement_path(&agreement.id)) { (title(agreement)) }
                                        br; code { (agreement.id) } }
                                    td { (latest.map_or(String::new(), |v| v.document.parties.join(", "))) }
                                    td { (agreement.status.as_str()) }
                                    td { (agreement.in_force_version.map_or("—".to_owned(), |v| format!("version {v}"))) }
                                    td { (agreement.versions.len()) }
                                    td { (review_cell(latest, &today)) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )))
}

#[derive(Debug, Default, Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
}

fn detail_page(
    viewer: &Viewer,
    token: &str,
    agreement: &AgreementView,
    reason: &str,
    errors: &Errors,
) -> Markup {
    let today = input::today().to_string();
    let my_agency = viewer.principal.map(|p| p.agency.to_string());
    let is_lead = viewer.has(Role::IgLead);
    let may_govern = is_lead
        && agreement
            .versions
            .last()
            .zip(my_agency.as_ref())
            .is_some_and(|(v, mine)| v.document.parties.contains(mine));
    page(
        viewer,
        title(agreement),
        html! {
            (errors.summary())
            dl class="facts" {
                dt { "Id" } dd { code { (agreement.id) } }
                dt { "Status" } dd { strong { (agreement.status.as_str()) } }
                dt { "In force" } dd { (agreement.in_force_version.map_or("no version".to_owned(), |v| format!("version {v}"))) }
            }
            @for version in agreement.versions.iter().rev() {
                @let document = &version.document;
                @let settled = settled(agreement, version.version);
                @let approved: Vec<&str> = version.approvals.iter().map(|a| a.agency.as_str()).collect();
                @let waiting: Vec<&String> = if settled { Vec::new() } else {
                    document.parties.iter().filter(|p| !approved.contains(&p.as_str())).collect()
                };
                section class="record" aria-labelledby=(format!("v-{}", version.version)) {
                    h2 id=(format!("v-{}", version.version)) { "Version " (version.version) }
                    dl class="facts" {
                        dt { "Title" } dd { (document.title) }
                        dt { "Parties" } dd { (document.parties.join(", ")) }
                        dt { "Lawful basis" } dd { (document.lawful_basis.join("; ")) }
                        dt { "Valid" } dd { (day(&document.valid_from)) " to " (day(&document.valid_until)) }
                        dt { "Review by" } dd { (review_cell(Some(version), &today)) }
                        dt { "Drafted" } dd { (london_time(&version.created_at)) " by " (version.created_by) }
                        dt { "Approvals" } dd {
                            @for approval in &version.approvals {
                                (approval.agency) " by " (approval.approved_by) ", " (london_time(&approval.approved_at)) br;
                            }
                            @if version.approvals.is_empty() && imported(agreement, version.version) { "none needed: imported by an operator" }
                            @if !waiting.is_empty() { "Waiting for: " (waiting.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")) }
                        }
                    }
                    h3 { "What is shared" }
                    ul {
                        @for share in &document.shares {
                            li { (share.provider) " shares " (share.record_types.join(", ")) " with " (share.recipients.join(", "))
                                " for " (share.purposes.join(", ").replace('_', " ")) ": "
                                (share.categories.iter().map(|(c, level)| format!("{c} (consent {level})")).collect::<Vec<_>>().join(", "))
                                @if !share.emergency_categories.is_empty() { "; in an emergency also " (share.emergency_categories.join(", ")) } }
                        }
                    }
                    @if is_lead && my_agency.as_ref().is_some_and(|mine| waiting.contains(&mine)) && agreement.status != AgreementStatus::Terminated {
                        form method="post" action=(format!("{}/versions/{}/approve", agreement_path(&agreement.id), version.version)) {
                            (page::form_token(token))
                            button type="submit" { "Approve version " (version.version) " for " (my_agency.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            @if may_govern && agreement.status == AgreementStatus::Active {
                h2 { "Suspend" }
                p { "Suspending stops all sharing under this agreement at once, until a version is approved again." }
                form method="post" action=(format!("{}/suspend", agreement_path(&agreement.id))) {
                    (page::form_token(token))
                    (Field::new("reason", "Reason").kind("textarea").value(reason).required().error(errors).render())
                    button type="submit" class="danger" { "Suspend agreement" }
                }
            }
            @if !agreement.events.is_empty() {
                h2 { "History" }
                ul { @for event in &agreement.events {
                    li { (london_time(&event.recorded_at)) ": " (event.kind)
                        @if let Some(v) = event.version { " version " (v) }
                        " by " (event.recorded_by)
                        @if let Some(reason) = &event.reason { " — " (reason) } }
                } }
            }
        },
    )
}

pub async fn detail(
    gateway: Services,
    call: Call,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let agreement = agreements::get(&gateway, &call, &id).await?;
    Ok(ok(detail_page(
        &Viewer::of(&call),
        &form_token(&gateway, &call),
        &agreement,
        "",
        &Errors::none(),
    )))
}

#[derive(Debug, Default, Deserialize)]
pub struct Empty {}

pub async fn approve(
    gateway: Services,
    call: Call,
    path: web::Path<(String, i32)>,
    Submitted(_): Submitted<Empty>,
) -> Result<HttpResponse, ApiError> {
    let (id, version) = path.into_inner();
    agreements::approve(&gateway, &call, AgreementRef::new(id.clone(), version)).await?;
    Ok(see_other(&agreement_path(&id)))
}

pub async fn suspend(
    gateway: Services,
    call: Call,
    id: web::Path<String>,
    Submitted(form): Submitted<ReasonForm>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    match agreements::suspend(&gateway, &call, &id, &form.reason).await {
        Ok(_) => Ok(see_other(&agreement_path(&id))),
        Err(error @ crate::app::AppError::Invalid { .. }) => {
            let agreement = agreements::get(&gateway, &call, &id).await?;
            form_again(error, |errors| {
                detail_page(
                    &Viewer::of(&call),
                    &form_token(&gateway, &call),
                    &agreement,
                    &form.reason,
                    errors,
                )
            })
        }
        Err(error) => Err(error.into()),
    }
}
