//! Reading records end to end: a police mentor asks for an NHS crisis plan and gets exactly
//! what the agreement in force and the person's consent allow, with a provable receipt.

use concordat::{
    audit::Decision,
    config::DatabaseUrl,
    db::{agreements, records},
    domain::{
        agreement::{Requester, StatusChange},
        Role,
    },
};
use diesel::connection::SimpleConnection;
use serde_json::{json, Value};

use crate::helpers::{problem, receipt, spawn_app, TestApp};

const DIAGNOSIS: &str = "Emotionally unstable personality disorder (synthetic)";

pub(crate) struct Scene {
    pub(crate) app: TestApp,
    pub(crate) subject: String,
    pub(crate) police: reqwest::Client,
    pub(crate) nurse: reqwest::Client,
    scas: reqwest::Client,
    pub(crate) coordinator: reqwest::Client,
}

/// The example agreement imported, one subject enrolled, an NHS crisis plan, a police
/// incident and an ambulance call-out submitted by their holders.
pub(crate) async fn scene() -> Scene {
    let app = spawn_app().await;
    app.import_example_agreement().await;
    let police = app.client(
        &app.register("police-mentor", "hampshire-police", &[Role::Practitioner])
            .await,
    );
    let nurse = app.client(
        &app.register("nhs-nurse", "iow-nhs", &[Role::Practitioner])
            .await,
    );
    let scas = app.client(&app.register("scas-system", "scas", &[Role::System]).await);
    let coordinator = app.client(
        &app.register("coordinator", "iow-recovery", &[Role::Coordinator])
            .await,
    );
    let enrolled: Value = coordinator
        .post(app.url("/v1/subjects"))
        .json(&json!({"nhs_number": "9434765919", "given_name": "Marigold", "family_name": "Quillfeather",
                      "date_of_birth": "1988-04-02", "enrolled_on": "2026-01-15"}))
        .send().await.unwrap().json().await.unwrap();
    let subject = enrolled["subject_id"].as_str().unwrap().to_owned();
    let records = app.url(&format!("/v1/subjects/{subject}/records"));
    for (client, body) in [
        (
            &nurse,
            json!({"type": "health.crisis_plan", "occurred_at": "2026-03-01T09:00:00Z", "data": {
            "updated_on": "2026-03-01", "triggers": "Anniversaries", "what_helps": "A quiet room",
            "who_to_contact": "Sister", "risk_summary": "Self-harm when alone", "diagnosis": DIAGNOSIS,
            "medication": "Sertraline 50mg"}}),
        ),
        (
            &police,
            json!({"type": "police.incident", "occurred_at": "2026-03-02T22:00:00Z", "data": {
            "reported_at": "2026-03-02T22:00:00Z", "incident_type": "welfare check", "summary": "Found on bridge",
            "risk_markers": ["self_harm"]}}),
        ),
        (
            &scas,
            json!({"type": "ambulance.callout", "occurred_at": "2026-03-03T01:00:00Z", "data": {
            "attended_at": "2026-03-03T01:00:00Z", "conveyed_to": "St Mary's", "clinical_impression": "Overdose"}}),
        ),
    ] {
        let response = client
            .post(records.clone())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
    }
    Scene {
        app,
        subject,
        police,
        nurse,
        scas,
        coordinator,
    }
}

impl Scene {
    pub(crate) async fn consent(&self, level: &str, excluded: &[&str]) {
        let response = self
            .coordinator
            .post(self.app.url(&format!("/v1/subjects/{}/consents", self.subject)))
            .json(&json!({"level": level, "excluded_categories": excluded, "evidence": "Signed form", "given_on": "2026-01-15"}))
            .send().await.unwrap();
        assert_eq!(response.status(), 201);
    }

    pub(crate) async fn read(
        &self,
        client: &reqwest::Client,
        purpose: &str,
        break_glass: Option<&str>,
    ) -> reqwest::Response {
        let mut request = client.get(self.app.url(&format!(
            "/v1/subjects/{}/records?purpose={purpose}",
            self.subject
        )));
        if let Some(justification) = break_glass {
            request = request.header("Concordat-Break-Glass", justification);
        }
        request.send().await.unwrap()
    }

    /// Enrols a second subject and returns their id.
    async fn enrol_other(&self) -> String {
        let other: Value = self
            .coordinator
            .post(self.app.url("/v1/subjects"))
            .json(&json!({"nhs_number": "9876543210", "given_name": "Other",
                          "family_name": "Person", "date_of_birth": "1990-01-01",
                          "enrolled_on": "2026-01-15"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        other["subject_id"].as_str().unwrap().to_owned()
    }

    /// An admin suspends the example agreement, straight in storage.
    async fn suspend_agreement(&self) {
        self.app
            .database
            .run(|conn| {
                let admin = Requester {
                    agency: None,
                    roles: [Role::Admin].into(),
                };
                agreements::change_status(
                    conn,
                    "isa-iow-recovery",
                    StatusChange::Suspend,
                    "Review",
                    &admin,
                    "test-admin",
                )
            })
            .await
            .unwrap()
            .unwrap();
    }

    async fn plan_fields(&self, client: &reqwest::Client) -> Vec<String> {
        let body: Value = self
            .read(client, "crisis_response", None)
            .await
            .json()
            .await
            .unwrap();
        let plan = body["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "health.crisis_plan")
            .unwrap();
        plan["data"].as_object().unwrap().keys().cloned().collect()
    }
}

#[tokio::test]
async fn police_get_exactly_the_crisis_plan_fields_each_consent_level_allows() {
    let scene = scene().await;
    let crisis = [
        "risk_summary",
        "triggers",
        "updated_on",
        "what_helps",
        "who_to_contact",
    ];
    let full = [
        "diagnosis",
        "medication",
        "risk_summary",
        "triggers",
        "updated_on",
        "what_helps",
        "who_to_contact",
    ];
    assert!(
        scene.plan_fields(&scene.police).await.is_empty(),
        "no consent yet"
    );
    for (level, expected) in [
        ("crisis", &crisis[..]),
        ("coordination", &crisis[..]),
        ("full", &full[..]),
    ] {
        scene.consent(level, &[]).await;
        assert_eq!(scene.plan_fields(&scene.police).await, expected, "{level}");
    }
}

#[tokio::test]
async fn the_response_has_the_api_shape_and_a_receipt_for_its_digest() {
    let scene = scene().await;
    scene.consent("crisis", &[]).await;
    let response = scene.read(&scene.police, "crisis_response", None).await;
    assert_eq!(response.status(), 200);
    let leaf: u64 = receipt(&response);
    let bytes = response.bytes().await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["purpose"], "crisis_response");
    assert_eq!(body["consent"], json!({"level": "crisis", "version": 1}));
    assert_eq!(body["break_glass"], false);
    assert_eq!(body["audit"]["leaf_index"], leaf);
    let plan = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "health.crisis_plan")
        .unwrap();
    assert_eq!(plan["holder"], "iow-nhs");
    assert_eq!(plan["agreement_id"], "isa-iow-recovery");
    assert_eq!(plan["agreement_version"], 1);
    let redacted: Vec<(String, String, String)> = plan["redacted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["field"].as_str().unwrap().into(),
                r["category"].as_str().unwrap().into(),
                r["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        redacted.contains(&("diagnosis".into(), "clinical".into(), "consent".into())),
        "{redacted:?}"
    );

    let entry = scene.app.audit_entries().await.remove(leaf as usize);
    assert_eq!(entry.action, "records.read");
    assert_eq!(entry.subject_id.as_deref(), Some(scene.subject.as_str()));
    assert_eq!(entry.agreements, ["isa-iow-recovery@1"]);
    assert_eq!(entry.consent_version, Some(1));
    assert!(entry
        .released
        .contains(&"health.crisis_plan.triggers:crisis_plan".to_owned()));
    assert!(entry
        .withheld
        .contains(&"health.crisis_plan.diagnosis:clinical".to_owned()));
    assert_eq!(entry.record_ids.len(), 3);
    assert_eq!(
        hex::encode(concordat::audit::merkle::leaf_hash(
            &entry.leaf_data().unwrap()
        )),
        body["audit"]["leaf_hash"]
    );
    // The digest covers the body without its final `audit` member.
    let text = std::str::from_utf8(&bytes).unwrap();
    let disclosed = format!("{}}}", &text[..text.rfind(",\"audit\":").unwrap()]);
    let digest = ring::digest::digest(&ring::digest::SHA256, disclosed.as_bytes());
    assert_eq!(
        entry.response_sha256.as_deref(),
        Some(hex::encode(digest).as_str())
    );
    assert!(!entry
        .leaf_data()
        .unwrap()
        .windows(DIAGNOSIS.len())
        .any(|w| w == DIAGNOSIS.as_bytes()));
}

#[tokio::test]
async fn withdrawal_and_suspension_take_effect_on_the_next_read() {
    let scene = scene().await;
    scene.consent("full", &[]).await;
    assert_eq!(scene.plan_fields(&scene.police).await.len(), 7);

    let withdrawn = scene.coordinator
        .post(scene.app.url(&format!("/v1/subjects/{}/consents/withdraw", scene.subject)))
        .json(&json!({"evidence": "By phone", "withdrawn_on": time::OffsetDateTime::now_utc().date().to_string()}))
        .send().await.unwrap();
    assert_eq!(withdrawn.status(), 201);
    // The example agreement has no none-level category: nothing is released.
    assert!(scene.plan_fields(&scene.police).await.is_empty());

    scene.suspend_agreement().await;
    let refused = scene.read(&scene.police, "crisis_response", None).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(problem(refused).await["code"], "no_agreement");
}

#[tokio::test]
async fn break_glass_without_consent_releases_only_emergency_categories_and_is_flagged() {
    let scene = scene().await;
    let short = scene
        .read(&scene.police, "crisis_response", Some("urgent"))
        .await;
    assert_eq!(short.status(), 422);
    let wrong_purpose = scene
        .read(
            &scene.police,
            "care_coordination",
            Some("Person on a bridge, immediate risk to life"),
        )
        .await;
    assert_eq!(wrong_purpose.status(), 403);
    assert_eq!(problem(wrong_purpose).await["code"], "purpose");

    let response = scene
        .read(
            &scene.police,
            "crisis_response",
            Some("Person on a bridge, immediate risk to life"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let leaf: u64 = receipt(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["break_glass"], true);
    let plan = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "health.crisis_plan")
        .unwrap();
    let fields: Vec<&String> = plan["data"].as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        [
            "risk_summary",
            "triggers",
            "updated_on",
            "what_helps",
            "who_to_contact"
        ]
    );
    let entry = scene.app.audit_entries().await.remove(leaf as usize);
    assert!(entry.break_glass);
    assert_eq!(
        entry.justification.as_deref(),
        Some("Person on a bridge, immediate risk to life")
    );
}

#[tokio::test]
async fn holders_read_their_own_records_whole_and_unshared_types_are_absent() {
    let scene = scene().await;
    scene.consent("full", &[]).await;
    let body: Value = scene
        .read(&scene.nurse, "crisis_response", None)
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    // The NHS sees its own plan whole, and the police incident and ambulance call-out the
    // agreement shares with it, newest first.
    assert_eq!(
        types,
        ["ambulance.callout", "police.incident", "health.crisis_plan"]
    );
    let plan = &body["records"][2];
    assert_eq!(plan["data"]["diagnosis"], DIAGNOSIS);
    assert_eq!(plan["agreement_id"], Value::Null);

    // The police get nothing of the ambulance call-out: not shared with them at all.
    let response = scene.read(&scene.police, "crisis_response", None).await;
    let leaf: u64 = receipt(&response);
    let body: Value = response.json().await.unwrap();
    let types: Vec<&str> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert!(!types.contains(&"ambulance.callout"), "{types:?}");
    let entry = scene.app.audit_entries().await.remove(leaf as usize);
    assert!(
        entry
            .withheld
            .contains(&"ambulance.callout.clinical_impression:clinical".to_owned()),
        "{:?}",
        entry.withheld
    );
}

#[tokio::test]
async fn submissions_are_checked_against_the_type_and_the_holder() {
    let scene = scene().await;
    let url = scene
        .app
        .url(&format!("/v1/subjects/{}/records", scene.subject));
    let cases = [
        (
            json!({"type": "health.crisis_plan", "occurred_at": "2026-03-01T09:00:00Z", "data": {"triggers": "x"}}),
            "data.updated_on",
        ),
        (
            json!({"type": "health.crisis_plan", "occurred_at": "2026-03-01T09:00:00Z", "data": {"updated_on": "2026-03-01", "mood": "x"}}),
            "data.mood",
        ),
        (
            json!({"type": "health.crisis_plan", "occurred_at": "2026-03-01T09:00:00Z", "data": {"updated_on": 20260301}}),
            "data.updated_on",
        ),
        (
            json!({"type": "health.dream_diary", "occurred_at": "2026-03-01T09:00:00Z", "data": {}}),
            "type",
        ),
        (
            json!({"type": "health.crisis_plan", "occurred_at": "yesterday", "data": {"updated_on": "2026-03-01"}}),
            "occurred_at",
        ),
    ];
    for (body, field) in cases {
        let response = scene
            .nurse
            .post(url.clone())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{field}");
        assert_eq!(problem(response).await["errors"][0]["field"], field);
    }
    // The police may not hold NHS records.
    let response = scene.police.post(url.clone())
        .json(&json!({"type": "health.crisis_plan", "occurred_at": "2026-03-01T09:00:00Z", "data": {"updated_on": "2026-03-01"}}))
        .send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(problem(response).await["code"], "holder");

    if let DatabaseUrl::Sqlite(path) = &scene.app.settings.database.url {
        let mut bytes = std::fs::read(path).unwrap();
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        bytes.extend(std::fs::read(&wal).unwrap_or_default());
        for value in [DIAGNOSIS, "Anniversaries", "Found on bridge", "Sertraline"] {
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "{value} stored in plain text"
            );
        }
    }
}

#[tokio::test]
async fn only_practitioners_read_and_only_for_record_purposes() {
    let scene = scene().await;
    let coordinator = scene
        .read(&scene.coordinator, "care_coordination", None)
        .await;
    assert_eq!(coordinator.status(), 403);
    assert_eq!(problem(coordinator).await["code"], "role");
    for purpose in ["service_evaluation", "audit", "subject_access"] {
        let response = scene.read(&scene.police, purpose, None).await;
        assert_eq!(response.status(), 403, "{purpose}");
        assert_eq!(problem(response).await["code"], "purpose");
    }
    let unknown = scene.read(&scene.police, "curiosity", None).await;
    assert_eq!(unknown.status(), 422);
}

#[tokio::test]
async fn break_glass_raises_an_alert_until_an_ig_auditor_reviews_it() {
    let scene = scene().await;
    let auditor = scene.app.client(
        &scene
            .app
            .register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
            .await,
    );
    let ordinary = scene.read(&scene.police, "crisis_response", None).await;
    let ordinary_leaf: u64 = receipt(&ordinary);
    let emergency = scene
        .read(
            &scene.police,
            "crisis_response",
            Some("Person on a bridge, immediate risk to life"),
        )
        .await;
    let leaf: u64 = receipt(&emergency);

    let alerts: Value = auditor
        .get(scene.app.url("/v1/audit/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alerts = alerts["alerts"].as_array().unwrap().clone();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["leaf_index"], leaf);
    assert_eq!(alerts[0]["subject_id"], scene.subject.as_str());
    assert_eq!(alerts[0]["overdue"], false);

    let review = |index: u64| {
        auditor
            .post(scene.app.url(&format!("/v1/audit/alerts/{index}/review")))
            .json(&json!({"outcome": "justified", "note": "Confirmed with the control room"}))
            .send()
    };
    assert_eq!(review(ordinary_leaf).await.unwrap().status(), 404);
    let reviewed = review(leaf).await.unwrap();
    assert_eq!(reviewed.status(), 200);
    let review_leaf: u64 = receipt(&reviewed);
    assert_eq!(review(leaf).await.unwrap().status(), 409);
    let alerts: Value = auditor
        .get(scene.app.url("/v1/audit/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(alerts["alerts"].as_array().unwrap().is_empty());
    let entry = scene.app.audit_entries().await.remove(review_leaf as usize);
    assert_eq!(entry.action, "audit.alert_review");
    assert_eq!(entry.subject_id.as_deref(), Some(scene.subject.as_str()));
}

#[tokio::test]
async fn the_access_report_lists_every_disclosure_of_the_subject() {
    let scene = scene().await;
    scene.consent("crisis", &[]).await;
    scene.read(&scene.police, "crisis_response", None).await;
    scene
        .read(
            &scene.police,
            "crisis_response",
            Some("Person on a bridge, immediate risk to life"),
        )
        .await;
    scene.read(&scene.police, "audit", None).await; // refused: not a disclosure

    let report: Value = scene
        .coordinator
        .get(
            scene
                .app
                .url(&format!("/v1/subjects/{}/access-report", scene.subject)),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let all = report["accesses"].as_array().unwrap();
    assert!(
        !all.iter().any(|a| a["action"] == "consent.record"),
        "a change is not a disclosure"
    );
    assert!(
        !all.iter().any(|a| a["purpose"] == "audit"),
        "a refused read is not an access"
    );
    let accesses: Vec<&Value> = all
        .iter()
        .filter(|a| a["action"] == "records.read")
        .collect();
    assert_eq!(accesses.len(), 2);
    assert_eq!(accesses[0]["agency_id"], "hampshire-police");
    assert_eq!(accesses[0]["principal_id"], "police-mentor");
    assert_eq!(accesses[0]["purpose"], "crisis_response");
    assert_eq!(accesses[0]["break_glass"], false);
    assert_eq!(accesses[1]["break_glass"], true);
    assert!(accesses[0]["released"]
        .as_array()
        .unwrap()
        .contains(&json!("health.crisis_plan.triggers:crisis_plan")));

    let refused = scene
        .police
        .get(
            scene
                .app
                .url(&format!("/v1/subjects/{}/access-report", scene.subject)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
}

/// Reads every page of the subject's records with `limit`, following `next_cursor`, and
/// returns the records' types page by page.
async fn pages(scene: &Scene, client: &reqwest::Client, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = scene.app.url(&format!(
            "/v1/subjects/{}/records?purpose=crisis_response&limit={limit}",
            scene.subject
        ));
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let body: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        pages.push(
            body["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["type"].as_str().unwrap().to_owned())
                .collect(),
        );
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 10, "the pages never end: {pages:?}");
    }
}

#[tokio::test]
async fn records_come_a_page_at_a_time_and_a_page_never_ends_before_a_record_not_shown() {
    let scene = scene().await;
    scene.consent("full", &[]).await;
    // An older call-out: the oldest record, and one the police are not shown.
    let response = scene
        .scas
        .post(scene.app.url(&format!("/v1/subjects/{}/records", scene.subject)))
        .json(&json!({"type": "ambulance.callout", "occurred_at": "2026-02-01T01:00:00Z", "data": {
            "attended_at": "2026-02-01T01:00:00Z", "conveyed_to": "St Mary's", "clinical_impression": "Fall"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    assert_eq!(
        pages(&scene, &scene.nurse, 1).await,
        [
            vec!["ambulance.callout"],
            vec!["police.incident"],
            vec!["health.crisis_plan"],
            vec!["ambulance.callout"],
        ]
    );
    assert_eq!(
        pages(&scene, &scene.nurse, 3).await,
        [
            vec!["ambulance.callout", "police.incident", "health.crisis_plan"],
            vec!["ambulance.callout"],
        ]
    );
    // The police are shown the incident and the plan only. Their last page is the plan's:
    // a cursor after it would tell them that something they cannot see is older still.
    assert_eq!(
        pages(&scene, &scene.police, 1).await,
        [vec!["police.incident"], vec!["health.crisis_plan"]]
    );

    let refused = |query: &'static str| {
        scene.nurse.get(scene.app.url(&format!(
            "/v1/subjects/{}/records?purpose=crisis_response&{query}",
            scene.subject
        )))
    };
    for query in ["limit=0", "limit=201", "cursor=nonsense", "cursor=1.x"] {
        let response = refused(query).send().await.unwrap();
        assert_eq!(response.status(), 422, "{query}");
    }
}

#[tokio::test]
async fn alerts_come_newest_first_a_page_at_a_time() {
    let scene = scene().await;
    let auditor = scene.app.client(
        &scene
            .app
            .register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
            .await,
    );
    let mut leaves = Vec::new();
    for _ in 0..3 {
        let response = scene
            .read(
                &scene.police,
                "crisis_response",
                Some("Person on a bridge, immediate risk to life"),
            )
            .await;
        leaves.push(receipt(&response));
    }
    let page = |cursor: Option<String>| {
        let mut url = scene.app.url("/v1/audit/alerts?limit=2");
        if let Some(cursor) = cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let auditor = auditor.clone();
        async move {
            let body: Value = auditor.get(url).send().await.unwrap().json().await.unwrap();
            let indexes: Vec<u64> = body["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["leaf_index"].as_u64().unwrap())
                .collect();
            (indexes, body["next_cursor"].as_str().map(str::to_owned))
        }
    };
    let (first, next) = page(None).await;
    assert_eq!(first, [leaves[2], leaves[1]]);
    let (second, last) = page(next).await;
    assert_eq!(second, [leaves[0]]);
    assert_eq!(last, None);

    let reviewed = auditor
        .post(
            scene
                .app
                .url(&format!("/v1/audit/alerts/{}/review", leaves[1])),
        )
        .json(&json!({"outcome": "justified", "note": "Confirmed with the control room"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reviewed.status(), 200);
    assert_eq!(page(None).await, (vec![leaves[2], leaves[0]], None));
    let bad = auditor
        .get(scene.app.url("/v1/audit/alerts?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn reads_filter_by_type_and_since() {
    let scene = scene().await;
    scene.consent("full", &[]).await;
    let url = |query: &str| {
        scene.app.url(&format!(
            "/v1/subjects/{}/records?purpose=crisis_response&{query}",
            scene.subject
        ))
    };
    let types = |body: Value| -> Vec<String> {
        body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["type"].as_str().unwrap().to_owned())
            .collect()
    };
    let only_plans: Value = scene
        .nurse
        .get(url("type=health.crisis_plan"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(types(only_plans), ["health.crisis_plan"]);
    let since: Value = scene
        .nurse
        .get(url("since=2026-03-02T00:00:00Z"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(types(since), ["ambulance.callout", "police.incident"]);
    let bad = scene
        .nurse
        .get(url("type=health.dreams"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn an_alert_unreviewed_for_72_hours_is_overdue() {
    use concordat::audit::{AuditLog, Decision, PendingEntry};
    let scene = scene().await;
    let auditor = scene.app.client(
        &scene
            .app
            .register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
            .await,
    );
    // A break-glass read from four days ago, appended through the audit module's own API:
    // an entry no decision made, so there is nothing to replay it from.
    scene
        .app
        .altered_behind_the_gateway
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (log, _writer) = AuditLog::start(
        scene.app.database.clone(),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let mut old = PendingEntry::new(
        "old-request",
        concordat::audit::Action::RecordsRead,
        Decision::Granted,
        "ok",
    );
    old.time_micros -= 4 * 24 * 3600 * 1_000_000;
    old.break_glass = true;
    old.subject_id = Some(scene.subject.clone());
    log.append(old).await.unwrap();
    scene
        .read(
            &scene.police,
            "crisis_response",
            Some("Person on a bridge, immediate risk to life"),
        )
        .await;

    let alerts: Value = auditor
        .get(scene.app.url("/v1/audit/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let overdue: Vec<bool> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["overdue"].as_bool().unwrap())
        .collect();
    // Newest first: today's access, then the one four days old.
    assert_eq!(overdue, [false, true]);
}

#[tokio::test]
async fn a_refused_break_glass_attempt_is_recorded_flagged_with_its_justification() {
    const WHY: &str = "Person on a bridge, immediate risk to life";
    let scene = scene().await;
    let wrong_purpose = scene
        .read(&scene.police, "care_coordination", Some(WHY))
        .await;
    assert_eq!(wrong_purpose.status(), 403);
    let wrong_purpose_leaf = receipt(&wrong_purpose);
    assert_eq!(problem(wrong_purpose).await["code"], "purpose");

    scene.suspend_agreement().await;
    let no_agreement = scene
        .read(&scene.police, "crisis_response", Some(WHY))
        .await;
    assert_eq!(no_agreement.status(), 403);
    let no_agreement_leaf = receipt(&no_agreement);
    assert_eq!(problem(no_agreement).await["code"], "no_agreement");

    let entries = scene.app.audit_entries().await;
    for leaf in [wrong_purpose_leaf, no_agreement_leaf] {
        let entry = &entries[leaf as usize];
        assert_eq!(entry.decision, Decision::Denied, "{leaf}");
        assert!(entry.break_glass, "entry {leaf} is not flagged");
        assert_eq!(entry.justification.as_deref(), Some(WHY), "{leaf}");
        assert!(entry.released.is_empty(), "{leaf}");
    }
}

#[tokio::test]
async fn a_malformed_break_glass_attempt_is_refused_and_still_flagged() {
    let scene = scene().await;
    let too_short = scene
        .read(&scene.police, "crisis_response", Some("urgent"))
        .await;
    assert_eq!(too_short.status(), 422);
    let too_short_leaf = receipt(&too_short);
    // A justification in another script arrives as UTF-8 bytes; it is judged, not dropped.
    let accented = reqwest::header::HeaderValue::from_bytes(
        "Détresse: risque immédiat pour la vie".as_bytes(),
    )
    .unwrap();
    let not_ascii = scene
        .police
        .get(scene.app.url(&format!(
            "/v1/subjects/{}/records?purpose=care_coordination",
            scene.subject
        )))
        .header("Concordat-Break-Glass", accented)
        .send()
        .await
        .unwrap();
    assert_eq!(not_ascii.status(), 403);
    let not_ascii_leaf = receipt(&not_ascii);

    let entries = scene.app.audit_entries().await;
    let find = |leaf: u64| entries.iter().find(|e| e.leaf_index == leaf).unwrap();
    let short_entry = find(too_short_leaf);
    assert_eq!(short_entry.decision, Decision::Denied);
    assert!(
        short_entry.break_glass,
        "a malformed attempt is not flagged"
    );
    assert_eq!(short_entry.justification.as_deref(), Some("urgent"));
    let accented_entry = find(not_ascii_leaf);
    assert!(accented_entry.break_glass);
    assert_eq!(
        accented_entry.justification.as_deref(),
        Some("Détresse: risque immédiat pour la vie")
    );
}

/// Runs `sql` as the database owner, past the append-only guard on `records`: what someone
/// with write access to the database could do behind the gateway's back.
async fn tamper_with_records(app: &TestApp, sql: String) {
    app.altered_behind_the_gateway
        .store(true, std::sync::atomic::Ordering::Relaxed);
    app.database
        .run(move |conn| {
            let (disable, enable) = records::update_guard(conn);
            conn.batch_execute(&format!("{disable} {sql}; {enable}"))?;
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_record_moved_to_another_subject_or_holder_is_never_released() {
    let scene = scene().await;
    scene.consent("crisis", &[]).await;
    let other = scene.enrol_other().await;
    let plan =
        |set: String| format!("UPDATE records SET {set} WHERE record_type = 'health.crisis_plan'");

    // The NHS crisis plan moved to another subject: the NHS, its holder, would read it
    // whole there.
    tamper_with_records(&scene.app, plan(format!("subject_id = '{other}'"))).await;
    let moved = scene
        .nurse
        .get(scene.app.url(&format!(
            "/v1/subjects/{other}/records?purpose=crisis_response"
        )))
        .send()
        .await
        .unwrap();
    let status = moved.status();
    let body = moved.text().await.unwrap();
    assert!(!body.contains(DIAGNOSIS), "moved record released: {body}");
    assert_eq!(status, 500, "{body}");

    // Put back, it opens again; relabelled as held by the police, the police would read
    // it whole although the person's consent withholds the diagnosis from them.
    tamper_with_records(
        &scene.app,
        plan(format!("subject_id = '{}'", scene.subject)),
    )
    .await;
    assert_eq!(scene.plan_fields(&scene.police).await.len(), 5);
    tamper_with_records(&scene.app, plan("holder = 'hampshire-police'".to_owned())).await;
    let relabelled = scene.read(&scene.police, "crisis_response", None).await;
    let status = relabelled.status();
    let body = relabelled.text().await.unwrap();
    assert!(
        !body.contains(DIAGNOSIS),
        "relabelled record released: {body}"
    );
    assert_eq!(status, 500, "{body}");
}

/// Writes an NHS crisis plan for the scene's subject as the gateway sealed payloads before
/// they were bound: to its row and column only. Returns its id.
async fn store_unbound_plan(scene: &Scene) -> String {
    store_unbound_plans(scene, 1).await.remove(0)
}

async fn store_unbound_plans(scene: &Scene, count: usize) -> Vec<String> {
    use concordat::{crypto::Keyring, db::schema::records, domain::record::RecordId};
    use diesel::{Connection, ExpressionMethods, RunQueryDsl};

    let keys = Keyring::load_or_create(&scene.app.settings.keys.dir).unwrap();
    let ids: Vec<String> = (0..count)
        .map(|_| RecordId::generate().to_string())
        .collect();
    let (subject, rows) = (scene.subject.clone(), ids.clone());
    scene
        .app
        .database
        .run(move |conn| {
            conn.transaction(|conn| {
                for id in rows {
                    let payload = keys
                        .seal(
                            &id,
                            "payload",
                            br#"{"updated_on": "2025-12-01", "triggers": "Old plan"}"#,
                        )
                        .unwrap();
                    diesel::insert_into(records::table)
                        .values((
                            records::id.eq(id),
                            records::subject_id.eq(&subject),
                            records::record_type.eq("health.crisis_plan"),
                            records::holder.eq("iow-nhs"),
                            records::occurred_at.eq(1_764_547_200_000_000_i64),
                            records::payload.eq(payload),
                            records::submitted_by.eq("nhs-nurse"),
                            records::created_at.eq(1_764_547_200_000_000_i64),
                        ))
                        .execute(conn)?;
                }
                Ok(())
            })
        })
        .await
        .unwrap();
    ids
}

/// A record's columns but its payload.
type Columns = (String, String, String, String, i64, String, i64);

/// Every column of every record but the payload, and the payloads, in id order.
async fn stored_records(app: &TestApp) -> (Vec<Columns>, Vec<Vec<u8>>) {
    use concordat::db::schema::records::dsl::*;
    use diesel::{QueryDsl, RunQueryDsl};

    app.database
        .run(|conn| {
            let rows = records
                .order(id)
                .select((
                    id,
                    subject_id,
                    record_type,
                    holder,
                    occurred_at,
                    submitted_by,
                    created_at,
                ))
                .load(conn)?;
            let payloads = records.order(id).select(payload).load(conn)?;
            Ok((rows, payloads))
        })
        .await
        .unwrap()
}

async fn unbound_left(app: &TestApp) -> i64 {
    app.database
        .run(concordat::db::records::count_unbound)
        .await
        .unwrap()
}

fn concordat(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    concordat_with(config, args, &[])
}

fn concordat_with(
    config: &std::path::Path,
    args: &[&str],
    env: &[(&str, &std::path::Path)],
) -> std::process::Output {
    std::process::Command::new(crate::helpers::BINARY)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("CONCORDAT_CONFIG")
        .env("USER", "ops-tester")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn migrate_reseals_records_sealed_before_payloads_were_bound_so_they_cannot_be_moved() {
    let scene = scene().await;
    scene.consent("crisis", &[]).await;
    let old = store_unbound_plan(&scene).await;
    let other = scene.enrol_other().await;

    let config = scene.app.write_owner_config();
    let migrated = concordat(&config, &["migrate"]);
    let out = String::from_utf8_lossy(&migrated.stdout).into_owned();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let response = scene.read(&scene.nurse, "crisis_response", None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    // The oldest record, so the last of the page.
    let oldest = body["records"].as_array().unwrap().last().unwrap();
    assert_eq!(oldest["data"]["triggers"], "Old plan");
    // The append-only guard is back.
    let update = scene
        .app
        .database
        .run(move |conn| {
            conn.batch_execute("UPDATE records SET holder = 'scas'")?;
            Ok(())
        })
        .await;
    assert!(update.is_err(), "records can be rewritten after migrate");

    // Moved to another subject, the re-sealed plan no longer opens there.
    tamper_with_records(
        &scene.app,
        format!("UPDATE records SET subject_id = '{other}' WHERE id = '{old}'"),
    )
    .await;
    let moved = scene
        .nurse
        .get(scene.app.url(&format!(
            "/v1/subjects/{other}/records?purpose=crisis_response"
        )))
        .send()
        .await
        .unwrap();
    let status = moved.status();
    let body = moved.text().await.unwrap();
    assert!(!body.contains("Old plan"), "moved record released: {body}");
    assert_eq!(status, 500, "{body}");

    assert!(out.contains("1 record payload(s) re-sealed"), "{out}");
    let entries = scene.app.audit_entries().await;
    let reseals: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "records.reseal")
        .collect();
    let [reseal] = reseals.as_slice() else {
        panic!("{reseals:?}")
    };
    assert_eq!(reseal.record_ids, std::slice::from_ref(&old));
    assert_eq!(reseal.decision, Decision::Granted);
    assert_eq!(reseal.principal_id.as_deref(), Some("cli:ops-tester"));
    assert!(reseal.subject_id.is_none() && reseal.released.is_empty());

    // Nothing left to re-seal: nothing changes and no entry is written.
    let again = concordat(&config, &["migrate"]);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 record payload(s) re-sealed"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_eq!(scene.app.audit_entries().await.len(), entries.len());
    scene.app.checkpoint_now().await.unwrap();
    let verified = concordat(&config, &["audit", "verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[tokio::test]
async fn a_record_sealed_before_payloads_were_bound_is_refused_and_stops_start_up_until_resealed() {
    let scene = scene().await;
    scene.consent("crisis", &[]).await;
    store_unbound_plan(&scene).await;

    // Unbound, it could have been moved here from anyone: fail closed, as for a moved row.
    let response = scene.read(&scene.nurse, "crisis_response", None).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(
        !body.contains("Old plan"),
        "unbound record released: {body}"
    );
    assert_eq!(status, 500, "{body}");
    let refused = concordat::startup::Application::build(&scene.app.settings)
        .await
        .expect_err("a gateway with unbound payloads must not start");
    assert!(
        format!("{refused:#}").contains("concordat migrate"),
        "{refused:#}"
    );
}

#[tokio::test]
async fn migrate_reseals_only_the_payload_a_batch_per_entry() {
    let scene = scene().await;
    let old = store_unbound_plans(&scene, 501).await;
    let (rows_before, payloads_before) = stored_records(&scene.app).await;

    let migrated = concordat(&scene.app.write_owner_config(), &["migrate"]);
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    assert!(
        text(&migrated.stdout).contains("501 record payload(s) re-sealed"),
        "{}",
        text(&migrated.stdout)
    );

    let (rows_after, payloads_after) = stored_records(&scene.app).await;
    assert_eq!(rows_after, rows_before);
    let changed = payloads_before
        .iter()
        .zip(&payloads_after)
        .filter(|(before, after)| before != after)
        .count();
    assert_eq!(changed, 501);
    assert_eq!(unbound_left(&scene.app).await, 0);
    let batches: Vec<Vec<String>> = scene
        .app
        .audit_entries()
        .await
        .into_iter()
        .filter(|e| e.action == "records.reseal")
        .map(|e| e.record_ids)
        .collect();
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [500, 1]);
    let mut named: Vec<String> = batches.concat();
    named.sort();
    let mut expected = old;
    expected.sort();
    assert_eq!(named, expected);
}

#[tokio::test]
async fn migrate_refuses_to_reseal_without_the_keys_and_changes_nothing() {
    let scene = scene().await;
    store_unbound_plan(&scene).await;
    let entries = scene.app.audit_entries().await.len();
    let (_, payloads) = stored_records(&scene.app).await;
    let elsewhere = scene.app.dir.path().join("no-keys-here");

    let refused = concordat_with(
        &scene.app.write_owner_config(),
        &["migrate"],
        &[("CONCORDAT_KEYS_DIR", &elsewhere)],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("keys.dir"),
        "{}",
        text(&refused.stderr)
    );
    assert!(!elsewhere.exists(), "migrate created keys");
    assert_eq!(unbound_left(&scene.app).await, 1);
    assert_eq!(stored_records(&scene.app).await.1, payloads);
    assert_eq!(scene.app.audit_entries().await.len(), entries);
}

/// Whatever an instance keeps between requests, a change made through another instance
/// sharing the database (withdrawn consent, a suspended agreement, a disabled principal) or
/// a revocation in the shared CRL holds on the other's very next request.
#[tokio::test]
async fn no_instance_serves_stale_authority_after_a_change_made_through_another() {
    let scene = scene().await;
    scene.consent("full", &[]).await;
    let app = &scene.app;
    let admin = app.client(
        &app.register("gateway-admin", "iow-recovery", &[Role::Admin])
            .await,
    );
    let other = app.second_instance().await;
    let read_on_other = |client: &reqwest::Client| {
        client
            .get(app.url_on(
                other,
                &format!(
                    "/v1/subjects/{}/records?purpose=crisis_response",
                    scene.subject
                ),
            ))
            .send()
    };
    let holders = |body: &Value| -> Vec<String> {
        body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["holder"].as_str().unwrap().to_owned())
            .collect()
    };

    // Warm: the other instance has computed the agreements in force.
    let before: Value = read_on_other(&scene.police)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["consent"]["level"], "full");
    assert!(holders(&before).contains(&"iow-nhs".to_owned()), "{before}");

    // Consent withdrawn through the first instance.
    let withdrawn = scene
        .coordinator
        .post(app.url(&format!("/v1/subjects/{}/consents/withdraw", scene.subject)))
        .json(&json!({"evidence": "Phoned to withdraw", "withdrawn_on": "2026-03-10"}))
        .send()
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), 201);
    let after_withdrawal: Value = read_on_other(&scene.police)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        after_withdrawal["consent"]["level"], "none",
        "{after_withdrawal}"
    );

    // The agreement suspended through the first instance: nothing of another agency's
    // is shared on the other's next read.
    let suspended = admin
        .post(app.url("/v1/agreements/isa-iow-recovery/suspend"))
        .json(&json!({"reason": "Breach under investigation"}))
        .send()
        .await
        .unwrap();
    assert_eq!(suspended.status(), 200);
    let after_suspension = read_on_other(&scene.police).await.unwrap();
    match after_suspension.status().as_u16() {
        200 => {
            let body: Value = after_suspension.json().await.unwrap();
            assert!(
                holders(&body).iter().all(|h| h == "hampshire-police"),
                "{body}"
            );
        }
        status => {
            assert_eq!(status, 403);
            assert_eq!(problem(after_suspension).await["code"], "no_agreement");
        }
    }

    // A principal disabled: refused on the other instance's next request.
    app.disable("police-mentor").await;
    let disabled = read_on_other(&scene.police).await.unwrap();
    assert_eq!(disabled.status(), 403);
    assert_eq!(problem(disabled).await["code"], "unknown_principal");

    // A certificate revoked in the shared CRL: refused by the other instance on a
    // kept-alive connection once it has re-read the CRL (it polls every second).
    let whoami = app.url_on(other, "/v1/whoami");
    assert_eq!(scene.nurse.get(&whoami).send().await.unwrap().status(), 200);
    app.pki.revoke("nhs-nurse").unwrap();
    let refused = crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
        match scene.nurse.get(&whoami).send().await {
            Ok(response) => response.status() == 403,
            Err(_) => true,
        }
    })
    .await;
    assert!(
        refused,
        "a revoked certificate was still served by the other instance"
    );
}
