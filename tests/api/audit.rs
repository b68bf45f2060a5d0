//! The audit trail end to end: one entry per request, durable before the response,
//! proofs that verify, exports anyone can check, and refusal when it cannot be written.

use std::time::Duration;

use concordat::{
    audit::{merkle, Decision},
    domain::Role,
};
use futures_util::future::join_all;

use crate::helpers::{
    eventually, problem, readiness, receipt, refuse_audit_appends, spawn_app, spawn_app_with,
    TestApp,
};

fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

fn unhex(s: &str) -> merkle::Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

async fn auditor(app: &TestApp) -> reqwest::Client {
    app.client(
        &app.register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
            .await,
    )
}

#[tokio::test]
async fn every_request_leaves_exactly_one_entry_granted_or_denied() {
    let app = spawn_app().await;
    let mentor = app.client(
        &app.register("police-mentor", "hampshire-police", &[Role::Practitioner])
            .await,
    );
    let stranger = app.client(&app.issue("stranger", "scas"));

    let granted = app.whoami(&mentor).await.unwrap();
    let unknown = app.whoami(&stranger).await.unwrap();
    let missing = mentor.get(app.url("/v1/nowhere")).send().await.unwrap();
    let forbidden = mentor.get(app.url("/v1/audit")).send().await.unwrap();
    let responses = [&granted, &unknown, &missing, &forbidden];
    let receipts: Vec<u64> = responses.iter().map(|r| receipt(r)).collect();
    let ids: Vec<String> = responses.iter().map(|r| request_id(r)).collect();

    let entries = app.audit_entries().await;
    assert_eq!(entries.len(), 4, "{entries:#?}");
    for ((entry, leaf), id) in entries.iter().zip(&receipts).zip(&ids) {
        assert_eq!(entry.leaf_index, *leaf);
        assert_eq!(&entry.request_id, id);
    }
    let summary: Vec<(&str, Decision, &str, Option<&str>)> = entries
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.decision,
                e.reason.as_str(),
                e.principal_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "whoami.read",
                Decision::Granted,
                "ok",
                Some("police-mentor")
            ),
            ("whoami.read", Decision::Denied, "unknown_principal", None),
            (
                "unknown_route",
                Decision::Denied,
                "not_found",
                Some("police-mentor")
            ),
            (
                "audit.search",
                Decision::Denied,
                "role",
                Some("police-mentor")
            ),
        ]
    );
    // The unknown caller is still identified by its certificate.
    assert_eq!(
        entries[1].certificate_sha256.as_ref().map(String::len),
        Some(64)
    );
}

#[tokio::test]
async fn the_entry_records_the_digest_of_the_body_that_was_sent() {
    let app = spawn_app().await;
    let mentor = app.client(
        &app.register("police-mentor", "hampshire-police", &[Role::Practitioner])
            .await,
    );
    let response = app.whoami(&mentor).await.unwrap();
    let leaf = receipt(&response);
    let body = response.bytes().await.unwrap();

    let entry = app.audit_entries().await.remove(leaf as usize);
    let digest = ring::digest::digest(&ring::digest::SHA256, &body);
    assert_eq!(entry.response_sha256.unwrap(), hex::encode(digest));
}

#[tokio::test]
async fn parallel_requests_make_one_contiguous_tree_that_verifies() {
    let app = spawn_app().await;
    let certificate = app.register("scas-system", "scas", &[Role::System]).await;
    let clients: Vec<reqwest::Client> = (0..8).map(|_| app.client(&certificate)).collect();

    let responses = join_all((0..64).map(|i| app.whoami(&clients[i % clients.len()]))).await;

    let mut receipts: Vec<u64> = responses
        .iter()
        .map(|r| {
            let r = r.as_ref().unwrap();
            assert_eq!(r.status(), 200);
            receipt(r)
        })
        .collect();
    receipts.sort_unstable();
    assert_eq!(receipts, (0..64).collect::<Vec<_>>());
    app.checkpoint_now().await.unwrap();
    let report = app.verify().unwrap();
    assert_eq!((report.entries, report.checkpoints), (64, 1));
}

#[tokio::test]
async fn entries_come_with_inclusion_proofs_against_the_signed_checkpoint() {
    let app = spawn_app().await;
    let client = auditor(&app).await;
    for _ in 0..6 {
        app.whoami(&client).await.unwrap();
    }
    // Not yet covered by any checkpoint: no proof to give.
    let early = client
        .get(app.url("/v1/audit/entries/2"))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 404);
    let size = app.checkpoint_now().await.unwrap();

    let note = client
        .get(app.url("/v1/audit/checkpoint"))
        .send()
        .await
        .unwrap();
    assert!(note.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let note = note.text().await.unwrap();
    let vkey = client
        .get(app.url("/v1/audit/checkpoint/key"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let signed = concordat::audit::checkpoint::VerifierKey::parse(&vkey)
        .unwrap()
        .verify(&note)
        .unwrap();
    assert_eq!(signed.size, size);

    let proof: serde_json::Value = app.get_json(&client, "/v1/audit/entries/2").await;
    assert_eq!(proof["tree_size"], size);
    assert_eq!(unhex(proof["root_hash"].as_str().unwrap()), signed.root);
    let path: Vec<merkle::Hash> = proof["inclusion_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| unhex(h.as_str().unwrap()))
        .collect();
    let leaf = unhex(proof["leaf_hash"].as_str().unwrap());
    assert!(merkle::verify_inclusion(
        &leaf,
        2,
        size,
        &path,
        &signed.root
    ));
    assert_eq!(proof["entry"]["leaf_index"], 2);
    assert_eq!(proof["entry"]["action"], "whoami.read");

    // A proof against an earlier size.
    let earlier: serde_json::Value = app
        .get_json(&client, "/v1/audit/entries/2?tree_size=4")
        .await;
    assert_eq!(earlier["tree_size"], 4);
}

#[tokio::test]
async fn consecutive_checkpoints_are_proven_consistent() {
    let app = spawn_app().await;
    let client = auditor(&app).await;
    for _ in 0..3 {
        app.whoami(&client).await.unwrap();
    }
    let first = app.checkpoint_now().await.unwrap();
    for _ in 0..5 {
        app.whoami(&client).await.unwrap();
    }
    let second = app.checkpoint_now().await.unwrap();

    let body: serde_json::Value = app
        .get_json(
            &client,
            &format!("/v1/audit/consistency?first={first}&second={second}"),
        )
        .await;
    let proof: Vec<merkle::Hash> = body["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| unhex(h.as_str().unwrap()))
        .collect();
    assert!(merkle::verify_consistency(
        first,
        second,
        &unhex(body["first_root"].as_str().unwrap()),
        &unhex(body["second_root"].as_str().unwrap()),
        &proof
    ));
    let beyond = client
        .get(app.url(&format!(
            "/v1/audit/consistency?first=1&second={}",
            second + 50
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), 404);
}

#[tokio::test]
async fn search_filters_and_pages_with_a_stable_cursor() {
    let app = spawn_app().await;
    let client = auditor(&app).await;
    let mentor = app.client(
        &app.register("police-mentor", "hampshire-police", &[Role::Practitioner])
            .await,
    );
    for _ in 0..3 {
        app.whoami(&mentor).await.unwrap();
        app.whoami(&client).await.unwrap();
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = app.url("/v1/audit?principal=police-mentor&limit=2");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: serde_json::Value = client.get(url).send().await.unwrap().json().await.unwrap();
        for entry in page["entries"].as_array().unwrap() {
            assert_eq!(entry["principal_id"], "police-mentor");
            seen.push(entry["leaf_index"].as_u64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, [0, 2, 4]);

    let denied: serde_json::Value = app
        .get_json(
            &client,
            "/v1/audit?decision=granted&action=whoami.read&limit=100",
        )
        .await;
    assert_eq!(denied["entries"].as_array().unwrap().len(), 6);
    let bad = client
        .get(app.url("/v1/audit?decision=maybe"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(problem(bad).await["errors"][0]["field"], "decision");
    let unknown = client
        .get(app.url("/v1/audit?colour=blue"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 422);
}

#[tokio::test]
async fn exports_hold_the_hashed_entries_in_three_formats() {
    let app = spawn_app().await;
    let client = auditor(&app).await;
    for _ in 0..4 {
        app.whoami(&client).await.unwrap();
    }
    let size = app.checkpoint_now().await.unwrap();

    let ndjson = client
        .get(app.url("/v1/audit/export?format=ndjson"))
        .send()
        .await
        .unwrap();
    assert!(ndjson.headers().contains_key("concordat-audit-entry"));
    let ndjson = ndjson.bytes().await.unwrap();
    let lines: Vec<&[u8]> = ndjson
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let leaves: Vec<merkle::Hash> = lines
        .iter()
        .take(size as usize)
        .map(|l| merkle::leaf_hash(l))
        .collect();
    let mut tree = merkle::MemoryTree::from_leaf_hashes(leaves);
    let note = client
        .get(app.url("/v1/audit/checkpoint"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let root_line = note.lines().nth(2).unwrap();
    use base64::Engine;
    let signed_root = base64::engine::general_purpose::STANDARD
        .decode(root_line)
        .unwrap();
    assert_eq!(merkle::root(&mut tree, size).unwrap().to_vec(), signed_root);

    let csv = client
        .get(app.url("/v1/audit/export?format=csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("leaf_index,time,request_id,principal_id"));
    assert!(csv.lines().count() >= 6, "{csv}");

    let fhir: serde_json::Value = app.get_json(&client, "/v1/audit/export?format=fhir").await;
    assert_eq!(fhir["resourceType"], "Bundle");
    let resources = fhir["entry"].as_array().unwrap();
    assert!(resources.len() >= 6);
    assert_eq!(resources[0]["resource"]["resourceType"], "AuditEvent");
    assert_eq!(resources[0]["resource"]["outcome"], "0");
}

#[tokio::test]
async fn when_the_audit_trail_cannot_be_written_nothing_is_disclosed() {
    let app =
        spawn_app_with(|settings| settings.audit.append_timeout = Duration::from_millis(400)).await;
    let mentor = app.client(
        &app.register("police-mentor", "hampshire-police", &[Role::Practitioner])
            .await,
    );
    assert_eq!(app.whoami(&mentor).await.unwrap().status(), 200);

    let lock = crate::helpers::hold_audit_write_lock(&app);
    let refused = app.whoami(&mentor).await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(!refused.headers().contains_key("concordat-audit-entry"));
    let body = problem(refused).await;
    assert_eq!(body["code"], "audit_unavailable");
    assert!(!body.to_string().contains("police-mentor"));
    drop(lock);

    // Every 2xx has its entry; the refused request may have been written late, never early.
    let after = app.whoami(&mentor).await.unwrap();
    assert_eq!(after.status(), 200);
    let entries = app.audit_entries().await;
    assert!(entries.iter().any(|e| e.request_id == request_id(&after)));
}

#[tokio::test]
async fn when_storage_refuses_the_trail_nothing_leaves_readiness_fails_and_service_resumes() {
    let app =
        spawn_app_with(|settings| settings.audit.append_timeout = Duration::from_millis(500)).await;
    let mentor = app.client(
        &app.register("police-mentor", "hampshire-police", &[Role::Practitioner])
            .await,
    );
    assert_eq!(app.whoami(&mentor).await.unwrap().status(), 200);
    assert_eq!(readiness(&app).await.0, 200);
    let before = app.audit_entries().await.len();

    refuse_audit_appends(&app, true).await;
    let refused = app.whoami(&mentor).await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(!refused.headers().contains_key("concordat-audit-entry"));
    assert_eq!(problem(refused).await["code"], "audit_unavailable");
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["audit_writer"], "failing");
    // Nothing half-written: the refused batch left no entry and no node.
    assert_eq!(app.audit_entries().await.len(), before);
    app.verify().unwrap();

    refuse_audit_appends(&app, false).await;
    // Ready again before any request has reached the gateway: once an append timeout has
    // passed since the failure, readiness itself finds that storage takes appends.
    let recovered = eventually(Duration::from_secs(5), || async {
        readiness(&app).await.0 == 200
    })
    .await;
    assert!(recovered, "{:?}", readiness(&app).await);
    assert_eq!(app.whoami(&mentor).await.unwrap().status(), 200);
    assert_eq!(app.audit_entries().await.len(), before + 1);
    app.verify().unwrap();
}

#[tokio::test]
async fn only_ig_auditors_reach_the_auditor_api() {
    let app = spawn_app().await;
    let coordinator = app.client(
        &app.register(
            "coordinator",
            "iow-recovery",
            &[Role::Coordinator, Role::Admin],
        )
        .await,
    );
    for path in [
        "/v1/audit",
        "/v1/audit/entries/0",
        "/v1/audit/checkpoint",
        "/v1/audit/checkpoint/key",
        "/v1/audit/consistency?first=1&second=1",
        "/v1/audit/export?format=ndjson",
    ] {
        let response = coordinator.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(problem(response).await["code"], "role", "{path}");
    }
}

/// The example agreement, one enrolled subject and the NHS crisis plan about them: enough
/// for a police break-glass read. Returns the subject id.
async fn break_glass_scene(app: &TestApp) -> String {
    use serde_json::json;
    app.import_example_agreement().await;
    let coordinator = app.client(
        &app.register("coordinator", "iow-recovery", &[Role::Coordinator])
            .await,
    );
    let nurse = app.client(
        &app.register("nhs-nurse", "iow-nhs", &[Role::Practitioner])
            .await,
    );
    let enrolled: serde_json::Value = coordinator
        .post(app.url("/v1/subjects"))
        .json(&json!({"nhs_number": "9434765919", "given_name": "Marigold", "family_name": "Quillfeather",
                      "date_of_birth": "1988-04-02", "enrolled_on": "2026-01-15"}))
        .send().await.unwrap().json().await.unwrap();
    let subject = enrolled["subject_id"].as_str().unwrap().to_owned();
    let submitted = nurse
        .post(app.url(&format!("/v1/subjects/{subject}/records")))
        .json(
            &json!({"type": "health.crisis_plan", "occurred_at": "2026-03-01T09:00:00Z", "data": {
            "updated_on": "2026-03-01", "triggers": "Anniversaries", "what_helps": "A quiet room",
            "who_to_contact": "Sister", "risk_summary": "Self-harm when alone",
            "diagnosis": "Synthetic", "medication": "Synthetic"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 201);
    subject
}

async fn review(app: &TestApp, client: &reqwest::Client, leaf: u64) -> reqwest::Response {
    client
        .post(app.url(&format!("/v1/audit/alerts/{leaf}/review")))
        .json(
            &serde_json::json!({"outcome": "justified", "note": "Confirmed with the control room"}),
        )
        .send()
        .await
        .unwrap()
}

async fn alert_indexes(app: &TestApp, client: &reqwest::Client) -> Vec<u64> {
    let alerts = app.get_json(client, "/v1/audit/alerts").await;
    alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["leaf_index"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_principal_who_broke_the_glass_may_not_review_it() {
    let app = spawn_app().await;
    let subject = break_glass_scene(&app).await;
    // One person holding both roles: the review must come from someone else.
    let both = app.client(
        &app.register(
            "police-mentor",
            "hampshire-police",
            &[Role::Practitioner, Role::IgAuditor],
        )
        .await,
    );
    let emergency = both
        .get(app.url(&format!(
            "/v1/subjects/{subject}/records?purpose=crisis_response"
        )))
        .header(
            "Concordat-Break-Glass",
            "Person on a bridge, immediate risk to life",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(emergency.status(), 200);
    let leaf = receipt(&emergency);

    let own = review(&app, &both, leaf).await;
    assert_eq!(own.status(), 403);
    let own_leaf = receipt(&own);
    assert_eq!(problem(own).await["code"], "own_alert");
    let entry = app.audit_entries().await.remove(own_leaf as usize);
    assert_eq!(
        (entry.action.as_str(), entry.decision),
        ("audit.alert_review", Decision::Denied)
    );
    assert_eq!(alert_indexes(&app, &both).await, [leaf], "still waiting");

    let other = auditor(&app).await;
    assert_eq!(review(&app, &other, leaf).await.status(), 200);
    assert!(alert_indexes(&app, &other).await.is_empty());
}

#[tokio::test]
async fn a_refused_break_glass_attempt_is_an_alert_that_can_be_reviewed() {
    use concordat::audit::{Action, AuditLog, PendingEntry};
    let app = spawn_app().await;
    let client = auditor(&app).await;
    // Refused attempts as the records use case writes them: flagged, with the justification.
    let (log, _writer) = AuditLog::start(app.database.clone(), Duration::from_secs(5)).unwrap();
    let attempt = |decision: Decision, reason: &str| {
        let mut entry = PendingEntry::new("attempt", Action::RecordsRead, decision, reason);
        entry.principal_id = Some("police-mentor".into());
        entry.subject_id = Some("subj_attempted".into());
        entry.purpose = Some("care_coordination".into());
        entry.break_glass = true;
        entry.justification = Some("Person on a bridge, immediate risk to life".into());
        entry
    };
    let refused = log
        .append(attempt(Decision::Denied, "purpose"))
        .await
        .unwrap()
        .leaf_index
        .0;
    // A server error is not an access attempt the gateway decided on.
    log.append(attempt(Decision::Error, "internal"))
        .await
        .unwrap();

    let alerts = app.get_json(&client, "/v1/audit/alerts").await;
    let listed = alerts["alerts"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{alerts}");
    assert_eq!(listed[0]["leaf_index"], refused);
    assert_eq!(listed[0]["subject_id"], "subj_attempted");
    assert_eq!(
        listed[0]["justification"],
        "Person on a bridge, immediate risk to life"
    );
    assert_eq!(review(&app, &client, refused).await.status(), 200);
    assert!(alert_indexes(&app, &client).await.is_empty());
}
