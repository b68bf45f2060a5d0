//! `concordat ig report` against a running gateway: reads granted, refused and made under
//! break-glass, a review, a consent about to expire and an agreement past review, then the
//! report printed by the binary as an operator runs it, and its own audit entry.

use std::process::{Command, Output};

use concordat::domain::{agreement::AgreementDocument, Role};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use crate::helpers::{problem, receipt, spawn_app, TestApp, BINARY};

const JUSTIFICATION: &str = "Person on a bridge, immediate risk to life";

/// The example agreement, with a second one in force whose review date passed 45 days ago
/// (sharing only ambulance records, so that no read below is made under it).
async fn agreements(app: &TestApp, today: time::Date) {
    app.import_example_agreement().await;
    let mut legacy: AgreementDocument = toml::from_str(include_str!(
        "../../config/agreements/isa-iow-recovery.toml"
    ))
    .unwrap();
    legacy.id = "isa-legacy-referrals".into();
    legacy.title = "Legacy ambulance referrals".into();
    legacy.valid_from = (today - Duration::days(100)).to_string();
    legacy.valid_until = (today + Duration::days(365)).to_string();
    legacy.review_by = (today - Duration::days(45)).to_string();
    legacy.shares.retain(|share| share.provider == "scas");
    app.database
        .run(move |conn| concordat::db::agreements::import(conn, &legacy, "test-admin"))
        .await
        .unwrap();
}

fn ig_report(app: &TestApp, args: &[&str]) -> Output {
    Command::new(BINARY)
        .arg("--config")
        .arg(app.write_config())
        .args(["ig", "report"])
        .args(args)
        .env_remove("CONCORDAT_CONFIG")
        .output()
        .unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// The digests recorded by the `report.ig` entries, in order, each with its principal.
async fn report_entries(app: &TestApp) -> Vec<(Option<String>, Option<String>)> {
    app.audit_entries()
        .await
        .into_iter()
        .filter(|e| e.action == "report.ig")
        .map(|e| (e.principal_id, e.response_sha256))
        .collect()
}

#[tokio::test]
async fn the_ig_report_counts_the_period_and_is_audited_with_the_digest_of_what_it_printed() {
    let app = spawn_app().await;
    let today = OffsetDateTime::now_utc().date();
    agreements(&app, today).await;
    let coordinator = app.client(
        &app.register("coordinator", "iow-recovery", &[Role::Coordinator])
            .await,
    );
    let nurse = app.client(
        &app.register("nhs-nurse", "iow-nhs", &[Role::Practitioner])
            .await,
    );
    let police = app.client(
        &app.register("police-mentor", "hampshire-police", &[Role::Practitioner])
            .await,
    );
    let auditor = app.client(
        &app.register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
            .await,
    );

    let enrolled: Value = coordinator
        .post(app.url("/v1/subjects"))
        .json(
            &json!({"nhs_number": "9434765919", "given_name": "Marigold",
                      "family_name": "Quillfeather", "date_of_birth": "1988-04-02",
                      "enrolled_on": today.to_string()}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let subject = enrolled["subject_id"].as_str().unwrap().to_owned();
    let expires_on = today + Duration::days(10);
    let consent = coordinator
        .post(app.url(&format!("/v1/subjects/{subject}/consents")))
        .json(&json!({"level": "coordination", "excluded_categories": [],
                      "evidence": "Signed form", "given_on": today.to_string(),
                      "expires_on": expires_on.to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 201);
    let submitted = nurse
        .post(app.url(&format!("/v1/subjects/{subject}/records")))
        .json(
            &json!({"type": "health.crisis_plan", "occurred_at": "2026-03-01T09:00:00Z",
            "data": {"updated_on": "2026-03-01", "triggers": "Anniversaries",
            "what_helps": "A quiet room", "who_to_contact": "Sister",
            "risk_summary": "Self-harm when alone", "diagnosis": "Synthetic",
            "medication": "Synthetic"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 201);

    let read = |client: &reqwest::Client, purpose: &str, break_glass: Option<&str>| {
        let mut request =
            client.get(app.url(&format!("/v1/subjects/{subject}/records?purpose={purpose}")));
        if let Some(justification) = break_glass {
            request = request.header("Concordat-Break-Glass", justification);
        }
        request.send()
    };
    // Shared under the example agreement, then the NHS reading its own record.
    assert_eq!(
        read(&police, "crisis_response", None)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        read(&nurse, "care_coordination", None)
            .await
            .unwrap()
            .status(),
        200
    );
    // Refused: not a purpose records are read for.
    let refused = read(&police, "service_evaluation", None).await.unwrap();
    assert_eq!(refused.status(), 403);
    let refused_reason = problem(refused).await["code"].as_str().unwrap().to_owned();
    // Break-glass, reviewed by the auditor at once.
    let emergency = read(&police, "crisis_response", Some(JUSTIFICATION))
        .await
        .unwrap();
    assert_eq!(emergency.status(), 200);
    let emergency_leaf = receipt(&emergency);
    let reviewed = auditor
        .post(app.url(&format!("/v1/audit/alerts/{emergency_leaf}/review")))
        .json(&json!({"outcome": "justified", "note": "Confirmed with the control room"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reviewed.status(), 200);
    let checkpointed = app.checkpoint_now().await.unwrap();

    let day = today.to_string();
    let output = ig_report(&app, &["--from", &day, "--to", &day, "--format", "json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["period"]["from"], day);
    assert_eq!(
        report["period"]["starts_at"],
        format!("{day}T00:00:00Z"),
        "{report:#}"
    );
    assert_eq!(report["as_of"], day);

    // 1. Two reads under the example agreement (one of them break-glass), one of its own.
    let disclosures = &report["disclosures"];
    assert_eq!(disclosures["total"], 3, "{disclosures:#}");
    assert_eq!(disclosures["subjects"], 1);
    let by_agreement = disclosures["by_agreement"].as_array().unwrap();
    assert_eq!(by_agreement.len(), 1, "{disclosures:#}");
    let example = &by_agreement[0];
    assert_eq!(example["agreement"], "isa-iow-recovery@1");
    assert_eq!(
        (&example["disclosures"], &example["subjects"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(
        example["title"],
        "Integrated Recovery Programme: police, NHS, ambulance and programme team"
    );
    assert!(example["lawful_basis"]
        .as_array()
        .unwrap()
        .contains(&json!("UK GDPR Art 6(1)(e) public task")));
    assert_eq!(
        disclosures["own_records"],
        json!({"disclosures": 1, "subjects": 1})
    );

    // 2. The legacy agreement is 45 days past its review date; the example one is not.
    assert_eq!(
        report["overdue_reviews"],
        json!([{"agreement_id": "isa-legacy-referrals", "version": 1,
                "title": "Legacy ambulance referrals",
                "review_by": (today - Duration::days(45)).to_string(), "days_overdue": 45}])
    );

    // 3. The break-glass read, justified within the 72 hours.
    let glass = &report["break_glass"];
    assert_eq!(
        (
            &glass["total"],
            &glass["justified"],
            &glass["unreviewed"],
            &glass["breaches"]
        ),
        (&json!(1), &json!(1), &json!(0), &json!(0)),
        "{glass:#}"
    );
    let access = &glass["accesses"][0];
    assert_eq!(access["leaf_index"], emergency_leaf);
    assert_eq!(access["agency_id"], "hampshire-police");
    assert_eq!(access["decision"], "granted");
    assert_eq!(access["outcome"], "justified");
    assert_eq!(access["breach"], false);
    assert!(access["review_delay_hours"].as_f64().unwrap() < 1.0);

    // 4. The refused read, counted for the police under its rule.
    let refused = &report["refused"];
    assert_eq!(refused["total"], 1, "{refused:#}");
    assert_eq!(
        refused["by_agency"],
        json!([{"agency_id": "hampshire-police", "refused": 1,
                "by_reason": [{"reason": refused_reason, "refused": 1}]}])
    );

    // 5. The consent running out in ten days, by pseudonymous id only.
    assert_eq!(
        report["expiring_consents"],
        json!({"within_days": 30, "count": 1, "subjects": [
            {"subject_id": subject, "expires_on": expires_on.to_string(), "days_left": 10}]})
    );

    // 6. The checkpoint just signed, as the API serves it; no witness is configured.
    let checkpoint = &report["checkpoint"];
    assert_eq!(checkpoint["tree_size"], checkpointed);
    assert_eq!(checkpoint["signature_verified"], true);
    assert_eq!(checkpoint["cosignatures"], 0);
    let note = auditor
        .get(app.url("/v1/audit/checkpoint"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(checkpoint["signed_note"], note);

    // Nothing that identifies anyone beyond the pseudonymous id, and no justification.
    for secret in [
        JUSTIFICATION,
        "Marigold",
        "Quillfeather",
        "9434765919",
        "control room",
    ] {
        assert!(!text.contains(secret), "the report shows {secret:?}");
    }

    // The report's own entry: an operator's, with the digest of exactly what was printed.
    let entries = report_entries(&app).await;
    assert_eq!(entries.len(), 1);
    let (principal, digest) = &entries[0];
    assert!(principal.as_deref().unwrap().starts_with("cli:"));
    assert_eq!(digest.as_deref(), Some(sha256(&output.stdout).as_str()));

    // Markdown by default, for the IG lead, audited the same way.
    let markdown = ig_report(&app, &["--from", &day, "--to", &day]);
    assert!(markdown.status.success());
    let text = String::from_utf8(markdown.stdout.clone()).unwrap();
    for heading in [
        "# Information governance audit report",
        "## 1. Disclosures and their lawful basis",
        "## 2. Agreements past their review date",
        "## 3. Break-glass accesses",
        "## 4. Refused requests",
        "## 5. Consent expiring within 30 days",
        "## 6. Latest signed checkpoint",
    ] {
        assert!(text.contains(heading), "{heading} missing:\n{text}");
    }
    assert!(
        text.contains("| No agreement applied: the agency's own records only |"),
        "{text}"
    );
    assert!(
        text.contains(&format!("| {subject} | {expires_on} | 10 |")),
        "{text}"
    );
    let entries = report_entries(&app).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[1].1.as_deref(),
        Some(sha256(&markdown.stdout).as_str())
    );

    // To a file: exactly what the entry's digest says, readable by its owner only (it names
    // people by their programme id), with nothing left beside it.
    let file = app.dir.path().join("ig-report.md");
    let written = ig_report(
        &app,
        &[
            "--from",
            &day,
            "--to",
            &day,
            "--out",
            &file.display().to_string(),
        ],
    );
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    assert!(written.stdout.is_empty());
    let contents = std::fs::read(&file).unwrap();
    let entries = report_entries(&app).await;
    assert_eq!(entries[2].1.as_deref(), Some(sha256(&contents).as_str()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(!app.dir.path().join("ig-report.md.tmp").exists());
}

#[tokio::test]
async fn the_period_is_checked_and_a_refusal_names_the_flag() {
    let app = spawn_app().await;
    let backwards = ig_report(&app, &["--from", "2026-11-30", "--to", "2026-11-01"]);
    assert!(!backwards.status.success());
    let message = String::from_utf8_lossy(&backwards.stderr);
    assert!(
        message.contains("--to: must not be before the from date"),
        "{message}"
    );
    let malformed = ig_report(&app, &["--from", "30/11/2026", "--to", "2026-11-30"]);
    assert!(!malformed.status.success());
    let message = String::from_utf8_lossy(&malformed.stderr);
    assert!(
        message.contains("--from: must be a date, YYYY-MM-DD"),
        "{message}"
    );
    // Each refusal is itself in the trail, and nothing was printed.
    assert!(backwards.stdout.is_empty() && malformed.stdout.is_empty());
    // Nor written: an earlier report at --out is left as it was.
    let earlier = app.dir.path().join("ig-report.md");
    std::fs::write(&earlier, "the report of last quarter").unwrap();
    let out = earlier.display().to_string();
    let refused_to_file = ig_report(
        &app,
        &["--from", "2026-11-30", "--to", "2026-11-01", "--out", &out],
    );
    assert!(!refused_to_file.status.success());
    assert_eq!(
        std::fs::read_to_string(&earlier).unwrap(),
        "the report of last quarter"
    );
    assert!(!app.dir.path().join("ig-report.md.tmp").exists());
    let refused: Vec<_> = app
        .audit_entries()
        .await
        .into_iter()
        .filter(|e| e.action == "report.ig")
        .map(|e| (e.decision.as_str().to_owned(), e.reason))
        .collect();
    assert_eq!(
        refused,
        [
            ("denied".to_owned(), "invalid".to_owned()),
            ("denied".to_owned(), "invalid".to_owned()),
            ("denied".to_owned(), "invalid".to_owned())
        ]
    );
}
