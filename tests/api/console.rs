//! The web console's rules, page by page: form tokens and same-origin checks against
//! cross-site request forgery (refused and audited), roles on every page, plain refusal
//! pages, the security headers, and hostile text shown only as text.

use concordat::{
    audit::{AuditEntry, Decision},
    domain::Role,
    routes::ROUTES,
};
use serde_json::json;

use crate::helpers::{spawn_app, TestApp};

struct Browsers {
    coordinator: reqwest::Client,
    practitioner: reqwest::Client,
    auditor: reqwest::Client,
}

async fn browsers(app: &TestApp) -> Browsers {
    Browsers {
        coordinator: app.browser(
            &app.register("coordinator", "iow-recovery", &[Role::Coordinator])
                .await,
        ),
        practitioner: app.browser(
            &app.register("police-mentor", "hampshire-police", &[Role::Practitioner])
                .await,
        ),
        auditor: app.browser(
            &app.register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
                .await,
        ),
    }
}

/// The form token in a page the console served.
fn form_token(page: &str) -> String {
    let marker = r#"name="form_token" value=""#;
    let start = page.find(marker).expect("page has a form token") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Posts a form as Chromium does from the console's own page: under the console's
/// `Referrer-Policy: no-referrer` its `Origin` is `null`, and fetch metadata says
/// same-origin.
async fn submit(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(app.url(path))
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .form(form)
        .send()
        .await
        .unwrap()
}

fn enrolment<'a>(
    token: &'a str,
    given: &'a str,
    family: &'a str,
    nhs: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("form_token", token),
        ("nhs_number", nhs),
        ("given_name", given),
        ("family_name", family),
        ("date_of_birth", "1985-06-01"),
        ("enrolled_on", "2026-01-15"),
    ]
}

async fn last_entry(app: &TestApp) -> AuditEntry {
    app.audit_entries().await.pop().unwrap()
}

#[tokio::test]
async fn a_form_without_this_principals_token_or_from_another_origin_is_refused_and_audited() {
    let app = spawn_app().await;
    let b = browsers(&app).await;
    let (_, form) = page(&app, &b.coordinator, "/console/subjects/new").await;
    let token = form_token(&form);
    // The practitioner's own, genuine token: good for the practitioner's forms only.
    let (_, practitioners_form) = page(
        &app,
        &b.practitioner,
        "/console/subjects/subj_aaaaaaaaaaaaaaaaaaaaaaaaaa/break-glass",
    )
    .await;
    let other_token = form_token(&practitioners_form);
    assert_ne!(other_token, token);

    let refusals: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("no token", {
            let fields: Vec<_> = enrolment("", "Ada", "Nobody", "9434765919")
                .into_iter()
                .skip(1)
                .collect();
            b.coordinator
                .post(app.url("/console/subjects"))
                .header("origin", app.url(""))
                .form(&fields)
        }),
        (
            "a wrong token",
            b.coordinator
                .post(app.url("/console/subjects"))
                .header("origin", app.url(""))
                .form(&enrolment(&other_token, "Ada", "Nobody", "9434765919")),
        ),
        (
            "no origin",
            b.coordinator
                .post(app.url("/console/subjects"))
                .form(&enrolment(&token, "Ada", "Nobody", "9434765919")),
        ),
        (
            "another origin",
            b.coordinator
                .post(app.url("/console/subjects"))
                .header("origin", "https://evil.example")
                .form(&enrolment(&token, "Ada", "Nobody", "9434765919")),
        ),
        (
            "a cross-site fetch",
            b.coordinator
                .post(app.url("/console/subjects"))
                .header("origin", app.url(""))
                .header("sec-fetch-site", "cross-site")
                .form(&enrolment(&token, "Ada", "Nobody", "9434765919")),
        ),
        (
            "a null origin without fetch metadata",
            b.coordinator
                .post(app.url("/console/subjects"))
                .header("origin", "null")
                .form(&enrolment(&token, "Ada", "Nobody", "9434765919")),
        ),
        (
            "a null origin from another site",
            b.coordinator
                .post(app.url("/console/subjects"))
                .header("origin", "null")
                .header("sec-fetch-site", "cross-site")
                .form(&enrolment(&token, "Ada", "Nobody", "9434765919")),
        ),
    ];
    for (case, request) in refusals {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{case}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{case}"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains("csrf"), "{case}: {body}");
        let entry = last_entry(&app).await;
        assert_eq!(entry.decision, Decision::Denied, "{case}");
        assert_eq!(entry.reason, "csrf", "{case}");
        assert_eq!(entry.action, "subject.enrol", "{case}");
        assert_eq!(entry.principal_id.as_deref(), Some("coordinator"), "{case}");
    }
    let (_, caseload) = page(&app, &b.coordinator, "/console/caseload").await;
    assert!(
        !caseload.contains("Nobody"),
        "a refused form enrolled someone"
    );

    // A page another site links to is refused too (it would leave entries in the name of
    // whoever's browser followed it).
    let linked = b
        .coordinator
        .get(app.url("/console/caseload"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(linked.status(), 403);

    let accepted = submit(
        &app,
        &b.coordinator,
        "/console/subjects",
        &enrolment(&token, "Ada", "Nobody", "9434765919"),
    )
    .await;
    assert_eq!(accepted.status(), 303);
    // A browser that sends its origin (another referrer policy, another browser).
    let with_origin = b
        .coordinator
        .post(app.url("/console/subjects"))
        .header("origin", app.url(""))
        .form(&enrolment(&token, "Bea", "Somebody", "9876543210"))
        .send()
        .await
        .unwrap();
    assert_eq!(with_origin.status(), 303);
    let (_, caseload) = page(&app, &b.coordinator, "/console/caseload").await;
    assert!(
        caseload.contains("Nobody") && caseload.contains("Somebody"),
        "{caseload}"
    );
}

#[tokio::test]
async fn every_console_form_needs_the_token() {
    let app = spawn_app().await;
    let b = browsers(&app).await;
    let posts: Vec<&str> = ROUTES
        .iter()
        .filter(|(method, path, _)| *method == "POST" && path.starts_with("/console"))
        .map(|(_, path, _)| *path)
        .collect();
    assert!(posts.len() >= 8, "{posts:?}");
    for pattern in posts {
        let path = pattern
            .replace("{subject_id}", "subj_aaaaaaaaaaaaaaaaaaaaaaaaaa")
            .replace("{leaf_index}", "0")
            .replace("{id}", "isa-iow-recovery")
            .replace("{version}", "1");
        for client in [&b.coordinator, &b.practitioner, &b.auditor] {
            let response = client
                .post(app.url(&path))
                .header("origin", app.url(""))
                .form(&[("reason", "x")])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "{path}");
            let entry = last_entry(&app).await;
            assert_eq!(entry.reason, "csrf", "{path}");
        }
    }
}

#[tokio::test]
async fn a_practitioner_cannot_open_the_auditors_pages() {
    let app = spawn_app().await;
    let b = browsers(&app).await;
    for path in [
        "/console/audit",
        "/console/audit/entries/0",
        "/console/audit/alerts",
        "/console/audit/checkpoint",
        "/console/audit/activity",
        "/console/caseload",
        "/console/subjects/new",
    ] {
        let (status, body) = page(&app, &b.practitioner, path).await;
        assert_eq!(status, 403, "{path}");
        assert!(
            body.contains("Not allowed") && body.contains("role"),
            "{path}: {body}"
        );
        let entry = last_entry(&app).await;
        assert_eq!(
            (entry.decision, entry.reason.as_str()),
            (Decision::Denied, "role"),
            "{path}"
        );
    }
    let (status, _) = page(&app, &b.auditor, "/console/audit").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_unregistered_certificate_gets_a_plain_refusal_page() {
    let app = spawn_app().await;
    let stranger = app.browser(&app.issue("stranger", "hampshire-police"));
    for path in ["/console", "/console/caseload", "/console/no-such-page"] {
        let response = stranger.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let body = response.text().await.unwrap();
        assert!(body.contains("<h1>Not allowed</h1>"), "{body}");
        assert!(
            body.contains("does not identify an active principal"),
            "{body}"
        );
        for leak in ["panicked", "backtrace", "src/", "Error {"] {
            assert!(!body.contains(leak), "{leak} in {body}");
        }
        assert!(!body.contains("Signed in as"), "{body}");
        // Nor does it link assets the gateway would refuse this browser as well.
        assert!(!body.contains("/console/assets/"), "{body}");
    }
}

#[tokio::test]
async fn every_console_page_carries_the_security_headers() {
    let app = spawn_app().await;
    let b = browsers(&app).await;
    for (client, path) in [
        (&b.coordinator, "/console"),
        (&b.coordinator, "/console/caseload"),
        (&b.practitioner, "/console/audit"),
        (&b.auditor, "/console/audit/checkpoint"),
    ] {
        let response = client.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("<script"), "{path}");
        assert!(!body.contains(" style="), "{path}: inline style");
    }
}

const HOSTILE: &str = r#"<script>alert("x")</script> O'Brien & "Co" <img src=x onerror=alert(1)>"#;

fn assert_shown_as_text(body: &str, context: &str) {
    assert!(!body.contains("<script>alert"), "{context}: raw script");
    assert!(!body.contains("<img src=x"), "{context}: raw tag");
    assert!(
        body.contains("&lt;script&gt;"),
        "{context}: not shown at all"
    );
}

#[tokio::test]
async fn hostile_text_is_shown_as_text_everywhere_it_is_displayed() {
    let app = spawn_app().await;
    app.import_example_agreement().await;
    let b = browsers(&app).await;
    let token = |body: &str| form_token(body);

    // Names: the caseload.
    let (_, form) = page(&app, &b.coordinator, "/console/subjects/new").await;
    let coordinator_token = token(&form);
    let enrolled = submit(
        &app,
        &b.coordinator,
        "/console/subjects",
        &enrolment(&coordinator_token, HOSTILE, HOSTILE, "9434765919"),
    )
    .await;
    assert_eq!(enrolled.status(), 303);
    let subject = enrolled.headers()["location"]
        .to_str()
        .unwrap()
        .split('/')
        .nth(3)
        .unwrap()
        .to_owned();
    let (_, caseload) = page(&app, &b.coordinator, "/console/caseload").await;
    assert_shown_as_text(&caseload, "caseload");

    // Consent evidence: the history.
    let consent = submit(
        &app,
        &b.coordinator,
        &format!("/console/subjects/{subject}/consents"),
        &[
            ("form_token", &coordinator_token),
            ("level", "full"),
            ("evidence", HOSTILE),
            ("given_on", "2026-01-15"),
        ],
    )
    .await;
    assert_eq!(consent.status(), 303);
    let (_, history) = page(
        &app,
        &b.coordinator,
        &format!("/console/subjects/{subject}/consents"),
    )
    .await;
    assert_shown_as_text(&history, "consent history");

    // A refused form shows back what was typed, escaped.
    let refused = submit(
        &app,
        &b.coordinator,
        "/console/subjects",
        &enrolment(&coordinator_token, HOSTILE, HOSTILE, HOSTILE),
    )
    .await;
    assert_eq!(refused.status(), 422);
    assert_shown_as_text(&refused.text().await.unwrap(), "enrol form again");

    // Bidirectional overrides are refused where people type free text.
    let bidi = submit(
        &app,
        &b.coordinator,
        "/console/subjects",
        &enrolment(
            &coordinator_token,
            "Ada\u{202E}evil",
            "Nobody",
            "9876543210",
        ),
    )
    .await;
    assert_eq!(bidi.status(), 422);
    assert!(bidi.text().await.unwrap().contains("text-direction"));

    // Record data and a break-glass justification: the practitioner's read, the alerts,
    // the entry.
    let record = b
        .practitioner
        .post(app.url(&format!("/v1/subjects/{subject}/records")))
        .json(
            &json!({"type": "police.incident", "occurred_at": "2026-02-01T10:00:00Z",
                      "data": {"reported_at": "2026-02-01T10:00:00Z", "incident_type": HOSTILE,
                               "risk_markers": [HOSTILE]}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(record.status(), 201, "{}", record.text().await.unwrap());
    let (_, breakglass_form) = page(
        &app,
        &b.practitioner,
        &format!("/console/subjects/{subject}/break-glass"),
    )
    .await;
    let justification = format!("{HOSTILE} immediate risk to life");
    let read = submit(
        &app,
        &b.practitioner,
        &format!("/console/subjects/{subject}/break-glass"),
        &[
            ("form_token", &token(&breakglass_form)),
            ("purpose", "crisis_response"),
            ("justification", &justification),
        ],
    )
    .await;
    assert_eq!(read.status(), 200);
    assert_shown_as_text(&read.text().await.unwrap(), "records read");
    let (_, alerts) = page(&app, &b.auditor, "/console/audit/alerts").await;
    assert_shown_as_text(&alerts, "alerts");

    // What an auditor types into the search comes back escaped.
    let (status, search) = page(
        &app,
        &b.auditor,
        &format!("/console/audit?principal={}", urlencode(HOSTILE)),
    )
    .await;
    assert_eq!(status, 200);
    assert_shown_as_text(&search, "search form");
    let (_, found) = page(
        &app,
        &b.practitioner,
        &format!("/console/lookup?nhs_number={}", urlencode(HOSTILE)),
    )
    .await;
    assert_shown_as_text(&found, "lookup form again");
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn a_console_read_leaves_the_entry_the_api_read_leaves() {
    let app = spawn_app().await;
    app.import_example_agreement().await;
    let b = browsers(&app).await;
    let (_, form) = page(&app, &b.coordinator, "/console/subjects/new").await;
    let enrolled = submit(
        &app,
        &b.coordinator,
        "/console/subjects",
        &enrolment(&form_token(&form), "Ada", "Nobody", "9434765919"),
    )
    .await;
    let subject = enrolled.headers()["location"]
        .to_str()
        .unwrap()
        .split('/')
        .nth(3)
        .unwrap()
        .to_owned();
    let (status, body) = page(
        &app,
        &b.practitioner,
        &format!("/console/subjects/{subject}/records?purpose=crisis_response"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entry = last_entry(&app).await;
    assert_eq!(entry.action, "records.read");
    assert_eq!(entry.subject_id.as_deref(), Some(subject.as_str()));
    assert_eq!(entry.purpose.as_deref(), Some("crisis_response"));
    assert_eq!(entry.decision, Decision::Granted);
}

/// A refused withdrawal shows its form again, not the consent history: drawing the history
/// (evidence included) under the refused change's entry would disclose it where the
/// subject's access report does not look.
#[tokio::test]
async fn a_refused_withdrawal_does_not_show_the_history_again() {
    let app = spawn_app().await;
    let b = browsers(&app).await;
    let (_, form) = page(&app, &b.coordinator, "/console/subjects/new").await;
    let token = form_token(&form);
    let enrolled = submit(
        &app,
        &b.coordinator,
        "/console/subjects",
        &enrolment(&token, "Ada", "Nobody", "9434765919"),
    )
    .await;
    let location = enrolled.headers()["location"].to_str().unwrap().to_owned();
    let evidence = "Signed form witnessed by nurse Ottoline Vexworth";
    let consents = location.clone();
    let recorded = submit(
        &app,
        &b.coordinator,
        &consents,
        &[
            ("form_token", &token),
            ("level", "full"),
            ("evidence", evidence),
            ("given_on", "2026-01-15"),
        ],
    )
    .await;
    assert_eq!(recorded.status(), 303);

    let refused = submit(
        &app,
        &b.coordinator,
        &format!("{location}/withdraw"),
        &[
            ("form_token", &token),
            ("withdrawn_on", "2026-02-01"),
            ("evidence", ""),
        ],
    )
    .await;
    assert_eq!(refused.status(), 422);
    let body = refused.text().await.unwrap();
    assert!(body.contains("Error: "), "{body}");
    assert!(
        !body.contains(evidence),
        "the history was shown again: {body}"
    );
    let entry = last_entry(&app).await;
    assert_eq!(
        (entry.action.as_str(), entry.decision),
        ("consent.withdraw", Decision::Denied)
    );
}

#[tokio::test]
async fn a_long_history_is_read_a_page_at_a_time_from_the_console() {
    let app = spawn_app().await;
    app.import_example_agreement().await;
    let b = browsers(&app).await;
    let (_, form) = page(&app, &b.coordinator, "/console/subjects/new").await;
    let enrolled = submit(
        &app,
        &b.coordinator,
        "/console/subjects",
        &enrolment(&form_token(&form), "Ada", "Nobody", "9434765919"),
    )
    .await;
    let subject = enrolled.headers()["location"]
        .to_str()
        .unwrap()
        .split('/')
        .nth(3)
        .unwrap()
        .to_owned();
    // One more of the police's own incidents than a page holds; the first is the oldest.
    let system = app.client(
        &app.register("police-records", "hampshire-police", &[Role::System])
            .await,
    );
    for day in 1..=51 {
        let at = format!("2026-01-{:02}T10:00:00Z", day.min(28));
        let response = system
            .post(app.url(&format!("/v1/subjects/{subject}/records")))
            .json(
                &json!({"type": "police.incident", "occurred_at": at, "data": {
                "reported_at": at, "incident_type": "welfare check",
                "summary": format!("Incident {day}"), "risk_markers": []}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }

    let (status, first) = page(
        &app,
        &b.practitioner,
        &format!("/console/subjects/{subject}/records?purpose=crisis_response"),
    )
    .await;
    assert_eq!(status, 200);
    let marker = "href=\"";
    let older = first
        .split(marker)
        .map(|rest| rest.split('"').next().unwrap())
        .find(|href| href.contains("cursor="))
        .expect("an Older records link")
        .replace("&amp;", "&");
    assert_eq!(first.matches("class=\"record\"").count(), 50);
    let (status, second) = page(&app, &b.practitioner, &older).await;
    assert_eq!(status, 200);
    assert_eq!(second.matches("class=\"record\"").count(), 1);
    assert!(
        second.contains("Incident 1<"),
        "the oldest is on the last page"
    );
    assert!(!second.contains("Older records"));
}
