//! The web console: server-rendered pages for coordinators, practitioners, IG auditors and
//! IG leads, on the mutual-TLS listener, where the browser's client certificate is the
//! login. Like the API's handlers, every page extracts input, calls one use case of
//! [`crate::app`] and renders its answer, so the console can do nothing the API would
//! refuse; its routes are in the one route table ([`super::ROUTES`]) with the audit
//! action each page is recorded under, and a page that shows personal data leaves the
//! same entry as the API read it mirrors.
//!
//! No script is served at all; forms are plain HTML. [`guard`] holds the defences a
//! browser needs that an API client does not.

pub mod agreements;
pub mod assets;
pub mod audit;
pub mod guard;
pub mod page;
pub mod people;
pub mod records;

use actix_web::{web, HttpResponse};
use maud::html;

use self::page::{ok, page, Viewer};
use crate::{
    app::{Call, Gateway},
    domain::Role,
};

pub use guard::{guard, present};

/// This principal's form token, for the forms on the page being drawn.
fn form_token(gateway: &Gateway, call: &Call) -> String {
    call.principal()
        .map(|p| gateway.keys.form_token(p.id.as_str()))
        .unwrap_or_default()
}

/// The start page: who is signed in, with which roles, and where their work is.
pub async fn home(call: Call) -> HttpResponse {
    let viewer = Viewer::of(&call);
    let roles: Vec<&str> = call
        .principal()
        .map(|p| p.roles.iter().map(|r| r.as_str()).collect())
        .unwrap_or_default();
    let has = |role| viewer.has(role);
    ok(page(
        &viewer,
        "Concordat console",
        html! {
            p { "Your certificate identifies you as a principal with the role "
                strong { (roles.join(", ")) } ". What you can see here is exactly what the "
                "information-sharing agreements and each person's consent allow your agency." }
            ul {
                @if has(Role::Coordinator) {
                    li { a href="/console/caseload" { "Caseload" } ": people enrolled, their consent and when it is due for review." }
                    li { a href="/console/subjects/new" { "Enrol a person" } }
                }
                @if has(Role::Coordinator) || has(Role::Practitioner) {
                    li { a href="/console/find" { "Find a person" } " by NHS number or PNC id." }
                }
                @if has(Role::IgAuditor) {
                    li { a href="/console/audit" { "Search the audit trail" } }
                    li { a href="/console/audit/alerts" { "Review break-glass accesses" } }
                    li { a href="/console/audit/activity" { "Activity charts" } }
                    li { a href="/console/audit/checkpoint" { "Checkpoint status" } }
                }
                @if has(Role::IgAuditor) || has(Role::IgLead) {
                    li { a href="/console/agreements" { "Information-sharing agreements" } }
                }
                @if has(Role::IgAuditor) || has(Role::Coordinator) {
                    li { a href="/console/reports/service-usage" { "Service use before and after enrolment" } }
                }
            }
        },
    ))
}

/// An optional form field: blank means not given.
fn given(value: &str) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// A page about one subject.
fn subject_path(subject: &str, rest: &str) -> String {
    format!("/console/subjects/{subject}{rest}")
}

/// The purposes a practitioner may choose from, as (value, label) for a select.
fn purpose_options() -> Vec<(String, String)> {
    crate::domain::purpose::Purpose::ALL
        .iter()
        .map(|p| (p.as_str().to_owned(), p.as_str().replace('_', " ")))
        .collect()
}

/// Gateway services for a handler.
type Services = web::Data<Gateway>;
