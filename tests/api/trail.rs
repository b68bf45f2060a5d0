//! The audit trail across processes: a crash loses no acknowledged entry, two instances
//! share one tree, and the operator's and an outsider's verifiers catch tampering.

use std::{path::Path, process::Command, sync::Arc, time::Duration};

use concordat::{audit::LeafIndex, config::DatabaseUrl, domain::Role, startup::Application};
use diesel::{connection::SimpleConnection, Connection};
use futures_util::future::join_all;

use crate::helpers::{prepare_app, ServerProcess, TestApp, BINARY};

fn concordat(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BINARY)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("CONCORDAT_CONFIG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Rewrites stored leaf `index` as a forger with the database file would: triggers off,
/// the entry and its search column changed together.
fn forge_entry(app: &TestApp, index: u64) {
    let entry = app
        .database
        .run_blocking(|conn| concordat::audit::store::leaf_data(conn, LeafIndex(index)));
    let data = String::from_utf8(entry.unwrap().unwrap()).unwrap();
    let forged = data.replace("\"decision\":\"granted\"", "\"decision\":\"denied\"");
    assert_ne!(data, forged);
    let hex_data = hex::encode(forged.as_bytes());
    match &app.owner_url {
        DatabaseUrl::Sqlite(path) => {
            let mut conn =
                diesel::sqlite::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
            conn.batch_execute(&format!(
                "DROP TRIGGER audit_entries_no_update; \
                 UPDATE audit_entries SET decision = 'denied', leaf_data = X'{hex_data}' WHERE leaf_index = {index};"
            ))
            .unwrap();
        }
        url => {
            let mut conn = diesel::pg::PgConnection::establish(&url.expose()).unwrap();
            conn.batch_execute(&format!(
                "ALTER TABLE audit_entries DISABLE TRIGGER USER; \
                 UPDATE audit_entries SET decision = 'denied', leaf_data = '\\x{hex_data}'::bytea WHERE leaf_index = {index};"
            ))
            .unwrap();
        }
    }
}

async fn some_traffic(app: &TestApp, count: usize) {
    let client = app.client(&app.register("scas-system", "scas", &[Role::System]).await);
    for _ in 0..count {
        assert_eq!(app.whoami(&client).await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn a_killed_gateway_loses_no_acknowledged_entry_and_still_verifies() {
    let mut app = prepare_app(|_| {}).await;
    let certificate = app
        .register("police-mentor", "hampshire-police", &[Role::Practitioner])
        .await;
    let config = app.write_config();
    let mut server = ServerProcess::start(&config);
    app.port = server.port;

    // Four clients stream requests; the gateway is killed while they do.
    let app = Arc::new(app);
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let streams: Vec<_> = (0..4)
        .map(|_| {
            let (app, acknowledged) = (Arc::clone(&app), Arc::clone(&acknowledged));
            let client = app.client(&certificate);
            tokio::spawn(async move {
                for _ in 0..400 {
                    match app.whoami(&client).await {
                        Ok(response) if response.status() == 200 => {
                            let id = response.headers()["x-request-id"]
                                .to_str()
                                .unwrap()
                                .to_owned();
                            acknowledged.lock().unwrap().push(id);
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < 100 {
        tokio::task::yield_now().await;
    }
    server.kill();
    join_all(streams).await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 100);

    // Restart on the same database: it must come up, and the trail must hold.
    let restarted = ServerProcess::start(&config);
    drop(restarted);
    app.checkpoint_now().await;
    let report = app.verify().expect("the trail verifies after a crash");
    let stored: std::collections::HashSet<String> = app
        .audit_entries()
        .await
        .into_iter()
        .map(|e| e.request_id)
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged requests have no entry",
        lost.len()
    );
    assert!(report.entries >= acknowledged.len() as u64);

    let verified = concordat(&config, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert!(text(&verified.stdout).contains("audit trail verified"));
}

#[tokio::test]
async fn two_instances_on_one_database_write_one_tree() {
    let mut app = prepare_app(|_| {}).await;
    let certificate = app.register("scas-system", "scas", &[Role::System]).await;
    let first = Application::build(&app.settings).await.unwrap();
    let second = Application::build(&app.settings).await.unwrap();
    let ports = [first.port(), second.port()];
    tokio::spawn(first.run_until_stopped());
    tokio::spawn(second.run_until_stopped());

    let requests = (0..60).map(|i| {
        let client = app.client(&certificate);
        let url = format!("https://localhost:{}/v1/whoami", ports[i % 2]);
        async move { client.get(url).send().await.unwrap().status() }
    });
    let statuses = join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    app.port = ports[0];
    app.checkpoint_now().await.unwrap();
    let entries = app.audit_entries().await;
    let indexes: Vec<u64> = entries.iter().map(|e| e.leaf_index).collect();
    assert_eq!(indexes, (0..60).collect::<Vec<_>>());
    assert_eq!(app.verify().unwrap().entries, 60);
}

#[tokio::test]
async fn verify_names_the_first_tampered_leaf_and_exits_1() {
    let app = crate::helpers::spawn_app().await;
    some_traffic(&app, 8).await;
    app.checkpoint_now().await.unwrap();
    let config = app.write_config();
    let clean = concordat(&config, &["audit", "verify"]);
    assert!(clean.status.success(), "{}", text(&clean.stderr));
    assert!(
        text(&clean.stdout).contains("8 entries, 1 checkpoints"),
        "{}",
        text(&clean.stdout)
    );

    forge_entry(&app, 5);

    let tampered = concordat(&config, &["audit", "verify"]);
    assert_eq!(tampered.status.code(), Some(1));
    assert!(
        text(&tampered.stderr).contains("leaf 5:"),
        "{}",
        text(&tampered.stderr)
    );
}

#[tokio::test]
async fn verify_checks_that_the_log_extends_a_witness_checkpoint() {
    let app = crate::helpers::spawn_app().await;
    some_traffic(&app, 3).await;
    app.checkpoint_now().await.unwrap();
    let note = app
        .database
        .run_blocking(concordat::audit::store::latest_checkpoint)
        .unwrap()
        .unwrap()
        .signed_note;
    let witness = app.dir.path().join("witness.note");
    std::fs::write(&witness, &note).unwrap();
    let client = app.client(
        &app.register("nhs-nurse", "iow-nhs", &[Role::Practitioner])
            .await,
    );
    app.whoami(&client).await.unwrap();
    app.checkpoint_now().await.unwrap();
    let config = app.write_config();

    let extends = concordat(
        &config,
        &["audit", "verify", "--checkpoint", witness.to_str().unwrap()],
    );
    assert!(extends.status.success(), "{}", text(&extends.stderr));
    assert!(text(&extends.stdout).contains("extends the witness checkpoint"));

    let forged = note.replacen("\n3\n", "\n2\n", 1);
    std::fs::write(&witness, forged).unwrap();
    let refused = concordat(
        &config,
        &["audit", "verify", "--checkpoint", witness.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("witness"),
        "{}",
        text(&refused.stderr)
    );
}

#[tokio::test]
async fn the_independent_python_verifier_accepts_an_export_and_rejects_a_tampered_one() {
    let app = crate::helpers::spawn_app().await;
    some_traffic(&app, 6).await;
    app.checkpoint_now().await.unwrap();
    let config = app.write_config();
    let dir = app.dir.path();
    let export = dir.join("export.ndjson");
    let exported = concordat(
        &config,
        &[
            "audit",
            "export",
            "--format",
            "ndjson",
            "--out",
            export.to_str().unwrap(),
        ],
    );
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let note = app
        .database
        .run_blocking(concordat::audit::store::latest_checkpoint)
        .unwrap()
        .unwrap()
        .signed_note;
    let checkpoint = dir.join("checkpoint.note");
    std::fs::write(&checkpoint, note).unwrap();
    let vkey = app.settings.keys.dir.join("audit-checkpoint.vkey");
    let tool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/verify_export.py");
    let python = |export: &Path| {
        Command::new("python3")
            .arg(&tool)
            .args([export, checkpoint.as_path(), vkey.as_path()])
            .output()
            .expect("python3 runs (CI installs it with the cryptography package)")
    };

    let accepted = python(&export);
    assert!(
        accepted.status.success(),
        "{}{}",
        text(&accepted.stdout),
        text(&accepted.stderr)
    );
    assert!(
        text(&accepted.stdout).starts_with("OK: 6 entries"),
        "{}",
        text(&accepted.stdout)
    );

    let original = std::fs::read_to_string(&export).unwrap();
    let tampered = dir.join("tampered.ndjson");
    std::fs::write(
        &tampered,
        original.replacen("\"decision\":\"granted\"", "\"decision\":\"denied\"", 1),
    )
    .unwrap();
    let rejected = python(&tampered);
    assert_eq!(rejected.status.code(), Some(1));
    assert!(
        text(&rejected.stderr).contains("FAILED"),
        "{}",
        text(&rejected.stderr)
    );
}

#[tokio::test]
async fn the_gateway_signs_checkpoints_on_its_own_timer() {
    let app =
        crate::helpers::spawn_app_with(|s| s.audit.checkpoint_every = Duration::from_millis(100))
            .await;
    some_traffic(&app, 2).await;
    let signed = crate::helpers::eventually(Duration::from_secs(5), || async {
        app.database
            .run(concordat::audit::store::latest_checkpoint)
            .await
            .unwrap()
            .is_some_and(|c| c.tree_size >= 2)
    })
    .await;
    assert!(signed);
}

#[tokio::test]
async fn a_graceful_shutdown_signs_a_checkpoint_covering_every_entry() {
    // A timer that never fires in this test: only shutdown can sign.
    let mut app = prepare_app(|s| s.audit.checkpoint_every = Duration::from_secs(3600)).await;
    let certificate = app.register("scas-system", "scas", &[Role::System]).await;
    let mut server = ServerProcess::start(&app.write_config());
    app.port = server.port;
    let client = app.client(&certificate);
    for _ in 0..3 {
        assert_eq!(app.whoami(&client).await.unwrap().status(), 200);
    }

    assert!(server.terminate().success());

    let latest = app
        .database
        .run(concordat::audit::store::latest_checkpoint)
        .await
        .unwrap()
        .expect("a checkpoint signed at shutdown");
    assert_eq!(latest.tree_size, 3);
}
