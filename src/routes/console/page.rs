//! The console's page frame and the pieces every page is built from: the navigation each
//! role sees, form fields with their error beside them, dates in Europe/London, and the
//! plain refusal page. Every value goes through maud, which escapes it.

use actix_web::{
    body::BoxBody,
    http::{
        header::{self, HeaderValue},
        StatusCode,
    },
    HttpResponse,
};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::{
    app::{AppError, Call},
    domain::{Principal, Role},
    error::ApiError,
};

pub const HTML: &str = "text/html; charset=utf-8";
/// Where the stylesheet is served; its name changes with the gateway's version so that a
/// browser never keeps an old one.
pub const STYLESHEET: &str = concat!(
    "/console/assets/console-",
    env!("CARGO_PKG_VERSION"),
    ".css"
);

/// Who is looking, as the page frame shows them.
pub struct Viewer<'a> {
    pub principal: Option<&'a Principal>,
}

impl<'a> Viewer<'a> {
    pub fn of(call: &'a Call) -> Self {
        Self {
            principal: call.principal(),
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.principal.is_some_and(|p| p.has_role(role))
    }
}

/// The links each role's work starts from.
fn navigation(viewer: &Viewer) -> Vec<(&'static str, &'static str)> {
    let mut links = vec![("/console", "Home")];
    if viewer.has(Role::Coordinator) {
        links.extend([
            ("/console/caseload", "Caseload"),
            ("/console/subjects/new", "Enrol a person"),
        ]);
    }
    if viewer.has(Role::Coordinator) || viewer.has(Role::Practitioner) {
        links.push(("/console/find", "Find a person"));
    }
    if viewer.has(Role::IgAuditor) {
        links.extend([
            ("/console/audit", "Audit trail"),
            ("/console/audit/alerts", "Break-glass alerts"),
            ("/console/audit/activity", "Activity"),
            ("/console/audit/checkpoint", "Checkpoint"),
        ]);
    }
    if viewer.has(Role::IgAuditor) || viewer.has(Role::IgLead) {
        links.push(("/console/agreements", "Agreements"));
    }
    if viewer.has(Role::IgAuditor) || viewer.has(Role::Coordinator) {
        links.push(("/console/reports/service-usage", "Service use"));
    }
    links
}

/// A whole page: header with who is signed in, navigation, the page's own content.
pub fn page(viewer: &Viewer, title: &str, content: Markup) -> Markup {
    frame(viewer, title, content, Assets::Linked)
}

/// Whether a page links the console's stylesheet and icon.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Assets {
    Linked,
    /// For a caller the gateway does not know, who would be refused them too.
    Omitted,
}

fn frame(viewer: &Viewer, title: &str, content: Markup, assets: Assets) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – Concordat" }
                @if assets == Assets::Linked {
                    link rel="stylesheet" href=(STYLESHEET);
                    link rel="icon" href="/console/assets/icon.svg" type="image/svg+xml";
                }
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="banner" {
                    p class="brand" { "Concordat" }
                    @if let Some(principal) = viewer.principal {
                        p class="who" {
                            "Signed in as " strong { (principal.id) } " (" (principal.agency) ")"
                        }
                    }
                }
                nav aria-label="Console" {
                    ul {
                        @for (href, label) in navigation(viewer) {
                            li { a href=(href) { (label) } }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (content)
                }
                footer { p { "Every page you open here is recorded in the audit trail." } }
            }
        }
    }
}

/// A page as a response; no page that may show personal data is kept by the browser or a
/// proxy (`Cache-Control` is set on every console response by the guard).
pub fn respond(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HTML))
        .body(markup.into_string())
}

pub fn ok(markup: Markup) -> HttpResponse {
    respond(StatusCode::OK, markup)
}

/// After a change, the page that shows its result (303, so a reload does not repeat it).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// A form shown again with what was wrong beside the field, when a use case found its
/// input invalid: 422, with the refusal kept on the response so that the audit entry
/// records its reason. Any other error goes on to the refusal page.
pub fn form_again(
    error: AppError,
    render: impl FnOnce(&Errors) -> Markup,
) -> Result<HttpResponse, ApiError> {
    let AppError::Invalid { field, message } = error else {
        return Err(error.into());
    };
    let markup = render(&Errors::one(&field, &message));
    Ok(shown_with(
        ApiError::from(AppError::Invalid { field, message }),
        markup,
    ))
}

/// A page drawn for a refused request (a form with its errors, say): the error's status,
/// and the error kept on the response for the audit entry's reason.
pub fn shown_with(error: ApiError, markup: Markup) -> HttpResponse {
    let mut response = HttpResponse::from_error(error);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(HTML));
    response.set_body(BoxBody::new(markup.into_string()))
}

/// The refusal or failure page: what happened in plain words, the request id to quote,
/// never a stack trace or stored data.
pub fn refusal(status: StatusCode, detail: &str, code: &str, request_id: Option<&str>) -> Markup {
    let title = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Already done",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
        status if status.is_server_error() => "Something went wrong",
        _ => "Cannot do that",
    };
    let viewer = Viewer { principal: None };
    // An unidentified caller's browser would fetch the stylesheet and icon only to be
    // refused again (and audited again) for each.
    let assets = if matches!(code, "unknown_principal" | "certificate_rejected") {
        Assets::Omitted
    } else {
        Assets::Linked
    };
    frame(
        &viewer,
        title,
        html! {
            p class="refusal" { (detail) }
            dl class="facts" {
                dt { "Reason code" } dd { code { (code) } }
                @if let Some(id) = request_id {
                    dt { "Request id" } dd { code { (id) } }
                }
            }
            p { "This refusal is recorded in the audit trail. " a href="/console" { "Back to the console" } }
        },
        assets,
    )
}

/// A labelled input with its hint and, when the last submission was wrong, its error
/// beside it (and tied to it for screen readers).
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub required: bool,
    pub hint: Option<&'a str>,
    pub error: Option<&'a str>,
}

impl<'a> Field<'a> {
    pub fn new(name: &'a str, label: &'a str) -> Self {
        Self {
            name,
            label,
            kind: "text",
            value: "",
            required: false,
            hint: None,
            error: None,
        }
    }

    pub fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }

    pub fn value(mut self, value: &'a str) -> Self {
        self.value = value;
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    pub fn error(mut self, errors: &'a Errors) -> Self {
        self.error = errors.for_field(self.name);
        self
    }

    pub fn render(&self) -> Markup {
        let id = format!("f-{}", self.name);
        let described = self.described_by(&id);
        html! {
            div class=(if self.error.is_some() { "field invalid" } else { "field" }) {
                label for=(id) { (self.label) @if self.required { " " span class="req" { "(required)" } } }
                @if let Some(hint) = self.hint { p class="hint" id=(format!("{id}-hint")) { (hint) } }
                @if let Some(error) = self.error { p class="error" id=(format!("{id}-error")) { "Error: " (error) } }
                @if self.kind == "textarea" {
                    textarea id=(id) name=(self.name) rows="4" required[self.required]
                        aria-invalid=[self.error.map(|_| "true")] aria-describedby=[described.as_deref()] { (self.value) }
                } @else {
                    input id=(id) name=(self.name) type=(self.kind) value=(self.value) required[self.required]
                        aria-invalid=[self.error.map(|_| "true")] aria-describedby=[described.as_deref()];
                }
            }
        }
    }

    fn described_by(&self, id: &str) -> Option<String> {
        let parts: Vec<String> = [
            self.hint.map(|_| format!("{id}-hint")),
            self.error.map(|_| format!("{id}-error")),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// A select of `options` (value, label) with the label, the current value chosen, and the
/// error beside it.
pub fn select(
    name: &str,
    label: &str,
    options: &[(String, String)],
    chosen: &str,
    errors: &Errors,
) -> Markup {
    let id = format!("f-{name}");
    let error = errors.for_field(name);
    html! {
        div class=(if error.is_some() { "field invalid" } else { "field" }) {
            label for=(id) { (label) }
            @if let Some(error) = error { p class="error" id=(format!("{id}-error")) { "Error: " (error) } }
            select id=(id) name=(name) aria-describedby=[error.map(|_| format!("{id}-error"))] {
                @for (value, text) in options {
                    option value=(value) selected[value == chosen] { (text) }
                }
            }
        }
    }
}

/// A field's name as the form's label reads: a record's `data.reported_at` is "reported at".
fn label_of(field: &str) -> String {
    field
        .strip_prefix("data.")
        .unwrap_or(field)
        .replace('_', " ")
}

/// What was wrong with a submitted form, by field name.
#[derive(Debug, Default)]
pub struct Errors(Vec<(String, String)>);

impl Errors {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn one(field: &str, message: &str) -> Self {
        let mut errors = Self::default();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: &str, message: &str) {
        self.0.push((field.to_owned(), message.to_owned()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first problem as the use-case error it stands for, for the audit entry's reason.
    pub fn to_app_error(&self) -> AppError {
        self.0.first().map_or_else(
            || AppError::invalid("form", "could not be read"),
            |(field, message)| AppError::invalid(field, message.clone()),
        )
    }

    pub fn for_field(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, message)| message.as_str())
    }

    /// The summary at the top of a form that failed, linking to each field.
    pub fn summary(&self) -> Markup {
        html! {
            @if !self.0.is_empty() {
                div class="error-summary" role="alert" {
                    h2 { "There is a problem" }
                    ul {
                        @for (field, message) in &self.0 {
                            li { a href=(format!("#f-{field}")) { (label_of(field)) ": " (message) } }
                        }
                    }
                }
            }
        }
    }
}

/// The hidden field that proves a form came from a page the gateway served this principal.
pub fn form_token(token: &str) -> Markup {
    html! { input type="hidden" name="form_token" value=(token); }
}

/// An RFC 3339 instant as people in England read it: local time with GMT or BST.
pub fn london_time(rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .ok()
        .and_then(|instant| instant.in_tz("Europe/London").ok())
        .map_or_else(
            || rfc3339.to_owned(),
            |zoned| zoned.strftime("%-d %b %Y, %H:%M %Z").to_string(),
        )
}

/// A calendar date (`YYYY-MM-DD`) written out: `29 Nov 2026`.
pub fn day(date: &str) -> String {
    date.parse::<jiff::civil::Date>()
        .map_or_else(|_| date.to_owned(), |d| d.strftime("%-d %b %Y").to_string())
}

/// A trusted SVG drawn by [`crate::charts`] (which escapes its text), inline so that it
/// needs no second request and no inline style.
pub fn chart(svg: String) -> Markup {
    html! { figure class="chart" { (PreEscaped(svg)) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_shown_in_london_time_with_the_zone_in_force() {
        assert_eq!(london_time("2026-07-01T12:30:00Z"), "1 Jul 2026, 13:30 BST");
        assert_eq!(
            london_time("2026-11-29T09:05:00.123456Z"),
            "29 Nov 2026, 09:05 GMT"
        );
        assert_eq!(london_time("not a time"), "not a time");
        assert_eq!(day("2026-03-05"), "5 Mar 2026");
    }

    #[test]
    fn a_field_in_error_says_so_beside_it_and_to_screen_readers() {
        let errors = Errors::one("given_name", "is required");
        let html = Field::new("given_name", "Given name")
            .error(&errors)
            .render()
            .into_string();
        assert!(html.contains(r#"aria-invalid="true""#), "{html}");
        assert!(html.contains("Error: is required"), "{html}");
        assert!(html.contains(r#"<label for="f-given_name">"#), "{html}");
    }
}
