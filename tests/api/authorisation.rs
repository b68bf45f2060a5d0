//! The authorisation matrix: every route the gateway serves (each operation of
//! `/openapi.json` and each console page) called by a principal holding each role, by a
//! certificate from the CA that identifies nobody, and by a disabled principal, each answer
//! held to the matrix below. A route without a row, or a row without a route, fails the
//! test, so a new route cannot ship without a decision about who may call it.

use std::collections::BTreeSet;

use concordat::{crypto::Keyring, domain::Role, routes::ROUTES};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    Practitioner,
    System,
    Coordinator,
    IgLead,
    IgAuditor,
    Admin,
    /// A certificate from the gateway's CA that no principal is bound to.
    Unregistered,
    /// A principal (with every role) that has been disabled.
    Disabled,
}

use Caller::{Admin, Coordinator, IgAuditor, IgLead, Practitioner, System};

const EVERY_ROLE: &[Caller] = &[Practitioner, System, Coordinator, IgLead, IgAuditor, Admin];
const CALLERS: [Caller; 8] = [
    Practitioner,
    System,
    Coordinator,
    IgLead,
    IgAuditor,
    Admin,
    Caller::Unregistered,
    Caller::Disabled,
];

/// One route: who gets past authorisation. Everyone else is refused with 403, and
/// unregistered and disabled callers always are. Rows that change what later rows read
/// (suspending, terminating, discharging) come last.
struct Row {
    method: &'static str,
    path: &'static str,
    allowed: &'static [Caller],
}

const fn row(method: &'static str, path: &'static str, allowed: &'static [Caller]) -> Row {
    Row {
        method,
        path,
        allowed,
    }
}

const MATRIX: &[Row] = &[
    row("GET", "/openapi.json", EVERY_ROLE),
    row("GET", "/v1/whoami", EVERY_ROLE),
    row("GET", "/v1/audit", &[IgAuditor]),
    row("GET", "/v1/audit/entries/{leaf_index}", &[IgAuditor]),
    row(
        "GET",
        "/v1/audit/entries/{leaf_index}/explain",
        &[IgAuditor],
    ),
    row("GET", "/v1/audit/checkpoint", &[IgAuditor]),
    row("GET", "/v1/audit/checkpoint/key", &[IgAuditor]),
    row("GET", "/v1/audit/consistency", &[IgAuditor]),
    row("GET", "/v1/audit/export", &[IgAuditor]),
    row("GET", "/v1/audit/alerts", &[IgAuditor]),
    row("POST", "/v1/audit/alerts/{leaf_index}/review", &[IgAuditor]),
    row("POST", "/v1/subjects", &[Coordinator]),
    row("GET", "/v1/subjects/lookup", &[Coordinator, Practitioner]),
    row(
        "GET",
        "/v1/subjects/{subject_id}/consents",
        &[Coordinator, IgAuditor],
    ),
    row("POST", "/v1/subjects/{subject_id}/consents", &[Coordinator]),
    row(
        "POST",
        "/v1/subjects/{subject_id}/consents/withdraw",
        &[Coordinator],
    ),
    row("GET", "/v1/subjects/{subject_id}/records", &[Practitioner]),
    row(
        "POST",
        "/v1/subjects/{subject_id}/records",
        &[Practitioner, System],
    ),
    row(
        "GET",
        "/v1/subjects/{subject_id}/access-report",
        &[IgAuditor, Coordinator],
    ),
    row("GET", "/v1/agreements", EVERY_ROLE),
    row("POST", "/v1/agreements", &[Admin, IgLead]),
    row("GET", "/v1/agreements/{id}", EVERY_ROLE),
    row(
        "POST",
        "/v1/agreements/{id}/versions/{version}/approve",
        &[IgLead],
    ),
    row(
        "GET",
        "/v1/reports/service-usage",
        &[IgAuditor, Coordinator],
    ),
    row(
        "GET",
        "/v1/reports/service-usage.svg",
        &[IgAuditor, Coordinator],
    ),
    row("GET", "/console", EVERY_ROLE),
    row("GET", "/console/assets/{file}", EVERY_ROLE),
    row("GET", "/console/caseload", &[Coordinator]),
    row("GET", "/console/subjects/new", &[Coordinator]),
    row("POST", "/console/subjects", &[Coordinator]),
    row("GET", "/console/find", &[Coordinator, Practitioner]),
    row("GET", "/console/lookup", &[Coordinator, Practitioner]),
    row(
        "GET",
        "/console/subjects/{subject_id}/consents",
        &[Coordinator, IgAuditor],
    ),
    row(
        "POST",
        "/console/subjects/{subject_id}/consents",
        &[Coordinator],
    ),
    row(
        "GET",
        "/console/subjects/{subject_id}/consents/new",
        &[Coordinator],
    ),
    row(
        "POST",
        "/console/subjects/{subject_id}/consents/withdraw",
        &[Coordinator],
    ),
    row(
        "GET",
        "/console/subjects/{subject_id}/records",
        &[Practitioner],
    ),
    row(
        "POST",
        "/console/subjects/{subject_id}/records",
        &[Practitioner, System],
    ),
    row(
        "GET",
        "/console/subjects/{subject_id}/break-glass",
        &[Practitioner],
    ),
    row(
        "POST",
        "/console/subjects/{subject_id}/break-glass",
        &[Practitioner],
    ),
    row(
        "GET",
        "/console/subjects/{subject_id}/records/new",
        &[Practitioner, System],
    ),
    row(
        "GET",
        "/console/subjects/{subject_id}/access-report",
        &[IgAuditor, Coordinator],
    ),
    row("GET", "/console/audit", &[IgAuditor]),
    row("GET", "/console/audit/entries/{leaf_index}", &[IgAuditor]),
    row(
        "GET",
        "/console/audit/entries/{leaf_index}/explain",
        &[IgAuditor],
    ),
    row("GET", "/console/audit/alerts", &[IgAuditor]),
    row(
        "POST",
        "/console/audit/alerts/{leaf_index}/review",
        &[IgAuditor],
    ),
    row("GET", "/console/audit/checkpoint", &[IgAuditor]),
    row("GET", "/console/audit/activity", &[IgAuditor]),
    row(
        "GET",
        "/console/reports/service-usage",
        &[IgAuditor, Coordinator],
    ),
    // As the API's: any principal, each seeing the agreements it may (the navigation
    // offers them to IG leads and auditors).
    row("GET", "/console/agreements", EVERY_ROLE),
    row("GET", "/console/agreements/{id}", EVERY_ROLE),
    row(
        "POST",
        "/console/agreements/{id}/versions/{version}/approve",
        &[IgLead],
    ),
    // Changes that later rows would feel: last.
    row("POST", "/console/agreements/{id}/suspend", &[IgLead, Admin]),
    row("POST", "/v1/agreements/{id}/suspend", &[IgLead, Admin]),
    row("POST", "/v1/agreements/{id}/terminate", &[IgLead, Admin]),
    row(
        "POST",
        "/console/subjects/{subject_id}/discharge",
        &[Coordinator],
    ),
    row(
        "POST",
        "/v1/subjects/{subject_id}/discharge",
        &[Coordinator],
    ),
];

struct Scene {
    app: TestApp,
    subject: String,
    keys: Keyring,
    clients: Vec<(Caller, reqwest::Client)>,
}

async fn scene() -> Scene {
    let app = spawn_app().await;
    app.import_example_agreement().await;
    let mut clients = Vec::new();
    for (caller, name, agency, roles) in [
        (
            Practitioner,
            "police-mentor",
            "hampshire-police",
            vec![Role::Practitioner],
        ),
        (System, "scas-system", "scas", vec![Role::System]),
        (
            Coordinator,
            "coordinator",
            "iow-recovery",
            vec![Role::Coordinator],
        ),
        (IgLead, "nhs-ig-lead", "iow-nhs", vec![Role::IgLead]),
        (
            IgAuditor,
            "ig-auditor",
            "iow-recovery",
            vec![Role::IgAuditor],
        ),
        (Admin, "admin", "iow-recovery", vec![Role::Admin]),
    ] {
        let certificate = app.register(name, agency, &roles).await;
        clients.push((caller, app.browser(&certificate)));
    }
    let unregistered = app.issue("stranger", "hampshire-police");
    clients.push((Caller::Unregistered, app.browser(&unregistered)));
    let every_role = [
        Role::Practitioner,
        Role::System,
        Role::Coordinator,
        Role::IgLead,
        Role::IgAuditor,
        Role::Admin,
    ];
    let disabled = app.register("gone", "iow-recovery", &every_role).await;
    app.disable("gone").await;
    clients.push((Caller::Disabled, app.browser(&disabled)));

    let coordinator = &clients[2].1;
    let enrolled: Value = coordinator
        .post(app.url("/v1/subjects"))
        .json(&json!({"nhs_number": "9434765919", "given_name": "Marigold", "family_name": "Quillfeather",
                      "date_of_birth": "1988-04-02", "enrolled_on": "2026-01-15"}))
        .send().await.unwrap().json().await.unwrap();
    let subject = enrolled["subject_id"].as_str().unwrap().to_owned();
    let keys = Keyring::load(&app.settings.keys.dir).unwrap();
    Scene {
        app,
        subject,
        keys,
        clients,
    }
}

/// The principal id each caller's form token is made for.
fn principal_id(caller: Caller) -> &'static str {
    match caller {
        Practitioner => "police-mentor",
        System => "scas-system",
        Coordinator => "coordinator",
        IgLead => "nhs-ig-lead",
        IgAuditor => "ig-auditor",
        Admin => "admin",
        Caller::Unregistered => "stranger",
        Caller::Disabled => "gone",
    }
}

impl Scene {
    /// The concrete request for a route: ids that exist, the query a page needs, a body
    /// that is well formed (so that what decides the answer is who asks, not the shape).
    fn request(
        &self,
        row: &Row,
        caller: Caller,
        client: &reqwest::Client,
    ) -> reqwest::RequestBuilder {
        let path = row
            .path
            .replace("{subject_id}", &self.subject)
            .replace("{leaf_index}", "0")
            .replace("{id}", "isa-iow-recovery")
            .replace("{version}", "1")
            .replace("{file}", "icon.svg");
        let query = match row.path {
            "/v1/subjects/lookup" | "/console/lookup" => "?nhs_number=9434765919",
            "/v1/subjects/{subject_id}/records" | "/console/subjects/{subject_id}/records" => {
                "?purpose=crisis_response"
            }
            "/v1/audit/consistency" => "?first=1&second=1",
            "/v1/audit/export" => "?format=ndjson",
            _ => "",
        };
        let url = self.app.url(&format!("{path}{query}"));
        if row.method == "GET" {
            return client.get(url);
        }
        if row.path.starts_with("/console") {
            let token = self.keys.form_token(principal_id(caller));
            let mut form = vec![("form_token", token.as_str())];
            if row.path == "/console/subjects/{subject_id}/break-glass" {
                // A malformed purpose or justification is refused (422) before the role.
                form.extend([
                    ("purpose", "crisis_response"),
                    (
                        "justification",
                        "Person on a bridge, immediate risk to life",
                    ),
                ]);
            }
            return client
                .post(url)
                .header("origin", "null")
                .header("sec-fetch-site", "same-origin")
                .form(&form);
        }
        let body = match row.path {
            "/v1/subjects" => json!({"nhs_number": "9876543210", "given_name": "Other",
                "family_name": "Person", "date_of_birth": "1990-01-01", "enrolled_on": "2026-01-15"}),
            "/v1/subjects/{subject_id}/consents" => json!({"level": "crisis",
                "evidence": "Signed form", "given_on": "2026-01-15"}),
            "/v1/subjects/{subject_id}/consents/withdraw" => json!({"evidence": "Phone call",
                "withdrawn_on": "2026-02-01"}),
            "/v1/subjects/{subject_id}/discharge" => json!({"discharged_on": "2026-03-01",
                "reason": "Recovered"}),
            // A type the caller's agency may hold, so only the role decides.
            "/v1/subjects/{subject_id}/records" if caller == System => json!({
                "type": "ambulance.callout", "occurred_at": "2026-03-03T01:00:00Z", "data": {
                "attended_at": "2026-03-03T01:00:00Z", "conveyed_to": "St Mary's",
                "clinical_impression": "Overdose"}}),
            "/v1/subjects/{subject_id}/records" => json!({"type": "police.incident",
                "occurred_at": "2026-03-02T22:00:00Z", "data": {"reported_at": "2026-03-02T22:00:00Z",
                "incident_type": "welfare check", "summary": "Found on bridge", "risk_markers": []}}),
            "/v1/audit/alerts/{leaf_index}/review" => json!({"outcome": "justified",
                "note": "Confirmed with the control room"}),
            "/v1/agreements" => {
                let mut document: Value = toml::from_str(include_str!(
                    "../../config/agreements/isa-iow-recovery.toml"
                ))
                .unwrap();
                document["id"] = json!("isa-matrix");
                document
            }
            "/v1/agreements/{id}/suspend" | "/v1/agreements/{id}/terminate" => {
                json!({"reason": "Annual review"})
            }
            _ => json!({}),
        };
        client.post(url).json(&body)
    }
}

#[tokio::test]
async fn every_route_answers_each_caller_as_the_matrix_says() {
    let scene = scene().await;

    let served: BTreeSet<(&str, &str)> = ROUTES.iter().map(|(m, p, _)| (*m, *p)).collect();
    let decided: BTreeSet<(&str, &str)> = MATRIX.iter().map(|r| (r.method, r.path)).collect();
    assert_eq!(decided.len(), MATRIX.len(), "a route has two rows");
    let undecided: Vec<_> = served.difference(&decided).collect();
    assert!(undecided.is_empty(), "routes without a row: {undecided:?}");
    let gone: Vec<_> = decided.difference(&served).collect();
    assert!(
        gone.is_empty(),
        "rows for routes that do not exist: {gone:?}"
    );
    // Every operation the API describes is served (and so decided above).
    let openapi: Value = scene
        .app
        .get_json(&scene.clients[0].1, "/openapi.json")
        .await;
    for (path, operations) in openapi["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            assert!(
                served.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is described but not served"
            );
        }
    }

    let mut wrong = Vec::new();
    for row in MATRIX {
        for (caller, client) in &scene.clients {
            let response = scene.request(row, *caller, client).send().await.unwrap();
            let status = response.status().as_u16();
            let passed = status != 403;
            let expected = row.allowed.contains(caller);
            if passed != expected || status >= 500 {
                wrong.push(format!(
                    "{} {} as {caller:?}: {status} (expected {})",
                    row.method,
                    row.path,
                    if expected {
                        "past authorisation"
                    } else {
                        "403"
                    }
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} calls answered against the matrix:\n{}",
        wrong.len(),
        MATRIX.len() * CALLERS.len(),
        wrong.join("\n")
    );
}
