//! Both backends carry the same migration versions and apply them cleanly.

use std::{collections::BTreeSet, path::Path};

use concordat::db::Database;

use crate::helpers::test_database_url;

fn versions(backend: &str) -> BTreeSet<String> {
    std::fs::read_dir(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend),
    )
    .unwrap()
    .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
    .filter(|name| !name.starts_with('.'))
    .collect()
}

#[test]
fn sqlite_and_postgres_migrations_have_the_same_versions() {
    let sqlite = versions("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, versions("postgres"));
}

#[tokio::test]
async fn migrations_apply_once_on_the_test_backend() {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::connect(&test_database_url(dir.path())).unwrap();

    let first = database.migrate().unwrap();
    let second = database.migrate().unwrap();

    let expected: BTreeSet<String> = versions("sqlite")
        .into_iter()
        .map(|name| name.split('_').next().unwrap().replace('-', ""))
        .collect();
    let applied: BTreeSet<String> = first.into_iter().collect();
    assert_eq!(applied, expected);
    assert!(second.is_empty());
}

#[tokio::test]
async fn principal_versions_cannot_be_rewritten_in_the_database() {
    use diesel::RunQueryDsl;
    let dir = tempfile::tempdir().unwrap();
    let database = Database::connect(&test_database_url(dir.path())).unwrap();
    database.migrate().unwrap();

    let refused = database
        .run(|conn| {
            diesel::sql_query("INSERT INTO agencies (id, kind, name, created_at) VALUES ('scas', 'ambulance', 'SCAS', 0)")
                .execute(conn)?;
            diesel::sql_query(
                "INSERT INTO principals (id, version, agency_id, certificate_subject, certificate_issuer, roles, status, changed_at) \
                 VALUES ('p', 1, 'scas', 's', 'i', 'system', 'active', 0)",
            )
            .execute(conn)?;
            let update = diesel::sql_query("UPDATE principals SET status = 'disabled'").execute(conn);
            let delete = diesel::sql_query("DELETE FROM principals").execute(conn);
            Ok((update.is_err(), delete.is_err()))
        })
        .await
        .unwrap();

    assert_eq!(refused, (true, true));
}

#[tokio::test]
async fn audit_rows_cannot_be_rewritten_or_removed_in_the_database() {
    use diesel::RunQueryDsl;
    let app = crate::helpers::spawn_app().await;
    let client = app.client(
        &app.register("scas-system", "scas", &[concordat::domain::Role::System])
            .await,
    );
    app.whoami(&client).await.unwrap();
    app.checkpoint_now().await.unwrap();

    let refused = app
        .database
        .run(|conn| {
            let mut outcomes = Vec::new();
            for statement in [
                "UPDATE audit_entries SET action = 'x'",
                "DELETE FROM audit_entries",
                "UPDATE audit_nodes SET level = level",
                "DELETE FROM audit_nodes",
                "UPDATE audit_checkpoints SET signed_note = ''",
                "DELETE FROM audit_checkpoints",
            ] {
                outcomes.push((
                    statement,
                    diesel::sql_query(statement).execute(conn).is_err(),
                ));
            }
            Ok(outcomes)
        })
        .await
        .unwrap();
    for (statement, was_refused) in refused {
        assert!(was_refused, "the database accepted: {statement}");
    }
    assert_eq!(app.audit_entries().await.len(), 1);
}

#[tokio::test]
async fn on_postgres_the_application_role_cannot_update_delete_or_truncate() {
    use diesel::{connection::SimpleConnection, Connection};
    let app = crate::helpers::spawn_app().await;
    let concordat::config::DatabaseUrl::Postgres(_) = &app.settings.database.url else {
        // SQLite has no roles; its triggers are checked above.
        return;
    };
    let mut conn =
        diesel::pg::PgConnection::establish(&app.settings.database.url.expose()).unwrap();
    conn.batch_execute("SET ROLE concordat_app").unwrap();
    assert!(conn
        .batch_execute("SELECT count(*) FROM audit_entries")
        .is_ok());
    for statement in [
        "UPDATE agencies SET name = 'x'",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_entries",
    ] {
        let error = conn.batch_execute(statement).unwrap_err().to_string();
        assert!(error.contains("permission denied"), "{statement}: {error}");
    }
}

/// Every table whose history says who could see what refuses, from its owner, to rewrite a
/// row, remove one or (on PostgreSQL) be truncated: a database trigger, not only grants.
#[tokio::test]
async fn every_history_table_refuses_update_delete_and_truncate() {
    use concordat::{config::DatabaseUrl, domain::Role};
    use diesel::connection::SimpleConnection;
    use serde_json::{json, Value};

    let app = crate::helpers::spawn_app().await;
    app.import_example_agreement().await;
    let coordinator = app.client(
        &app.register("coordinator", "iow-recovery", &[Role::Coordinator])
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
        .json(&json!({"nhs_number": "9434765919", "given_name": "Marigold", "family_name": "Quillfeather",
                      "date_of_birth": "1988-04-02", "enrolled_on": "2026-01-15"}))
        .send().await.unwrap().json().await.unwrap();
    let subject = enrolled["subject_id"].as_str().unwrap().to_owned();
    let subject_url = |rest: &str| app.url(&format!("/v1/subjects/{subject}{rest}"));
    let sent = [
        coordinator
            .post(subject_url("/consents"))
            .json(&json!({"level": "crisis", "evidence": "Signed form", "given_on": "2026-01-15"}))
            .send()
            .await
            .unwrap(),
        police
            .post(subject_url("/records"))
            .json(
                &json!({"type": "police.incident", "occurred_at": "2026-03-02T22:00:00Z", "data": {
                "reported_at": "2026-03-02T22:00:00Z", "incident_type": "welfare check",
                "summary": "Found on bridge", "risk_markers": []}}),
            )
            .send()
            .await
            .unwrap(),
    ];
    for response in sent {
        assert_eq!(response.status(), 201);
    }
    let emergency = police
        .get(subject_url("/records?purpose=crisis_response"))
        .header(
            "Concordat-Break-Glass",
            "Person on a bridge, immediate risk to life",
        )
        .send()
        .await
        .unwrap();
    let alert = crate::helpers::receipt(&emergency);
    let reviewed = auditor
        .post(app.url(&format!("/v1/audit/alerts/{alert}/review")))
        .json(&json!({"outcome": "justified", "note": "Confirmed with the control room"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reviewed.status(), 200);
    let discharged = coordinator
        .post(subject_url("/discharge"))
        .json(&json!({"discharged_on": "2026-03-05", "reason": "Recovered"}))
        .send()
        .await
        .unwrap();
    assert_eq!(discharged.status(), 200);
    // A draft and one party's approval of it.
    let admin = app.client(&app.register("admin", "iow-recovery", &[Role::Admin]).await);
    let lead = app.client(
        &app.register("nhs-ig-lead", "iow-nhs", &[Role::IgLead])
            .await,
    );
    let mut draft: Value = toml::from_str(include_str!(
        "../../config/agreements/isa-iow-recovery.toml"
    ))
    .unwrap();
    draft["id"] = json!("isa-draft");
    let created = admin
        .post(app.url("/v1/agreements"))
        .json(&draft)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    let approved = lead
        .post(app.url("/v1/agreements/isa-draft/versions/1/approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200, "{:?}", approved.text().await);
    app.checkpoint_now().await.unwrap();

    let postgres = matches!(app.settings.database.url, DatabaseUrl::Postgres(_));
    let tables = [
        ("agencies", "name"),
        ("principals", "roles"),
        ("subjects", "nhs_number_index"),
        ("subject_discharges", "discharged_on"),
        ("consents", "version"),
        ("agreement_versions", "version"),
        ("agreement_approvals", "version"),
        ("agreement_events", "seq"),
        ("records", "record_type"),
        ("alert_reviews", "outcome"),
        ("audit_entries", "action"),
        ("audit_nodes", "level"),
        ("audit_checkpoints", "signed_note"),
    ];
    let outcomes = app
        .database
        .run(move |conn| {
            let mut outcomes = Vec::new();
            for (table, column) in tables {
                let mut statements = vec![
                    format!("UPDATE {table} SET {column} = {column}"),
                    format!("DELETE FROM {table}"),
                ];
                if postgres {
                    statements.push(format!("TRUNCATE {table} CASCADE"));
                }
                for statement in statements {
                    let refused = conn.batch_execute(&statement).err().map(|e| e.to_string());
                    outcomes.push((statement, refused));
                }
            }
            Ok(outcomes)
        })
        .await
        .unwrap();
    for (statement, refused) in outcomes {
        let message = refused.unwrap_or_else(|| panic!("the database accepted: {statement}"));
        assert!(message.contains("append-only"), "{statement}: {message}");
    }
}
