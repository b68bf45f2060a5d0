//! Witnesses: agencies' own `concordat witness` processes, each with its own key, cosign the
//! gateway's checkpoints; the gateway serves them with the checkpoint and reports a witness
//! that is down without ever holding up a request.

use std::{
    path::{Path, PathBuf},
    process::Child,
    time::Duration,
};

use concordat::{
    audit::{
        checkpoint::{note_body, CheckpointSigner},
        cosignature::{count_cosigners, WitnessKey},
    },
    config::WitnessEndpoint,
    domain::Role,
};

use crate::helpers::{eventually, spawn_app_with, TestApp, BINARY};

/// A witness process on a port of its own, stopped when dropped.
struct WitnessProcess {
    child: Child,
    key: WitnessKey,
    url: String,
    home: PathBuf,
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `concordat witness` in `dir` following the log of `log_vkey`, and waits until it
/// answers.
async fn start_witness(dir: &Path, name: &str, origin: &str, log_vkey: &str) -> WitnessProcess {
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("witness.toml"),
        format!(
            "name = \"{name}\"\nkey = \"witness.pk8\"\nstate_dir = \"state\"\n\
             bind = \"127.0.0.1:{port}\"\n[[logs]]\norigin = \"{origin}\"\nvkey = \"{log_vkey}\"\n"
        ),
    )
    .unwrap();
    let witness = |args: &[&str]| {
        let mut command = std::process::Command::new(BINARY);
        command
            .current_dir(dir)
            .args(["witness", "--config", "witness.toml"])
            .args(args);
        command
    };
    let key = witness(&["key"]).output().unwrap();
    let key = WitnessKey::parse(&String::from_utf8(key.stdout).unwrap()).unwrap();
    let child = witness(&[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let metrics = format!("{url}/metrics");
    assert!(
        eventually(Duration::from_secs(10), || async {
            reqwest::get(&metrics).await.is_ok()
        })
        .await,
        "the witness {name} did not start"
    );
    // The operator can print the key while the witness runs (it locks only its state).
    let running = witness(&["key"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&running.stdout).trim(),
        key.encode(),
        "{}",
        String::from_utf8_lossy(&running.stderr)
    );
    WitnessProcess {
        child,
        key,
        url,
        home: dir.to_path_buf(),
    }
}

/// A gateway for the log `origin` whose checkpoint key is made first, so that one witness
/// process per name (each in its own directory under `dir`) can be told it; quorum 2,
/// checkpoints every `checkpoint_every`.
struct Witnessed {
    app: TestApp,
    witnesses: Vec<WitnessProcess>,
    keys: PathBuf,
    log_vkey: String,
}

async fn witnessed_gateway(
    dir: &Path,
    origin: &str,
    names: &[&str],
    checkpoint_every: Duration,
) -> Witnessed {
    let keys = dir.join("gateway-keys");
    let log_vkey = CheckpointSigner::load_or_create(&keys, origin)
        .unwrap()
        .verifier()
        .encode();
    let mut witnesses = Vec::new();
    for name in names {
        let home = dir.join(name.replace('/', "-"));
        witnesses.push(start_witness(&home, name, origin, &log_vkey).await);
    }
    let endpoints: Vec<WitnessEndpoint> = witnesses
        .iter()
        .map(|w| WitnessEndpoint {
            url: w.url.clone(),
            vkey: w.key.encode(),
        })
        .collect();
    let app = spawn_app_with(|settings| {
        settings.keys.dir = keys.clone();
        settings.audit.origin = origin.into();
        settings.audit.checkpoint_every = checkpoint_every;
        settings.audit.witnesses = endpoints;
        settings.audit.witness_quorum = 2;
    })
    .await;
    Witnessed {
        app,
        witnesses,
        keys,
        log_vkey,
    }
}

#[tokio::test]
async fn three_witnesses_cosign_and_one_down_is_reported_without_holding_anything_up() {
    let dir = tempfile::tempdir().unwrap();
    let origin = "concordat.test/witnessed";
    let Witnessed {
        app,
        mut witnesses,
        keys,
        log_vkey,
    } = witnessed_gateway(
        dir.path(),
        origin,
        &["police.test/w1", "nhs.test/w2", "ambulance.test/w3"],
        Duration::from_millis(300),
    )
    .await;
    let auditor = app.client(
        &app.register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
            .await,
    );
    let keys_of = |ws: &[WitnessProcess]| ws.iter().map(|w| w.key.clone()).collect::<Vec<_>>();
    let all = keys_of(&witnesses);
    let cosigned_by = |note: &str, keys: &[WitnessKey]| {
        // Before the first checkpoint the answer is a problem document: no cosigners.
        note.split_once("\n\n").map_or(0, |(_, signatures)| {
            count_cosigners(keys, &note_body(note), signatures)
        })
    };
    let checkpoint = || async {
        auditor
            .get(app.url("/v1/audit/checkpoint"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };

    // Every witness cosigns a checkpoint of the growing tree, served with it.
    app.whoami(&auditor).await.unwrap();
    assert!(
        eventually(Duration::from_secs(15), || async {
            cosigned_by(&checkpoint().await, &all) == 3
        })
        .await,
        "not every witness cosigned: {}\n{}",
        checkpoint().await,
        reqwest::get(app.ops_url("/health/ready"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    );
    let note = checkpoint().await;
    CheckpointSigner::load(&keys, origin)
        .unwrap()
        .verifier()
        .verify(&note)
        .unwrap();
    // The same, by an implementation written from the C2SP specifications alone.
    let note_file = dir.path().join("checkpoint.note");
    std::fs::write(&note_file, &note).unwrap();
    let independent = |quorum: &str, keys: &[WitnessKey]| {
        std::process::Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/verify_cosignatures.py"))
            .arg(&note_file)
            .arg(&log_vkey)
            .arg(quorum)
            .args(keys.iter().map(WitnessKey::encode))
            .output()
            .expect("python3 runs (CI installs it with the cryptography package)")
    };
    let checked = independent("3", &all);
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // One witness's signature with a byte changed: two valid cosignatures are left.
    let tampered: String = note
        .lines()
        .map(|line| match line.strip_prefix("\u{2014} police.test/w1 ") {
            Some(encoded) => {
                use base64::{engine::general_purpose::STANDARD, Engine};
                let mut bytes = STANDARD.decode(encoded).unwrap();
                bytes[20] ^= 1;
                format!("\u{2014} police.test/w1 {}\n", STANDARD.encode(bytes))
            }
            None => format!("{line}\n"),
        })
        .collect();
    std::fs::write(&note_file, tampered).unwrap();
    assert!(!independent("3", &all).status.success());
    assert!(independent("2", &all).status.success());

    // One witness down: requests are served as before, later checkpoints are cosigned by
    // the other two (the quorum), and the one down is reported.
    let down = witnesses.remove(1);
    let down_name = down.key.name().to_owned();
    drop(down);
    let before = note_body(&note);
    assert!(app.whoami(&auditor).await.is_ok());
    assert!(
        eventually(Duration::from_secs(15), || async {
            let note = checkpoint().await;
            note_body(&note) != before && cosigned_by(&note, &keys_of(&witnesses)) == 2
        })
        .await,
        "the two witnesses left did not cosign a new checkpoint"
    );
    let ready: serde_json::Value = reqwest::get(app.ops_url("/health/ready"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["witnesses"]["quorum"], 2);
    assert_eq!(ready["witnesses"]["latest_checkpoint"]["quorum_met"], true);
    let reported = ready["witnesses"]["each"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == down_name.as_str())
        .unwrap();
    assert!(
        reported["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("unreachable")),
        "{reported}"
    );
    let metrics = reqwest::get(app.ops_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "concordat_witness_failures_total{{witness=\"{down_name}\"}}"
        )),
        "{metrics}"
    );

    // `audit verify` accepts a checkpoint only with the quorum of the keys it is given.
    let config = app.write_config();
    let verify = |keys: &[WitnessKey], quorum: &str| {
        let mut command = std::process::Command::new(BINARY);
        command.args(["--config", config.to_str().unwrap(), "audit", "verify"]);
        for key in keys {
            command.args(["--witness", &key.encode()]);
        }
        command.args(["--quorum", quorum]).output().unwrap()
    };
    let two = verify(&all, "2");
    let said = String::from_utf8_lossy(&two.stdout);
    assert!(
        two.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&two.stderr)
    );
    assert!(
        said.contains("witnessed: the checkpoint at tree size"),
        "{said}"
    );
    // All three cosigned only the checkpoints before one went down.
    let three = verify(&all, "3");
    assert!(three.status.success());
    let stranger = tempfile::tempdir().unwrap();
    let unknown = concordat::audit::cosignature::WitnessSigner::load_or_create(
        &stranger.path().join("k.pk8"),
        "stranger.test/w9",
    )
    .unwrap();
    let refused = verify(&[unknown.key().clone()], "1");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no checkpoint has 1 valid cosignature")
    );
}

/// A fork: a copy of the database, served by a second gateway with the same key, grows a
/// history of its own. Every witness that cosigned the original refuses the copy's
/// checkpoints, keeps the evidence and says so (`witness check` exits 1); the copy's gateway
/// reports the refusals.
#[tokio::test]
async fn a_forked_log_is_refused_by_every_witness_that_saw_the_original_with_evidence_kept() {
    use concordat::{config::DatabaseUrl, startup::Application};
    use diesel::connection::SimpleConnection;

    let dir = tempfile::tempdir().unwrap();
    let origin = "concordat.test/forked";
    let Witnessed { app, witnesses, .. } = witnessed_gateway(
        dir.path(),
        origin,
        &["police.test/w1", "nhs.test/w2"],
        Duration::from_millis(200),
    )
    .await;
    let DatabaseUrl::Sqlite(_) = app.owner_url else {
        // The copy is a file copy; PostgreSQL would fork the same way from a restored dump.
        return;
    };
    let client = app.client(&app.register("scas-system", "scas", &[Role::System]).await);
    let ready_on = |port: u16| {
        let url = format!("http://127.0.0.1:{port}/health/ready");
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let cosigned_at_least = |port: u16, size: u64| async move {
        let ready = ready_on(port).await;
        ready["witnesses"]["each"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["cosigned_size"].as_u64().is_some_and(|s| s >= size))
    };
    app.whoami(&client).await.unwrap();
    assert!(
        eventually(Duration::from_secs(15), || cosigned_at_least(
            app.ops_port,
            1
        ))
        .await,
        "the witnesses did not cosign the original"
    );

    // The copy, taken now; then the original grows and is witnessed a little further.
    let copy = dir.path().join("copy.db");
    let copy_sql = format!("VACUUM INTO '{}'", copy.display());
    app.database
        .run_blocking(move |conn| Ok(conn.batch_execute(&copy_sql)?))
        .unwrap();
    app.whoami(&client).await.unwrap();
    let original_size = app.audit_entries().await.len() as u64;
    assert!(
        eventually(Duration::from_secs(15), || cosigned_at_least(
            app.ops_port,
            original_size
        ))
        .await,
        "the witnesses did not cosign the original's growth"
    );

    // A second gateway on the copy, same key and origin, grows another history past it.
    let mut forked = app.settings.clone();
    forked.database.url = DatabaseUrl::Sqlite(copy);
    let fork = Application::build(&forked).await.unwrap();
    let (fork_port, fork_ops) = (fork.port(), fork.ops_port());
    tokio::spawn(fork.run_until_stopped());
    // Still behind the original: every witness has cosigned more than the fork holds.
    let ahead_everywhere = || async {
        let ready = ready_on(fork_ops).await;
        ready["witnesses"]["each"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| {
                w["last_error"].as_str().is_some_and(|e| {
                    e.contains(&format!(
                        "has cosigned a checkpoint of {original_size} entries"
                    ))
                })
            })
    };
    assert!(
        eventually(Duration::from_secs(15), ahead_everywhere).await,
        "the fork's gateway did not report witnesses ahead of it: {}",
        ready_on(fork_ops).await
    );
    for _ in 0..original_size + 2 {
        client
            .get(app.url_on(fork_port, "/v1/whoami"))
            .send()
            .await
            .unwrap();
    }
    let refused_everywhere = || async {
        let ready = ready_on(fork_ops).await;
        ready["witnesses"]["each"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| {
                w["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("refused with 422"))
            })
    };
    assert!(
        eventually(Duration::from_secs(15), refused_everywhere).await,
        "the witnesses did not refuse the fork: {}",
        ready_on(fork_ops).await
    );

    for witness in &witnesses {
        let (name, home) = (witness.key.name(), &witness.home);
        let check = std::process::Command::new(BINARY)
            .current_dir(home)
            .args(["witness", "--config", "witness.toml", "check"])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&check.stdout);
        assert!(!check.status.success(), "{name}: {out}");
        let evidence: Vec<_> = std::fs::read_dir(home.join("state/evidence"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!evidence.is_empty(), "{name} kept no evidence");
        let kept = &evidence[0];
        let cosigned = std::fs::read_to_string(kept.join("cosigned.checkpoint")).unwrap();
        let request = std::fs::read_to_string(kept.join("add-checkpoint.request")).unwrap();
        assert!(
            cosigned.starts_with(&format!("{origin}\n{original_size}\n")),
            "{cosigned}"
        );
        assert!(
            request.starts_with(&format!("old {original_size}\n")),
            "{request}"
        );
        assert!(std::fs::read_to_string(kept.join("summary.txt"))
            .unwrap()
            .contains("misbehaviour: inconsistent"));
    }
}

/// `concordat audit check`, as an agency runs it on its own machine: the first checkpoint is
/// taken on trust of the log's key and kept; later ones must extend it; a checkpoint of
/// another history under the same key is refused, and so is a missing quorum.
#[tokio::test]
async fn an_agency_checks_the_gateway_from_its_own_machine() {
    let app = crate::helpers::spawn_app().await;
    let issued = app
        .register("police-ig", "hampshire-police", &[Role::IgAuditor])
        .await;
    let client = app.client(&issued);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("ig.pem"), dir.path().join("ig.key"));
    std::fs::write(&cert, &issued.certificate_pem).unwrap();
    std::fs::write(&key, &issued.key_pem).unwrap();
    let state = dir.path().join("seen.note");
    let signer =
        CheckpointSigner::load_or_create(&app.settings.keys.dir, &app.settings.audit.origin)
            .unwrap();
    let log_key = signer.verifier().encode();
    let check = |extra: &[&str]| {
        let output = std::process::Command::new(BINARY)
            .args(["audit", "check", "--url", &app.url("")])
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--ca")
            .arg(app.pki.ca_certificate())
            .args(["--log-key", &log_key])
            .arg("--state")
            .arg(&state)
            .args(extra)
            .env_remove("CONCORDAT_CONFIG")
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), said)
    };

    app.whoami(&client).await.unwrap();
    app.checkpoint_now().await.unwrap();
    let (ok, said) = check(&[]);
    assert!(ok, "{said}");
    assert!(said.contains("first checkpoint seen"), "{said}");
    let first = std::fs::read_to_string(&state).unwrap();

    app.whoami(&client).await.unwrap();
    app.checkpoint_now().await.unwrap();
    let (ok, said) = check(&[]);
    assert!(ok, "{said}");
    assert!(said.contains("extends the one seen before"), "{said}");

    // What this agency saw last, replaced by a checkpoint of another history signed with
    // the same key: the gateway's log no longer extends it.
    let mut forged = signer.verifier().verify(&first).unwrap();
    forged.root[0] ^= 1;
    std::fs::write(&state, signer.sign(&forged)).unwrap();
    let (ok, said) = check(&[]);
    assert!(!ok && said.contains("FORKED"), "{said}");

    let stranger = tempfile::tempdir().unwrap();
    let witness = concordat::audit::cosignature::WitnessSigner::load_or_create(
        &stranger.path().join("w.pk8"),
        "stranger.test/w9",
    )
    .unwrap();
    std::fs::write(&state, &first).unwrap();
    let (ok, said) = check(&["--witness", &witness.key().encode(), "--quorum", "1"]);
    assert!(!ok && said.contains("0 valid cosignature(s)"), "{said}");
}
