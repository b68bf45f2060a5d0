//! The programme's evaluation table, reproduced from a synthetic cohort built here: police
//! detentions fall by 66 % in the year after enrolment and to zero by 18 months.

use concordat::{
    crypto::Keyring,
    db::{records, subjects},
    domain::{
        record::RecordId,
        subject::{Enrolment, NhsNumber, PersonName, SubjectId},
        AgencyId, Role,
    },
};
use serde_json::{json, Value};
use time::{macros::date, Date};

use crate::helpers::{problem, receipt, spawn_app_with, TestApp, BINARY};

const AS_OF: &str = "2026-11-01";

/// (enrolled on, discharged on, [(record type, holder, day, how many)])
type Person = (
    Date,
    Option<Date>,
    Vec<(&'static str, &'static str, Date, usize)>,
);

fn cohort() -> Vec<Person> {
    let a_events = vec![
        (
            "police.s136_detention",
            "hampshire-police",
            date!(2024 - 03 - 01),
            6,
        ), // 12-month window before
        (
            "police.s136_detention",
            "hampshire-police",
            date!(2023 - 06 - 01),
            1,
        ), // only the 18-month window
        (
            "emergency.call_999",
            "hampshire-police",
            date!(2024 - 02 - 01),
            1,
        ),
    ];
    let b_events = vec![
        (
            "police.s136_detention",
            "hampshire-police",
            date!(2025 - 03 - 01),
            4,
        ),
        (
            "police.s136_detention",
            "hampshire-police",
            date!(2026 - 03 - 01),
            3,
        ),
    ];
    let mut people: Vec<Person> = Vec::new();
    // A: five people enrolled two years ago: 30 + 5 detentions before, none after.
    for i in 0..5 {
        let mut events = a_events.clone();
        if i < 2 {
            events.push(("emergency.call_999", "scas", date!(2025 - 02 - 01), 1));
            // after: 999 calls
        }
        if i > 2 {
            events.pop(); // 3 people made one 999 call before
        }
        people.push((date!(2024 - 10 - 01), None, events));
    }
    // B: five people enrolled 13 months ago: 20 before, 15 after (their 18 months are not over).
    for i in 0..5 {
        let mut events = b_events.clone();
        if i < 2 {
            events.push((
                "police.s136_detention",
                "hampshire-police",
                date!(2026 - 04 - 01),
                1,
            )); // 17 after
        }
        events.push((
            "health.ae_attendance",
            "iow-nhs",
            date!(2025 - 05 - 01),
            if i < 3 { 2 } else { 1 },
        )); // 8 before
        if i < 2 {
            events.push(("health.ae_attendance", "iow-nhs", date!(2026 - 05 - 01), 1));
            // 2 after
        }
        people.push((date!(2025 - 10 - 01), None, events));
    }
    // C: enrolled five months ago: in no window yet, though busy.
    people.push((
        date!(2026 - 06 - 01),
        None,
        vec![(
            "police.s136_detention",
            "hampshire-police",
            date!(2026 - 07 - 01),
            9,
        )],
    ));
    // D: enrolled two years ago, discharged after 14 months: counts for 12 months only.
    people.push((date!(2024 - 10 - 01), Some(date!(2025 - 12 - 01)), vec![]));
    people
}

async fn build(threshold: u32) -> TestApp {
    let app = spawn_app_with(|s| s.policy.suppression_threshold = threshold).await;
    let keys = Keyring::load_or_create(&app.settings.keys.dir).unwrap();
    for (n, (enrolled_on, discharged_on, events)) in cohort().into_iter().enumerate() {
        let keys = Keyring::load_or_create(&app.settings.keys.dir).unwrap();
        app.database
            .run(move |conn| {
                let id = SubjectId::generate();
                let nhs = format!("999000{n:03}");
                let check = (0..9)
                    .map(|i| (nhs.as_bytes()[i] - b'0') as u32 * (10 - i as u32))
                    .sum::<u32>();
                let digit = (11 - check % 11) % 11;
                let nhs =
                    NhsNumber::parse(&format!("{nhs}{}", if digit == 10 { 0 } else { digit })).ok();
                let enrolment = Enrolment {
                    nhs_number: nhs,
                    pnc_id: None,
                    given_name: PersonName::parse("given_name", "Test").unwrap(),
                    family_name: PersonName::parse("family_name", &format!("Cohort{n}")).unwrap(),
                    date_of_birth: date!(1980 - 01 - 01),
                    enrolled_on,
                };
                subjects::enrol(conn, &keys, &id, &enrolment, "test")?;
                if let Some(day) = discharged_on {
                    subjects::discharge(conn, &keys, &id, day, "Moved away", "test")?;
                }
                for (record_type, holder, day, count) in events {
                    for _ in 0..count {
                        let record = records::Record {
                            id: RecordId::generate(),
                            subject: id.clone(),
                            record_type: record_type.to_owned(),
                            holder: AgencyId::parse(holder).unwrap(),
                            occurred_at: concordat::domain::Timestamp::from(
                                day.midnight().assume_utc(),
                            ),
                            data: json!({}),
                        };
                        records::insert(conn, &records::seal(&keys, &record, "test")?)?;
                    }
                }
                Ok(())
            })
            .await
            .unwrap();
    }
    drop(keys);
    app
}

async fn report(app: &TestApp, client: &reqwest::Client) -> Value {
    let response = client
        .get(app.url(&format!(
            "/v1/reports/service-usage?windows=12,18&as_of={AS_OF}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn row<'a>(window: &'a Value, measure: &str) -> &'a Value {
    window["measures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["measure"] == measure)
        .unwrap()
}

#[tokio::test]
async fn the_cohort_reproduces_the_papers_headline_when_nothing_is_suppressed() {
    let app = build(1).await;
    let auditor = app.client(
        &app.register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
            .await,
    );
    let body = report(&app, &auditor).await;
    let (year, eighteen) = (&body["windows"][0], &body["windows"][1]);
    assert_eq!(
        (year["months"].as_u64(), year["subjects"].as_u64()),
        (Some(12), Some(11))
    );
    assert_eq!(
        (eighteen["months"].as_u64(), eighteen["subjects"].as_u64()),
        (Some(18), Some(5))
    );
    let detentions = row(year, "s136_detentions");
    assert_eq!(
        (detentions["before"].as_u64(), detentions["after"].as_u64()),
        (Some(50), Some(17))
    );
    assert_eq!(detentions["change_percent"], -66.0);
    let detentions = row(eighteen, "s136_detentions");
    assert_eq!(
        (detentions["before"].as_u64(), detentions["after"].as_u64()),
        (Some(35), Some(0))
    );
    assert_eq!(detentions["change_percent"], -100.0);
    let calls = row(year, "calls_999");
    assert_eq!(
        (calls["before"].as_u64(), calls["after"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(row(year, "ae_attendances")["before"].as_u64(), Some(8));
    assert_eq!(row(year, "total")["before"].as_u64(), Some(61));
    assert!(body.to_string().find("subj_").is_none());
}

#[tokio::test]
async fn at_the_default_threshold_small_cells_and_what_would_reveal_them_are_suppressed() {
    let app = build(5).await;
    let coordinator = app.client(
        &app.register("coordinator", "iow-recovery", &[Role::Coordinator])
            .await,
    );
    let body = report(&app, &coordinator).await;
    for window in body["windows"].as_array().unwrap() {
        for row in window["measures"].as_array().unwrap() {
            for column in ["before", "after"] {
                if let Some(n) = row[column].as_u64() {
                    assert!(n == 0 || n >= 5, "{row}");
                } else {
                    assert_eq!(row[column], "<5");
                    assert_eq!(row["change_percent"], Value::Null);
                    assert_eq!(row["suppressed"], true);
                }
            }
        }
        // No suppressed cell can be recovered by subtracting from the total.
        for column in ["before", "after"] {
            let measures: Vec<&Value> = window["measures"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["measure"] != "total")
                .collect();
            if measures.iter().any(|r| r[column] == "<5") {
                assert_eq!(
                    row(window, "total")[column],
                    "<5",
                    "{column} total reveals a suppressed cell"
                );
            }
        }
    }
    let year = &body["windows"][0];
    assert_eq!(row(year, "calls_999")["before"], "<5");
    assert_eq!(row(year, "ae_attendances")["before"].as_u64(), Some(8));
    assert_eq!(row(year, "ae_attendances")["after"], "<5");
    assert_eq!(row(year, "s136_detentions")["change_percent"], -66.0);
}

#[tokio::test]
async fn only_evaluators_may_ask_and_the_entry_names_measures_not_subjects() {
    let app = build(5).await;
    let practitioner = app.client(
        &app.register("police-mentor", "hampshire-police", &[Role::Practitioner])
            .await,
    );
    let refused = practitioner
        .get(app.url("/v1/reports/service-usage"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(problem(refused).await["code"], "role");
    let auditor = app.client(
        &app.register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
            .await,
    );
    let bad = auditor
        .get(app.url("/v1/reports/service-usage?windows=12,0"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);

    let response = auditor
        .get(app.url("/v1/reports/service-usage"))
        .send()
        .await
        .unwrap();
    let leaf: u64 = receipt(&response);
    let entry = app.audit_entries().await.remove(leaf as usize);
    assert_eq!(entry.action, "report.service_usage");
    assert_eq!(entry.purpose.as_deref(), Some("service_evaluation"));
    assert_eq!(entry.subject_id, None);
    assert!(entry.record_ids.is_empty());
    assert!(entry
        .released
        .contains(&"report.service_usage.s136_detentions".to_owned()));

    let svg = auditor
        .get(app.url(&format!("/v1/reports/service-usage.svg?as_of={AS_OF}")))
        .send()
        .await
        .unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let svg = svg.text().await.unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("s136 detentions") && svg.contains("&lt;5"));
}

#[tokio::test]
async fn the_cli_prints_the_same_report() {
    let app = build(1).await;
    let config = app.write_config();
    let output = std::process::Command::new(BINARY)
        .arg("--config")
        .arg(&config)
        .args([
            "reports",
            "service-usage",
            "--as-of",
            AS_OF,
            "--format",
            "json",
        ])
        .env_remove("CONCORDAT_CONFIG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let body: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        row(&body["windows"][0], "s136_detentions")["change_percent"],
        -66.0
    );
    let table = std::process::Command::new(BINARY)
        .arg("--config")
        .arg(&config)
        .args(["reports", "service-usage", "--as-of", AS_OF])
        .env_remove("CONCORDAT_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("12 months: 11 subjects counted") && text.contains("-66.0%"),
        "{text}"
    );
    assert!(app
        .audit_entries()
        .await
        .iter()
        .any(|e| e.action == "report.service_usage"
            && e.principal_id
                .as_deref()
                .is_some_and(|p| p.starts_with("cli:"))));
}
