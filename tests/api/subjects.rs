//! Subjects and consent: coordinators enrol and record consent; identifiers and evidence
//! are stored only encrypted and never reach the audit trail.

use concordat::{audit::Decision, config::DatabaseUrl, domain::Role};
use serde_json::{json, Value};

use crate::helpers::{problem, receipt, spawn_app, TestApp};

const NHS: &str = "943 476 5919";
const NHS_DIGITS: &str = "9434765919";
const FAMILY: &str = "Quillfeather-Testington";
const EVIDENCE: &str = "Signed form witnessed by nurse Ottoline Vexworth";

struct Clients {
    coordinator: reqwest::Client,
    practitioner: reqwest::Client,
    auditor: reqwest::Client,
    system: reqwest::Client,
}

async fn clients(app: &TestApp) -> Clients {
    Clients {
        coordinator: app.client(
            &app.register("coordinator", "iow-recovery", &[Role::Coordinator])
                .await,
        ),
        practitioner: app.client(
            &app.register("police-mentor", "hampshire-police", &[Role::Practitioner])
                .await,
        ),
        auditor: app.client(
            &app.register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
                .await,
        ),
        system: app.client(&app.register("scas-system", "scas", &[Role::System]).await),
    }
}

fn person() -> Value {
    json!({
        "nhs_number": NHS,
        "pnc_id": "12/1234567C",
        "given_name": "Marigold",
        "family_name": FAMILY,
        "date_of_birth": "1988-04-02",
        "enrolled_on": "2026-01-15",
    })
}

async fn post(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    client.post(app.url(path)).json(body).send().await.unwrap()
}

async fn enrol(app: &TestApp, client: &reqwest::Client) -> String {
    let response = post(app, client, "/v1/subjects", &person()).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["subject_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_coordinator_enrols_and_practitioners_look_up_by_either_identifier() {
    let app = spawn_app().await;
    let c = clients(&app).await;
    let id = enrol(&app, &c.coordinator).await;
    assert!(id.starts_with("subj_"));

    for query in [
        format!("nhs_number={NHS_DIGITS}"),
        "pnc_id=12%2F1234567C".to_owned(),
    ] {
        let found: Value = app
            .get_json(&c.practitioner, &format!("/v1/subjects/lookup?{query}"))
            .await;
        assert_eq!(found["subject_id"], id, "{query}");
    }
    let missing = c
        .coordinator
        .get(app.url("/v1/subjects/lookup?nhs_number=9990000018"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let both = c
        .coordinator
        .get(app.url(&format!(
            "/v1/subjects/lookup?nhs_number={NHS_DIGITS}&pnc_id=12/1234567C"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 422);
}

#[tokio::test]
async fn invalid_enrolments_are_422_naming_the_field() {
    let app = spawn_app().await;
    let c = clients(&app).await;
    let cases = [
        ("nhs_number", json!("943 476 5918")),
        ("pnc_id", json!("12/1234567L")),
        ("date_of_birth", json!("2999-01-01")),
        ("enrolled_on", json!("1970-01-01")),
        ("given_name", json!("  ")),
        ("date_of_birth", json!("02/04/1988")),
    ];
    for (field, value) in cases {
        let mut body = person();
        body[field] = value;
        let response = post(&app, &c.coordinator, "/v1/subjects", &body).await;
        assert_eq!(response.status(), 422, "{field}");
        assert_eq!(problem(response).await["errors"][0]["field"], field);
    }
    let mut unknown = person();
    unknown["ethnicity"] = json!("x");
    assert_eq!(
        post(&app, &c.coordinator, "/v1/subjects", &unknown)
            .await
            .status(),
        422
    );
}

#[tokio::test]
async fn a_second_enrolment_of_the_same_identifier_is_409() {
    let app = spawn_app().await;
    let c = clients(&app).await;
    enrol(&app, &c.coordinator).await;
    let again = post(&app, &c.coordinator, "/v1/subjects", &person()).await;
    assert_eq!(again.status(), 409);

    let mut same_pnc = person();
    same_pnc["nhs_number"] = json!("4010232137");
    assert_eq!(
        post(&app, &c.coordinator, "/v1/subjects", &same_pnc)
            .await
            .status(),
        409
    );
}

#[tokio::test]
async fn consent_history_keeps_every_version_and_withdrawal_is_immediate() {
    let app = spawn_app().await;
    let c = clients(&app).await;
    let id = enrol(&app, &c.coordinator).await;
    let consents = format!("/v1/subjects/{id}/consents");

    let first = post(
        &app,
        &c.coordinator,
        &consents,
        &json!({"level": "crisis", "evidence": EVIDENCE, "given_on": "2026-01-15"}),
    )
    .await;
    assert_eq!(first.status(), 201);
    assert_eq!(first.json::<Value>().await.unwrap()["consent_version"], 1);
    let second = post(
        &app,
        &c.coordinator,
        &consents,
        &json!({"level": "full", "agencies": ["iow-nhs", "hampshire-police"], "excluded_categories": ["clinical"],
                "evidence": "Reviewed at mentoring session", "given_on": "2026-02-01", "expires_on": "2027-02-01"}),
    )
    .await;
    assert_eq!(second.json::<Value>().await.unwrap()["consent_version"], 2);

    let history: Value = app.get_json(&c.auditor, &consents).await;
    assert_eq!(history["effective"]["level"], "full");
    assert_eq!(history["effective"]["version"], 2);
    assert_eq!(
        history["effective"]["excluded_categories"],
        json!(["clinical"])
    );

    let withdrawn = post(&app, &c.coordinator, &format!("{consents}/withdraw"), &json!({"evidence": "Withdrew by phone", "withdrawn_on": time::OffsetDateTime::now_utc().date().to_string()})).await;
    assert_eq!(withdrawn.status(), 201);
    assert_eq!(
        withdrawn.json::<Value>().await.unwrap()["consent_version"],
        3
    );

    let history: Value = app.get_json(&c.coordinator, &consents).await;
    assert_eq!(history["effective"]["level"], "none");
    assert_eq!(history["effective"]["version"], 3);
    let versions: Vec<u64> = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2, 1]);
    assert_eq!(history["history"][0]["kind"], "withdrawn");
    assert_eq!(history["history"][2]["evidence"], EVIDENCE);
    assert_eq!(history["history"][2]["recorded_by"], "coordinator");
    assert!(history["history"][2]["recorded_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
}

#[tokio::test]
async fn consent_names_only_known_agencies_and_categories() {
    let app = spawn_app().await;
    let c = clients(&app).await;
    let id = enrol(&app, &c.coordinator).await;
    let path = format!("/v1/subjects/{id}/consents");
    let cases = [
        (
            "agencies",
            json!({"level": "full", "agencies": ["nowhere-police"], "evidence": "x", "given_on": "2026-01-15"}),
        ),
        (
            "excluded_categories",
            json!({"level": "full", "excluded_categories": ["horoscope"], "evidence": "x", "given_on": "2026-01-15"}),
        ),
        (
            "expires_on",
            json!({"level": "full", "evidence": "x", "given_on": "2026-01-15", "expires_on": "2026-01-01"}),
        ),
        (
            "evidence",
            json!({"level": "full", "evidence": " ", "given_on": "2026-01-15"}),
        ),
    ];
    for (field, body) in cases {
        let response = post(&app, &c.coordinator, &path, &body).await;
        assert_eq!(response.status(), 422, "{field}");
        assert_eq!(problem(response).await["errors"][0]["field"], field);
    }
    let bad_level = post(
        &app,
        &c.coordinator,
        &path,
        &json!({"level": "most", "evidence": "x", "given_on": "2026-01-15"}),
    )
    .await;
    assert_eq!(bad_level.status(), 422);
    let unknown_subject = post(
        &app,
        &c.coordinator,
        "/v1/subjects/subj_aaaaaaaaaaaaaaaaaaaaaaaaaa/consents",
        &json!({"level": "full", "evidence": "x", "given_on": "2026-01-15"}),
    )
    .await;
    assert_eq!(unknown_subject.status(), 404);
}

#[tokio::test]
async fn a_subject_is_discharged_once_and_not_before_enrolment() {
    let app = spawn_app().await;
    let c = clients(&app).await;
    let id = enrol(&app, &c.coordinator).await;
    let path = format!("/v1/subjects/{id}/discharge");
    let early = post(
        &app,
        &c.coordinator,
        &path,
        &json!({"discharged_on": "2025-12-31", "reason": "Moved away"}),
    )
    .await;
    assert_eq!(early.status(), 422);
    let done = post(
        &app,
        &c.coordinator,
        &path,
        &json!({"discharged_on": "2026-06-30", "reason": "Completed the pathway"}),
    )
    .await;
    assert_eq!(done.status(), 200);
    let again = post(
        &app,
        &c.coordinator,
        &path,
        &json!({"discharged_on": "2026-07-01", "reason": "Again"}),
    )
    .await;
    assert_eq!(again.status(), 409);
}

/// (client, method, path, body, expected status, audit action)
type Call<'a> = (
    &'a reqwest::Client,
    &'a str,
    String,
    Option<&'a Value>,
    u16,
    &'a str,
);

#[tokio::test]
async fn only_the_right_roles_reach_each_endpoint_and_every_call_is_audited() {
    let app = spawn_app().await;
    let c = clients(&app).await;
    let id = enrol(&app, &c.coordinator).await;
    let consent = json!({"level": "crisis", "evidence": EVIDENCE, "given_on": "2026-01-15"});
    let withdraw = json!({"evidence": "x", "withdrawn_on": "2026-02-01"});
    let discharge = json!({"discharged_on": "2026-06-30", "reason": "x"});
    let lookup = format!("/v1/subjects/lookup?nhs_number={NHS_DIGITS}");
    let consents = format!("/v1/subjects/{id}/consents");
    let enrolment = person();

    let calls: Vec<Call<'_>> = vec![
        (
            &c.practitioner,
            "POST",
            "/v1/subjects".into(),
            Some(&enrolment),
            403,
            "subject.enrol",
        ),
        (
            &c.auditor,
            "POST",
            "/v1/subjects".into(),
            Some(&enrolment),
            403,
            "subject.enrol",
        ),
        (
            &c.auditor,
            "GET",
            lookup.clone(),
            None,
            403,
            "subject.lookup",
        ),
        (
            &c.system,
            "GET",
            lookup.clone(),
            None,
            403,
            "subject.lookup",
        ),
        (
            &c.coordinator,
            "GET",
            lookup.clone(),
            None,
            200,
            "subject.lookup",
        ),
        (
            &c.practitioner,
            "POST",
            consents.clone(),
            Some(&consent),
            403,
            "consent.record",
        ),
        (
            &c.coordinator,
            "POST",
            consents.clone(),
            Some(&consent),
            201,
            "consent.record",
        ),
        (
            &c.auditor,
            "POST",
            format!("{consents}/withdraw"),
            Some(&withdraw),
            403,
            "consent.withdraw",
        ),
        (
            &c.coordinator,
            "POST",
            format!("{consents}/withdraw"),
            Some(&withdraw),
            201,
            "consent.withdraw",
        ),
        (
            &c.practitioner,
            "GET",
            consents.clone(),
            None,
            403,
            "consent.history",
        ),
        (
            &c.system,
            "GET",
            consents.clone(),
            None,
            403,
            "consent.history",
        ),
        (
            &c.auditor,
            "GET",
            consents.clone(),
            None,
            200,
            "consent.history",
        ),
        (
            &c.practitioner,
            "POST",
            format!("/v1/subjects/{id}/discharge"),
            Some(&discharge),
            403,
            "subject.discharge",
        ),
        (
            &c.coordinator,
            "POST",
            format!("/v1/subjects/{id}/discharge"),
            Some(&discharge),
            200,
            "subject.discharge",
        ),
    ];
    for (client, method, path, body, expected, action) in calls {
        let request = match method {
            "POST" => client.post(app.url(&path)).json(body.unwrap()),
            _ => client.get(app.url(&path)),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let leaf: u64 = receipt(&response);
        if expected == 403 {
            assert_eq!(problem(response).await["code"], "role", "{method} {path}");
        }
        assert_eq!(status, expected, "{method} {path}");
        let entry = app.audit_entries().await.remove(leaf as usize);
        assert_eq!(entry.action, action, "{method} {path}");
        assert_eq!(
            entry.decision,
            if expected < 400 {
                Decision::Granted
            } else {
                Decision::Denied
            }
        );
        // A refused enrolment or lookup has found no one; every other call names the subject.
        let names_subject =
            !(action == "subject.enrol" || (action == "subject.lookup" && expected == 403));
        assert_eq!(
            entry.subject_id.as_deref(),
            names_subject.then_some(id.as_str()),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn identifiers_names_and_evidence_are_never_stored_or_audited_in_plain_text() {
    let app = spawn_app().await;
    let c = clients(&app).await;
    let id = enrol(&app, &c.coordinator).await;
    let consent = json!({"level": "full", "evidence": EVIDENCE, "given_on": "2026-01-15"});
    assert_eq!(
        post(
            &app,
            &c.coordinator,
            &format!("/v1/subjects/{id}/consents"),
            &consent
        )
        .await
        .status(),
        201
    );
    c.practitioner
        .get(app.url(&format!("/v1/subjects/lookup?nhs_number={NHS_DIGITS}")))
        .send()
        .await
        .unwrap();

    let secrets: [&[u8]; 4] = [
        NHS_DIGITS.as_bytes(),
        FAMILY.as_bytes(),
        EVIDENCE.as_bytes(),
        b"Marigold",
    ];
    let audit: Vec<String> = app
        .audit_entries()
        .await
        .iter()
        .map(|e| String::from_utf8(e.leaf_data().unwrap()).unwrap())
        .collect();
    for secret in secrets {
        let secret_text = std::str::from_utf8(secret).unwrap();
        assert!(
            !audit.iter().any(|line| line.contains(secret_text)),
            "audit holds {secret_text}"
        );
    }

    match &app.settings.database.url {
        DatabaseUrl::Sqlite(path) => {
            let mut stored = std::fs::read(path).unwrap();
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            stored.extend(std::fs::read(&wal).unwrap_or_default());
            assert!(stored.len() > 4096);
            for secret in secrets {
                assert!(
                    !stored.windows(secret.len()).any(|w| w == secret),
                    "{:?} found in the database files",
                    std::str::from_utf8(secret)
                );
            }
        }
        url => {
            use diesel::{Connection, RunQueryDsl};
            #[derive(diesel::QueryableByName)]
            struct Dump {
                #[diesel(sql_type = diesel::sql_types::Binary)]
                bytes: Vec<u8>,
            }
            let mut conn = diesel::pg::PgConnection::establish(&url.expose()).unwrap();
            let dump: Vec<Dump> = diesel::sql_query(
                "SELECT convert_to(s::text, 'UTF8') AS bytes FROM subjects s \
                 UNION ALL SELECT convert_to(c::text, 'UTF8') FROM consents c",
            )
            .load(&mut conn)
            .unwrap();
            let stored: Vec<u8> = dump.into_iter().flat_map(|d| d.bytes).collect();
            assert!(stored.len() > 200);
            for secret in secrets {
                assert!(
                    !stored.windows(secret.len()).any(|w| w == secret),
                    "{:?} stored in plain text",
                    std::str::from_utf8(secret)
                );
            }
        }
    }
}

#[tokio::test]
async fn no_change_is_made_when_its_audit_entry_cannot_be_written() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.audit.append_timeout = std::time::Duration::from_millis(400)
    })
    .await;
    let c = clients(&app).await;

    let lock = crate::helpers::hold_audit_write_lock(&app);
    let refused = post(&app, &c.coordinator, "/v1/subjects", &person()).await;
    assert_eq!(refused.status(), 503);
    drop(lock);

    let lookup = c
        .coordinator
        .get(app.url(&format!("/v1/subjects/lookup?nhs_number={NHS_DIGITS}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        lookup.status(),
        404,
        "the subject was enrolled without an audit entry"
    );
}

/// Makes every audit append of `action` fail until dropped, as a full disk or a broken
/// database would, without holding a lock (on SQLite the audit write lock is the whole
/// file's, which would stop the change itself too).
struct RefusedAppends(DatabaseUrl);

impl RefusedAppends {
    fn of(app: &TestApp, action: &str) -> Self {
        let url = app.owner_url.clone();
        let sql = match &url {
            DatabaseUrl::Sqlite(_) => format!(
                "CREATE TRIGGER refuse_appends BEFORE INSERT ON audit_entries \
                 WHEN NEW.action = '{action}' BEGIN SELECT RAISE(ABORT, 'refused'); END;"
            ),
            _ => format!(
                "CREATE FUNCTION refuse_appends() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'refused'; END $$; \
                 CREATE TRIGGER refuse_appends BEFORE INSERT ON audit_entries FOR EACH ROW \
                 WHEN (NEW.action = '{action}') EXECUTE FUNCTION refuse_appends();"
            ),
        };
        Self::execute(&url, &sql);
        Self(url)
    }

    fn execute(url: &DatabaseUrl, sql: &str) {
        use diesel::{connection::SimpleConnection, Connection};
        match url {
            DatabaseUrl::Sqlite(path) => {
                diesel::sqlite::SqliteConnection::establish(&path.to_string_lossy())
                    .unwrap()
                    .batch_execute(sql)
                    .unwrap();
            }
            url => diesel::pg::PgConnection::establish(&url.expose())
                .unwrap()
                .batch_execute(sql)
                .unwrap(),
        }
    }
}

impl Drop for RefusedAppends {
    fn drop(&mut self) {
        let sql = match &self.0 {
            DatabaseUrl::Sqlite(_) => "DROP TRIGGER refuse_appends;",
            _ => "DROP TRIGGER refuse_appends ON audit_entries; DROP FUNCTION refuse_appends();",
        };
        Self::execute(&self.0, sql);
    }
}

#[tokio::test]
async fn a_discharge_is_not_kept_when_its_audit_entry_cannot_be_written() {
    let app = spawn_app().await;
    let c = clients(&app).await;
    let id = enrol(&app, &c.coordinator).await;
    let path = format!("/v1/subjects/{id}/discharge");
    let discharge = json!({"discharged_on": "2026-06-30", "reason": "Completed the pathway"});

    let refused_appends = RefusedAppends::of(&app, "subject.discharge");
    let refused = post(&app, &c.coordinator, &path, &discharge).await;
    assert_eq!(refused.status(), 503);
    drop(refused_appends);

    let after = post(&app, &c.coordinator, &path, &discharge).await;
    assert_eq!(
        after.status(),
        200,
        "the subject was discharged without an audit entry"
    );
}

#[tokio::test]
async fn consent_may_exclude_a_category_the_record_types_file_adds() {
    let config = tempfile::tempdir().unwrap();
    let types = config.path().join("record-types.toml");
    std::fs::write(
        &types,
        format!(
            "categories = [\"housing\"]\n{}\n{}",
            std::fs::read_to_string("config/record-types.toml").unwrap(),
            "[types.\"programme.housing_referral\"]\nholders = [\"programme\"]\n\
             [types.\"programme.housing_referral\".fields]\n\
             referred_on = { type = \"date\", category = \"service_usage\", required = true }\n\
             tenancy = { category = \"housing\" }\n",
        ),
    )
    .unwrap();
    let app = crate::helpers::spawn_app_with(|s| s.policy.record_types = types).await;
    let c = clients(&app).await;
    let id = enrol(&app, &c.coordinator).await;
    let consents = format!("/v1/subjects/{id}/consents");

    let housing = post(
        &app,
        &c.coordinator,
        &consents,
        &json!({"level": "full", "excluded_categories": ["housing", "clinical"],
                "evidence": EVIDENCE, "given_on": "2026-01-15"}),
    )
    .await;
    assert_eq!(housing.status(), 201);
    let history: Value = app.get_json(&c.coordinator, &consents).await;
    assert_eq!(
        history["effective"]["excluded_categories"],
        json!(["clinical", "housing"])
    );

    let unknown = post(
        &app,
        &c.coordinator,
        &consents,
        &json!({"level": "full", "excluded_categories": ["horoscope"],
                "evidence": EVIDENCE, "given_on": "2026-01-15"}),
    )
    .await;
    assert_eq!(unknown.status(), 422);
    let unknown = problem(unknown).await;
    assert_eq!(unknown["errors"][0]["field"], "excluded_categories");
    assert!(
        !unknown.to_string().contains("horoscope"),
        "the problem quotes the value sent"
    );
}

#[tokio::test]
async fn a_second_discharge_is_refused_before_anything_is_recorded_as_granted() {
    let app = spawn_app().await;
    let c = clients(&app).await;
    let id = enrol(&app, &c.coordinator).await;
    let path = format!("/v1/subjects/{id}/discharge");
    let discharge = json!({"discharged_on": "2026-06-30", "reason": "Completed the pathway"});
    assert_eq!(
        post(&app, &c.coordinator, &path, &discharge).await.status(),
        200
    );

    let again = post(&app, &c.coordinator, &path, &discharge).await;
    assert_eq!(again.status(), 409);
    let entry = app.audit_entries().await.remove(receipt(&again) as usize);
    assert_eq!(
        (entry.action.as_str(), entry.decision),
        ("subject.discharge", Decision::Denied)
    );
    assert_eq!(entry.subject_id.as_deref(), Some(id.as_str()));
    let discharges = app
        .audit_entries()
        .await
        .into_iter()
        .filter(|e| e.action == "subject.discharge" && e.decision == Decision::Granted);
    assert_eq!(discharges.count(), 1);
}

/// A copy of `from` without `missing`, as a mis-mounted or half-restored `keys.dir` would be.
fn keys_without(from: &std::path::Path, missing: &str) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != missing {
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
        }
    }
    copy
}

#[tokio::test]
async fn a_gateway_missing_a_key_its_data_needs_refuses_to_start_and_creates_none() {
    let app = spawn_app().await;
    let c = clients(&app).await;
    enrol(&app, &c.coordinator).await;
    app.checkpoint_now().await.expect("a checkpoint is signed");

    for missing in ["data-key-1.bin", "blind-index.key", "audit-checkpoint.pk8"] {
        let keys = keys_without(&app.settings.keys.dir, missing);
        let mut settings = app.settings.clone();
        settings.keys.dir = keys.path().to_owned();

        let refused = concordat::startup::Application::build(&settings)
            .await
            .expect_err("a gateway without its keys must not start");

        let message = format!("{refused:#}");
        assert!(message.contains("restore"), "{message}");
        assert!(
            message.contains(missing) || message.contains("data-key-<n>.bin"),
            "{message}"
        );
        assert!(!keys.path().join(missing).exists(), "{missing} was created");
    }
}

#[tokio::test]
async fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app().await;
    let key = app.settings.keys.dir.join("blind-index.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();

    let refused = concordat::startup::Application::build(&app.settings)
        .await
        .expect_err("a readable key must not be used");

    let message = format!("{refused:#}");
    assert!(message.contains("blind-index.key"), "{message}");
    assert!(message.contains("0644"), "{message}");
}
