//! Decision replay: an IG auditor asks why each field of a read was released or withheld,
//! and the gateway runs the decision again with exactly what the entry names. (Every read
//! of every test is also replayed as its gateway is dropped: see `TestApp`'s `Drop`.)

use std::collections::BTreeMap;

use concordat::{
    config::DatabaseUrl,
    db::record_types,
    domain::{record_type::RecordTypes, Role},
    startup::Application,
};
use diesel::connection::SimpleConnection;
use serde_json::{json, Value};

use crate::{
    helpers::{receipt, TestApp},
    records::{scene, Scene},
};

async fn auditor(app: &TestApp) -> reqwest::Client {
    app.client(
        &app.register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
            .await,
    )
}

async fn explain(app: &TestApp, auditor: &reqwest::Client, leaf: u64) -> Value {
    let response = auditor
        .get(app.url(&format!("/v1/audit/entries/{leaf}/explain")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// A granted police read of the scene's records, and its leaf index.
async fn police_read(scene: &Scene, url: impl Fn(&str) -> String) -> u64 {
    let response = scene
        .police
        .get(url(&format!(
            "/v1/subjects/{}/records?purpose=crisis_response",
            scene.subject
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    receipt(&response)
}

/// `field → (released, rule, agreement, required level)` of the replayed record of `type`.
fn fields_of(replay: &Value, record_type: &str) -> BTreeMap<String, String> {
    let record = replay["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == record_type)
        .unwrap_or_else(|| panic!("{record_type} not replayed: {replay:#}"));
    record["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let outcome = if f["released"] == true {
                "released"
            } else {
                "withheld"
            };
            let mut said = format!("{outcome} {}", f["rule"].as_str().unwrap());
            if let Some(agreement) = f["agreement"].as_str() {
                said.push_str(&format!(" by {agreement}"));
            }
            if let Some(level) = f["required_level"].as_str() {
                said.push_str(&format!(" at {level}"));
            }
            (f["field"].as_str().unwrap().to_owned(), said)
        })
        .collect()
}

#[tokio::test]
async fn a_redacted_police_read_replays_field_by_field_with_the_rule_that_decided_it() {
    let scene = scene().await;
    scene.consent("crisis", &["contact"]).await;
    let leaf = police_read(&scene, |path| scene.app.url(path)).await;
    let auditor = auditor(&scene.app).await;

    let replay = explain(&scene.app, &auditor, leaf).await;

    assert_eq!(replay["outcome"], "match", "{replay:#}");
    assert_eq!(replay["differences"], json!([]));
    assert_eq!(replay["action"], "records.read");
    let inputs = &replay["inputs"];
    assert_eq!(inputs["recipient"], "hampshire-police");
    assert_eq!(inputs["purpose"], "crisis_response");
    assert_eq!(inputs["break_glass"], false);
    assert_eq!(
        inputs["consent"],
        json!({"version": 1, "level": "crisis", "excluded_categories": ["contact"], "agencies": null})
    );
    assert_eq!(inputs["agreements"], json!(["isa-iow-recovery@1"]));
    assert_eq!(inputs["record_types"]["version"], 1);

    let expected: BTreeMap<String, String> = [
        ("diagnosis", "withheld consent_level at full"),
        ("medication", "withheld consent_level at full"),
        (
            "risk_summary",
            "released agreement_share by isa-iow-recovery@1 at crisis",
        ),
        (
            "triggers",
            "released agreement_share by isa-iow-recovery@1 at crisis",
        ),
        (
            "updated_on",
            "released agreement_share by isa-iow-recovery@1 at crisis",
        ),
        (
            "what_helps",
            "released agreement_share by isa-iow-recovery@1 at crisis",
        ),
        ("who_to_contact", "withheld excluded_category"),
    ]
    .into_iter()
    .map(|(f, s)| (f.to_owned(), s.to_owned()))
    .collect();
    assert_eq!(fields_of(&replay, "health.crisis_plan"), expected);
    // The police's own incident, whole; the ambulance call-out, shared with nobody in the
    // police: left out, every field withheld.
    let records = replay["records"].as_array().unwrap();
    let decision = |record_type: &str| {
        records
            .iter()
            .find(|r| r["type"] == record_type)
            .map(|r| r["decision"].clone())
    };
    assert_eq!(decision("police.incident"), Some(json!("whole")));
    assert_eq!(decision("ambulance.callout"), Some(json!("omitted")));
    assert!(fields_of(&replay, "police.incident")
        .values()
        .all(|s| s == "released holder_own_record"));
    assert!(fields_of(&replay, "ambulance.callout")
        .values()
        .all(|s| s == "withheld not_shared"));
    // Names and categories only: no value of the record leaves.
    assert!(!replay.to_string().contains("synthetic"), "{replay}");
    // The replay showed the person's consent terms: its own entry names them, as a
    // disclosure about them.
    let explained = scene
        .app
        .audit_entries()
        .await
        .into_iter()
        .rfind(|e| e.action == "audit.explain")
        .unwrap();
    assert_eq!(
        (explained.subject_id.as_deref(), explained.consent_version),
        (Some(scene.subject.as_str()), Some(1))
    );

    // Break-glass with the consent withdrawn: the emergency categories, and only those.
    let withdrawn = scene
        .app
        .client(
            &scene
                .app
                .register("coordinator-2", "iow-recovery", &[Role::Coordinator])
                .await,
        )
        .post(
            scene
                .app
                .url(&format!("/v1/subjects/{}/consents/withdraw", scene.subject)),
        )
        .json(&json!({"withdrawn_on": "2026-02-01", "evidence": "Phone call"}))
        .send()
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), 201);
    let response = scene
        .read(
            &scene.police,
            "crisis_response",
            Some("Threatening to jump from the bridge now"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let replay = explain(&scene.app, &auditor, receipt(&response)).await;
    assert_eq!(replay["outcome"], "match", "{replay:#}");
    assert_eq!(replay["inputs"]["break_glass"], true);
    assert_eq!(replay["inputs"]["consent"]["level"], "none");
    let plan = fields_of(&replay, "health.crisis_plan");
    assert_eq!(
        plan["who_to_contact"],
        "released emergency_category by isa-iow-recovery@1"
    );
    assert_eq!(plan["diagnosis"], "withheld consent_level at full");
}

#[tokio::test]
async fn a_tampered_released_list_is_reported_as_a_mismatch() {
    let scene = scene().await;
    scene.consent("crisis", &[]).await;
    let leaf = police_read(&scene, |path| scene.app.url(path)).await;
    let auditor = auditor(&scene.app).await;
    assert_eq!(
        explain(&scene.app, &auditor, leaf).await["outcome"],
        "match"
    );

    // Someone with the owner's credentials rewrites the entry to say the diagnosis was
    // withheld and the triggers were not released at all.
    let app = &scene.app;
    rewrite_entry(app, leaf, |entry| {
        let released = entry["released"].as_array_mut().unwrap();
        released.retain(|label| label != "health.crisis_plan.triggers:crisis_plan");
        released.push(json!("health.crisis_plan.diagnosis:clinical"));
    })
    .await;

    let replay = explain(app, &auditor, leaf).await;

    assert_eq!(replay["outcome"], "mismatch", "{replay:#}");
    let differences: Vec<&str> = replay["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(
        differences,
        [
            "the replay released health.crisis_plan.triggers:crisis_plan 1 time(s); the entry says 0",
            "the entry says released health.crisis_plan.diagnosis:clinical 1 time(s); the replay never does",
        ],
        "{replay:#}"
    );

    // Another read, rewritten as made by a coordinator: the rules would have refused it.
    let other = police_read(&scene, |path| scene.app.url(path)).await;
    rewrite_entry(app, other, |entry| entry["roles"] = json!(["coordinator"])).await;
    let replay = explain(app, &auditor, other).await;
    assert_eq!(replay["outcome"], "mismatch", "{replay:#}");
    assert_eq!(
        replay["differences"],
        json!(["the replay refuses the read outright: Only practitioners read records."])
    );
}

/// Rewrites the entry at `leaf` as someone with the schema owner's credentials could.
async fn rewrite_entry(app: &TestApp, leaf: u64, change: impl FnOnce(&mut Value)) {
    let data = app
        .database
        .run(move |conn| {
            concordat::audit::store::leaf_data(conn, concordat::audit::LeafIndex(leaf))
        })
        .await
        .unwrap()
        .unwrap();
    let mut entry: Value = serde_json::from_slice(&data).unwrap();
    change(&mut entry);
    let rewritten = serde_json::to_string(&entry).unwrap().replace('\'', "''");
    let column = match app.owner_url {
        DatabaseUrl::Postgres(_) => format!("convert_to('{rewritten}', 'UTF8')"),
        DatabaseUrl::Sqlite(_) => format!("CAST('{rewritten}' AS BLOB)"),
    };
    update_past_the_trigger(
        app,
        "audit_entries",
        format!("leaf_data = {column} WHERE leaf_index = {leaf}"),
    )
    .await;
}

/// `UPDATE {table} SET {set}` as the schema owner, past the append-only trigger: what
/// someone with write access to the database could do behind the gateway's back.
async fn update_past_the_trigger(app: &TestApp, table: &str, set: String) {
    app.altered_behind_the_gateway
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (disable, enable) = match app.owner_url {
        DatabaseUrl::Postgres(_) => (
            format!("ALTER TABLE {table} DISABLE TRIGGER {table}_append_only;"),
            format!("ALTER TABLE {table} ENABLE TRIGGER {table}_append_only;"),
        ),
        DatabaseUrl::Sqlite(_) => (
            format!("DROP TRIGGER IF EXISTS {table}_no_update;"),
            String::new(),
        ),
    };
    let sql = format!("{disable} UPDATE {table} SET {set}; {enable}");
    app.database
        .run(move |conn| Ok(conn.batch_execute(&sql)?))
        .await
        .unwrap();
}

#[tokio::test]
async fn each_read_is_replayed_with_the_record_types_it_was_decided_by() {
    let scene = scene().await;
    scene.consent("crisis", &[]).await;
    let before = police_read(&scene, |path| scene.app.url(path)).await;

    // The record types are changed (the diagnosis recategorised as crisis plan, which the
    // police receive at crisis consent) and a second instance starts with them, while the
    // first still runs with the old ones.
    let app = &scene.app;
    let changed = app.dir.path().join("record-types.toml");
    let shipped = std::fs::read_to_string("config/record-types.toml").unwrap();
    let recategorised = shipped.replace(
        "diagnosis      = { category = \"clinical\" }",
        "diagnosis      = { category = \"crisis_plan\" }",
    );
    assert_ne!(recategorised, shipped);
    std::fs::write(&changed, recategorised).unwrap();
    let mut settings = app.settings.clone();
    settings.policy.record_types = changed;
    let instance = Application::build(&settings).await.unwrap();
    let port = instance.port();
    tokio::spawn(instance.run_until_stopped());
    let on_new = police_read(&scene, |path| app.url_on(port, path)).await;
    let on_old = police_read(&scene, |path| app.url(path)).await;
    let auditor = auditor(app).await;

    for (leaf, version, diagnosis) in [
        (before, 1, "withheld consent_level at full"),
        (on_old, 1, "withheld consent_level at full"),
        (
            on_new,
            2,
            "released agreement_share by isa-iow-recovery@1 at crisis",
        ),
    ] {
        let replay = explain(app, &auditor, leaf).await;
        assert_eq!(replay["outcome"], "match", "{replay:#}");
        assert_eq!(replay["inputs"]["record_types"]["version"], version);
        assert_eq!(
            fields_of(&replay, "health.crisis_plan")["diagnosis"],
            diagnosis
        );
    }
    // The same definitions again store no new version.
    let (sha256, stored) = app
        .database
        .run(move |conn| {
            let types = RecordTypes::load(&settings.policy.record_types).unwrap();
            let sha256 = record_types::register(conn, &types)?;
            let stored = {
                use diesel::prelude::*;
                concordat::db::schema::record_type_catalogues::table
                    .count()
                    .get_result::<i64>(conn)?
            };
            Ok((sha256, stored))
        })
        .await
        .unwrap();
    assert_eq!(stored, 2);
    assert_eq!(
        explain(app, &auditor, on_new).await["inputs"]["record_types"]["sha256"],
        sha256.as_str()
    );
}

/// What a replay needs, altered in storage: the replay says what it cannot trust, rather
/// than fail or match.
#[tokio::test]
async fn a_read_whose_record_or_record_types_were_altered_is_not_replayable() {
    let scene = scene().await;
    scene.consent("crisis", &[]).await;
    let leaf = police_read(&scene, |path| scene.app.url(path)).await;
    let auditor = auditor(&scene.app).await;
    let app = &scene.app;

    // The crisis plan relabelled as the police's own.
    update_past_the_trigger(
        app,
        "records",
        "holder = 'hampshire-police' WHERE record_type = 'health.crisis_plan'".to_owned(),
    )
    .await;
    let replay = explain(app, &auditor, leaf).await;
    assert_eq!(replay["outcome"], "not_replayable", "{replay:#}");
    let said = replay["differences"].to_string();
    assert!(said.contains("does not open where it is stored"), "{said}");

    // The stored definitions rewritten to release the diagnosis.
    update_past_the_trigger(
        app,
        "record_type_catalogues",
        "definition = replace(definition, '\"diagnosis\":{\"type\":\"string\",\"category\":\"clinical\"', '\"diagnosis\":{\"type\":\"string\",\"category\":\"crisis_plan\"')".to_owned(),
    )
    .await;
    let replay = explain(app, &auditor, leaf).await;
    assert_eq!(replay["outcome"], "not_replayable", "{replay:#}");
    let said = replay["differences"].to_string();
    assert!(said.contains("do not match their digest"), "{said}");
}

#[tokio::test]
async fn an_entry_that_released_nothing_has_nothing_to_replay() {
    let scene = scene().await;
    let auditor = auditor(&scene.app).await;
    // A refused read: a coordinator is not a practitioner.
    let refused = scene
        .read(&scene.coordinator, "care_coordination", None)
        .await;
    assert_eq!(refused.status(), 403);
    let replay = explain(&scene.app, &auditor, receipt(&refused)).await;
    assert_eq!(replay["outcome"], "not_a_release", "{replay:#}");
    assert_eq!(replay["decision"], "denied");
    assert_eq!(replay["inputs"], Value::Null);
    // Nothing about the person was shown, so the call names no one.
    let explained = scene
        .app
        .audit_entries()
        .await
        .into_iter()
        .rfind(|e| e.action == "audit.explain")
        .unwrap();
    assert_eq!(explained.subject_id, None);

    let missing = auditor
        .get(scene.app.url("/v1/audit/entries/999999/explain"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// A call that names the instant it decided at is recorded at that instant, not when the
/// entry is written: a read's consent and agreements are those of its entry's time.
#[tokio::test]
async fn an_entry_is_timed_at_the_instant_its_call_decided() {
    use concordat::audit::{Action, AuditLog, Decision, Recorder};
    let app = crate::helpers::spawn_app().await;
    let (log, _writer) =
        AuditLog::start(app.database.clone(), std::time::Duration::from_secs(5)).unwrap();
    let recorder = Recorder::new(log, "decided-earlier", Action::RecordsRead);
    let decided = concordat::domain::Timestamp::from_micros(
        concordat::domain::Timestamp::now().micros() - 3_600_000_000,
    );
    recorder.decide_at(decided);
    let receipt = recorder
        .record(Decision::Denied, "purpose", None)
        .await
        .unwrap();
    let entry = app
        .audit_entries()
        .await
        .into_iter()
        .find(|e| e.leaf_index == receipt.leaf_index.0)
        .unwrap();
    assert_eq!(
        concordat::domain::Timestamp::parse_rfc3339(&entry.time),
        Some(decided)
    );
}
