//! Both backends carry the same migration versions and apply them cleanly; the gateway
//! never migrates, and on PostgreSQL runs only as a role that cannot rewrite history.

use std::{collections::BTreeSet, path::Path};

use concordat::{
    config::{DatabaseUrl, Settings},
    db::{migrations::SchemaMismatch, Database, DbError},
    startup::Application,
};

use crate::helpers::{
    postgres_url_as, prepare_app, test_database_url, test_settings, GATEWAY_ROLE,
};

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

/// The PostgreSQL suite runs the gateway as a login member of `concordat_app`: that role can
/// read and append, and the database itself refuses it anything else.
#[tokio::test]
async fn on_postgres_the_gateway_role_cannot_update_delete_or_truncate() {
    use diesel::{connection::SimpleConnection, Connection};
    let app = crate::helpers::spawn_app().await;
    let DatabaseUrl::Postgres(_) = &app.settings.database.url else {
        // SQLite has no roles; its triggers are checked below.
        return;
    };
    assert_ne!(app.settings.database.url.expose(), app.owner_url.expose());
    let mut conn =
        diesel::pg::PgConnection::establish(&app.settings.database.url.expose()).unwrap();
    assert!(conn
        .batch_execute("SELECT count(*) FROM audit_entries")
        .is_ok());
    for statement in [
        "UPDATE agencies SET name = 'x'",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_entries",
        "ALTER TABLE audit_entries DISABLE TRIGGER USER",
        "CREATE TABLE shadow (id integer)",
    ] {
        let error = conn.batch_execute(statement).unwrap_err().to_string();
        assert!(
            error.contains("permission denied") || error.contains("must be owner"),
            "{statement}: {error}"
        );
    }
}

/// Makes sure `concordat_app` exists in the test cluster: the first migration of any
/// database creates it.
fn application_role_exists() {
    let dir = tempfile::tempdir().unwrap();
    Database::connect(&test_database_url(dir.path()))
        .unwrap()
        .migrate()
        .unwrap();
}

/// The message `Application::build` stops with, for settings that must not start.
async fn start_refusal(settings: &Settings) -> String {
    match Application::build(settings).await {
        Ok(_) => panic!("the gateway started"),
        Err(error) => format!("{error:#}"),
    }
}

/// `serve` never migrates: a database nobody migrated is refused, naming `concordat
/// migrate`, and left as it was.
#[tokio::test]
async fn the_gateway_refuses_an_unmigrated_database_and_leaves_it_unmigrated() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    concordat::pki::PkiDirectory::new(dir.path().join("pki"))
        .init()
        .unwrap();
    let owner = settings.database.url.clone();
    if let DatabaseUrl::Postgres(_) = owner {
        // As production would: the gateway's role, not the owner (a superuser here).
        application_role_exists();
        settings.database.url = postgres_url_as(&owner, GATEWAY_ROLE, "concordat_app");
    }

    let message = start_refusal(&settings).await;

    assert!(message.contains("no Concordat schema"), "{message}");
    assert!(message.contains("run `concordat migrate`"), "{message}");
    let database = Database::connect(&owner).unwrap();
    assert!(matches!(
        database.require_current_schema(),
        Err(DbError::Schema(SchemaMismatch::Missing))
    ));
}

/// A schema behind the binary (a migration not applied) or ahead of it (one it does not
/// know, from a newer version) stops the start, saying which.
#[tokio::test]
async fn the_gateway_refuses_a_schema_behind_or_ahead_of_its_version() {
    use diesel::connection::SimpleConnection;
    let app = prepare_app(|_| {}).await;
    let latest = versions("sqlite")
        .into_iter()
        .map(|name| name.split('_').next().unwrap().replace('-', ""))
        .max()
        .unwrap();
    let owner = |sql: String| {
        app.database
            .run_blocking(move |conn| Ok(conn.batch_execute(&sql)?))
            .unwrap()
    };

    owner("INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000001')".into());
    let ahead = start_refusal(&app.settings).await;
    assert!(ahead.contains("does not know (29991231000001)"), "{ahead}");
    assert!(ahead.contains("newer version"), "{ahead}");

    owner(format!(
        "DELETE FROM __diesel_schema_migrations WHERE version IN ('29991231000001', '{latest}')"
    ));
    let behind = start_refusal(&app.settings).await;
    assert!(
        behind.contains(&format!("not applied: {latest}")),
        "{behind}"
    );
    assert!(behind.contains("run `concordat migrate`"), "{behind}");
}

/// On PostgreSQL the gateway refuses to run as any role that could rewrite history: a
/// superuser, an owner (or a member of one) of a table, a role holding UPDATE, DELETE or
/// TRUNCATE (directly, by column or through a role), or one that may create in the schema;
/// and one that is not a member of `concordat_app` could not work at all.
/// `concordat migrate` takes CREATE on the schema back from PUBLIC.
#[tokio::test]
async fn on_postgres_the_gateway_refuses_a_role_that_could_rewrite_history() {
    use diesel::connection::SimpleConnection;
    let app = prepare_app(|_| {}).await;
    if let DatabaseUrl::Sqlite(_) = app.owner_url {
        return;
    }
    let owner = |sql: &str| {
        let sql = sql.to_owned();
        app.database
            .run_blocking(move |conn| Ok(conn.batch_execute(&sql)?))
            .unwrap()
    };
    let as_role = |role: &str, member_of: &str| {
        let mut settings = app.settings.clone();
        settings.database.url = postgres_url_as(&app.owner_url, role, member_of);
        settings
    };
    // The roles are cluster-wide and kept; what they may do is granted in this database
    // only, which goes with it.
    let table_owner = as_role("concordat_test_table_owner", "concordat_app");
    let owner_member = as_role(
        "concordat_test_owner_member",
        "concordat_app, concordat_test_table_owner",
    );
    let rewriter = as_role("concordat_test_rewriter", "concordat_app");
    let rewriting_group = as_role("concordat_test_rewriting_group", "concordat_app");
    let rewriter_by_group = as_role(
        "concordat_test_rewriter_by_group",
        "concordat_app, concordat_test_rewriting_group",
    );
    let creator = as_role("concordat_test_creator", "concordat_app");
    let outsider = as_role("concordat_test_outsider", "");
    let role_maker = as_role("concordat_test_role_maker", "concordat_app");
    let schema_maker = as_role("concordat_test_schema_maker", "concordat_app");
    owner(
        "ALTER TABLE agencies OWNER TO concordat_test_table_owner; \
         GRANT UPDATE (name) ON agencies TO concordat_test_rewriter; \
         GRANT DELETE ON consents TO concordat_test_rewriter; \
         GRANT TRUNCATE ON records TO concordat_test_rewriting_group; \
         GRANT CREATE ON SCHEMA public TO concordat_test_creator; \
         ALTER ROLE concordat_test_role_maker CREATEROLE; \
         DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO concordat_test_schema_maker', \
                                    current_database()); END $$",
    );

    let mut superuser = app.settings.clone();
    superuser.database.url = app.owner_url.clone();
    let message = start_refusal(&superuser).await;
    assert!(message.contains("a PostgreSQL superuser"), "{message}");
    assert!(message.contains("IN ROLE concordat_app"), "{message}");

    for settings in [&table_owner, &owner_member] {
        let message = start_refusal(settings).await;
        assert!(
            message.contains("owns or can act as the owner of agencies:"),
            "{message}"
        );
    }
    let message = start_refusal(&rewriter).await;
    assert!(
        message.contains("holds UPDATE on agencies, DELETE on consents:"),
        "{message}"
    );
    for settings in [&rewriting_group, &rewriter_by_group] {
        let message = start_refusal(settings).await;
        assert!(message.contains("holds TRUNCATE on records:"), "{message}");
    }
    let message = start_refusal(&creator).await;
    assert!(
        message.contains("may create objects in schema public"),
        "{message}"
    );

    let message = start_refusal(&role_maker).await;
    assert!(
        message.contains("may create or administer roles"),
        "{message}"
    );
    let message = start_refusal(&schema_maker).await;
    assert!(
        message.contains("may create schemas in this database"),
        "{message}"
    );
    let message = start_refusal(&outsider).await;
    assert!(
        message.contains("not a member of concordat_app"),
        "{message}"
    );

    // Granted to PUBLIC, CREATE reaches every role; `migrate` takes it back.
    owner("GRANT CREATE ON SCHEMA public TO PUBLIC");
    let message = start_refusal(&app.settings).await;
    assert!(
        message.contains("may create objects in schema public"),
        "{message}"
    );
    app.database.migrate().unwrap();
    let application = Application::build(&app.settings).await;
    assert!(application.is_ok(), "{:#}", application.unwrap_err());
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
        ("audit_cosignatures", "signature_line"),
        ("record_type_catalogues", "definition"),
    ];
    let outcomes = app
        .database
        .run(move |conn| {
            // A witness's cosignature of the latest checkpoint, as the gateway keeps one.
            conn.batch_execute(
                "INSERT INTO audit_cosignatures (tree_size, witness, signature_line, received_at) \
                 SELECT max(tree_size), 'witness.test/w1', 'line', 0 FROM audit_checkpoints",
            )?;
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

/// Production's shape: the schema belongs to a role that is no superuser and may not create
/// roles (`concordat_app` exists already, made once for the cluster by an administrator);
/// it migrates, and the gateway's login role then passes every start-up check.
#[tokio::test]
async fn on_postgres_an_owner_without_superuser_or_createrole_migrates() {
    use diesel::{Connection, RunQueryDsl};
    let Ok(base) = std::env::var("CONCORDAT_TEST_POSTGRES_URL") else {
        return;
    };
    application_role_exists();

    let mut admin = diesel::pg::PgConnection::establish(&base).unwrap();
    let name = format!("concordat_test_{}", uuid::Uuid::new_v4().simple());
    for sql in [
        "DO $$ BEGIN CREATE ROLE concordat_test_schema_owner LOGIN NOSUPERUSER NOCREATEROLE; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            .to_owned(),
        format!("CREATE DATABASE {name} OWNER concordat_test_schema_owner"),
    ] {
        diesel::sql_query(sql).execute(&mut admin).unwrap();
    }
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&name);
    let superuser_url = DatabaseUrl::parse(url.as_str()).unwrap();
    url.set_username("concordat_test_schema_owner").unwrap();
    let owner = Database::connect(&DatabaseUrl::parse(url.as_str()).unwrap()).unwrap();

    let applied = owner.migrate();
    assert!(applied.is_ok(), "{:?}", applied.unwrap_err());
    let gateway = Database::connect(&postgres_url_as(
        &superuser_url,
        "concordat_test_gateway",
        "concordat_app",
    ))
    .unwrap();
    gateway.require_current_schema().unwrap();
    gateway.require_append_only_role().unwrap();
}
