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
