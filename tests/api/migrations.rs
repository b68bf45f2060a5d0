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
