//! The `concordat` binary as an operator runs it.

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Output},
};

use crate::helpers::test_database_url_string;

const SHIPPED_CONFIG: &str = include_str!("../../config/concordat.toml");

/// Runs the binary in `dir` with the shipped configuration copied there.
fn concordat(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let config = dir.join("concordat.toml");
    if !config.exists() {
        std::fs::write(&config, SHIPPED_CONFIG).unwrap();
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_concordat"));
    command
        .current_dir(dir)
        .arg("--config")
        .arg(&config)
        .args(args);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("CONCORDAT_")) {
        command.env_remove(key);
    }
    command.envs(env.iter().copied()).output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn certs_init_issue_revoke_lay_out_the_pki_with_private_keys_0600() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let pki_arg = pki.to_str().unwrap();

    let init = concordat(dir.path(), &["certs", "init", "--dir", pki_arg], &[]);
    assert!(init.status.success(), "{}", stderr(&init));
    for file in ["ca.pem", "ca.key", "server.pem", "server.key", "crl.pem"] {
        assert!(pki.join(file).is_file(), "{file}");
    }

    let again = concordat(dir.path(), &["certs", "init", "--dir", pki_arg], &[]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("refusing to overwrite"),
        "{}",
        stderr(&again)
    );

    let issue = concordat(
        dir.path(),
        &[
            "certs", "issue", "--dir", pki_arg, "--name", "nurse", "--agency", "iow-nhs", "--days",
            "7",
        ],
        &[],
    );
    assert!(issue.status.success(), "{}", stderr(&issue));
    for key in [
        "ca.key",
        "server.key",
        "clients/nurse.key",
        "clients/nurse.p12",
    ] {
        let mode = std::fs::metadata(pki.join(key))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
    let crl_before = std::fs::read(pki.join("crl.pem")).unwrap();

    let revoke = concordat(
        dir.path(),
        &["certs", "revoke", "--dir", pki_arg, "--name", "nurse"],
        &[],
    );
    assert!(revoke.status.success(), "{}", stderr(&revoke));
    assert_ne!(std::fs::read(pki.join("crl.pem")).unwrap(), crl_before);

    let unknown = concordat(
        dir.path(),
        &["certs", "revoke", "--dir", pki_arg, "--name", "ghost"],
        &[],
    );
    assert!(!unknown.status.success());
}

/// Opens `path` as PKCS#12 with `password` and returns the subject of its key's certificate.
fn pkcs12_subject(path: &Path, password: &str) -> Result<String, p12_keystore::error::Error> {
    let store = p12_keystore::KeyStore::from_pkcs12(
        &std::fs::read(path).unwrap(),
        password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )?;
    let (_, chain) = store.private_key_chain().unwrap();
    Ok(chain.certs().first().unwrap().subject().to_owned())
}

#[test]
fn certs_issue_protects_the_p12_with_the_password_given_or_prints_a_new_one_once() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let pki_arg = pki.to_str().unwrap();
    assert!(
        concordat(dir.path(), &["certs", "init", "--dir", pki_arg], &[])
            .status
            .success()
    );
    let issue = |name: &str, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "certs", "issue", "--dir", pki_arg, "--name", name, "--agency", "iow-nhs",
        ];
        args.extend_from_slice(extra);
        concordat(dir.path(), &args, env)
    };

    let generated = issue("nurse", &[], &[]);
    assert!(generated.status.success(), "{}", stderr(&generated));
    let printed = stdout(&generated);
    let password = printed
        .lines()
        .find_map(|line| line.split_once(" with password ").map(|(_, p)| p.trim()))
        .unwrap_or_else(|| panic!("no password in {printed}"));
    assert!(password.len() >= 20, "{password}");
    assert!(printed.contains("shown only once"), "{printed}");
    let nurse = pki.join("clients/nurse.p12");
    assert_eq!(
        pkcs12_subject(&nurse, password).unwrap(),
        "CN=nurse, O=iow-nhs"
    );
    assert!(pkcs12_subject(&nurse, "concordat-dev").is_err());
    let mode = std::fs::metadata(&nurse).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let from_env = issue("porter", &[], &[("CONCORDAT_P12_PASSWORD", "from the env")]);
    assert!(from_env.status.success(), "{}", stderr(&from_env));
    assert!(!stdout(&from_env).contains("from the env"));
    assert!(pkcs12_subject(&pki.join("clients/porter.p12"), "from the env").is_ok());

    // The file named on the command line wins over the environment; its first line counts.
    let file = dir.path().join("p12-password");
    std::fs::write(&file, "from the file\nnot this line\n").unwrap();
    let file_arg = file.to_str().unwrap();
    let from_file = issue(
        "clerk",
        &["--p12-password-file", file_arg],
        &[("CONCORDAT_P12_PASSWORD", "from the env")],
    );
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    assert!(pkcs12_subject(&pki.join("clients/clerk.p12"), "from the file").is_ok());

    std::fs::write(&file, "\n").unwrap();
    let empty = issue("cook", &["--p12-password-file", file_arg], &[]);
    assert!(!empty.status.success());
    assert!(
        stderr(&empty).contains("must not be empty"),
        "{}",
        stderr(&empty)
    );
    assert!(!pki.join("clients/cook.pem").exists());
}

#[test]
fn agencies_and_principals_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let database = test_database_url_string(dir.path());
    let pki = dir.path().join("pki");
    let pki_arg = pki.to_str().unwrap();
    // `principals add` binds to the key of the CA in `tls.client_ca` that issued the
    // certificate: this test's own CA.
    let client_ca = pki.join("ca.pem");
    let env = [
        ("CONCORDAT_DATABASE_URL", database.as_str()),
        ("CONCORDAT_TLS_CLIENT_CA", client_ca.to_str().unwrap()),
    ];
    assert!(concordat(dir.path(), &["migrate"], &env).status.success());
    assert!(
        concordat(dir.path(), &["certs", "init", "--dir", pki_arg], &[])
            .status
            .success()
    );
    assert!(concordat(
        dir.path(),
        &["certs", "issue", "--dir", pki_arg, "--name", "nurse", "--agency", "iow-nhs"],
        &[]
    )
    .status
    .success());
    let cert = pki.join("clients/nurse.pem");
    let cert_arg = cert.to_str().unwrap();

    let add_agency = concordat(
        dir.path(),
        &[
            "agencies",
            "add",
            "iow-nhs",
            "--kind",
            "health",
            "--name",
            "Isle of Wight NHS Trust",
        ],
        &env,
    );
    assert!(add_agency.status.success(), "{}", stderr(&add_agency));
    let duplicate = concordat(
        dir.path(),
        &[
            "agencies", "add", "iow-nhs", "--kind", "health", "--name", "Again",
        ],
        &env,
    );
    assert!(!duplicate.status.success());
    assert!(
        stderr(&duplicate).contains("already exists"),
        "{}",
        stderr(&duplicate)
    );

    let wrong_agency = concordat(
        dir.path(),
        &[
            "principals",
            "add",
            "nurse",
            "--agency",
            "scas",
            "--cert",
            cert_arg,
            "--role",
            "practitioner",
        ],
        &env,
    );
    assert!(!wrong_agency.status.success());
    assert!(
        stderr(&wrong_agency).contains("organisation"),
        "{}",
        stderr(&wrong_agency)
    );

    let bad_role = concordat(
        dir.path(),
        &[
            "principals",
            "add",
            "nurse",
            "--agency",
            "iow-nhs",
            "--cert",
            cert_arg,
            "--role",
            "superuser",
        ],
        &env,
    );
    assert!(!bad_role.status.success());

    let add = concordat(
        dir.path(),
        &[
            "principals",
            "add",
            "nurse",
            "--agency",
            "iow-nhs",
            "--cert",
            cert_arg,
            "--role",
            "practitioner",
            "--role",
            "coordinator",
        ],
        &env,
    );
    assert!(add.status.success(), "{}", stderr(&add));

    let disable = concordat(dir.path(), &["principals", "disable", "nurse"], &env);
    assert!(disable.status.success(), "{}", stderr(&disable));

    let list = concordat(dir.path(), &["principals", "list"], &env);
    assert!(list.status.success(), "{}", stderr(&list));
    let listing = stdout(&list);
    let row = listing.lines().find(|l| l.starts_with("nurse")).unwrap();
    assert!(row.contains("disabled"), "{listing}");
    assert!(row.contains("practitioner,coordinator") || row.contains("coordinator,practitioner"));
    assert!(row.contains("CN=nurse, O=iow-nhs"), "{listing}");
}

/// Operator commands, like `serve`, never migrate: they name `concordat migrate`.
#[test]
fn an_operator_command_on_an_unmigrated_database_names_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let database = test_database_url_string(dir.path());
    let env = [("CONCORDAT_DATABASE_URL", database.as_str())];
    let add = [
        "agencies",
        "add",
        "scas",
        "--kind",
        "ambulance",
        "--name",
        "SCAS",
    ];

    let refused = concordat(dir.path(), &add, &env);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("no Concordat schema: run `concordat migrate`"),
        "{}",
        stderr(&refused)
    );

    let migrated = concordat(dir.path(), &["migrate"], &env);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    let added = concordat(dir.path(), &add, &env);
    assert!(added.status.success(), "{}", stderr(&added));
}

#[test]
fn a_bad_configuration_value_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = concordat(
        dir.path(),
        &["serve"],
        &[("CONCORDAT_LIMITS_PER_PRINCIPAL_RPS", "fast")],
    );
    assert!(!output.status.success());
    let message = stderr(&output).to_lowercase();
    assert!(message.contains("limits.per_principal_rps"), "{message}");
}

#[test]
fn an_unknown_database_scheme_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let output = concordat(
        dir.path(),
        &["migrate"],
        &[("CONCORDAT_DATABASE_URL", "mysql://db/concordat")],
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("unsupported database scheme"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_missing_configuration_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_concordat"))
        .current_dir(dir.path())
        .args(["--config", "nowhere.toml", "migrate"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("nowhere.toml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn operator_changes_and_exports_are_audited_before_they_happen() {
    let dir = tempfile::tempdir().unwrap();
    let database = test_database_url_string(dir.path());
    let pki = dir.path().join("pki");
    let pki_arg = pki.to_str().unwrap();
    // `principals add` binds to the key of the CA in `tls.client_ca` that issued the
    // certificate: this test's own CA.
    let client_ca = pki.join("ca.pem");
    let env = [
        ("CONCORDAT_DATABASE_URL", database.as_str()),
        ("CONCORDAT_TLS_CLIENT_CA", client_ca.to_str().unwrap()),
    ];
    assert!(concordat(dir.path(), &["migrate"], &env).status.success());
    let run = |args: &[&str]| {
        let output = concordat(dir.path(), args, &env);
        (output.status.success(), stderr(&output))
    };
    assert!(
        concordat(dir.path(), &["certs", "init", "--dir", pki_arg], &[])
            .status
            .success()
    );
    assert!(concordat(
        dir.path(),
        &["certs", "issue", "--dir", pki_arg, "--name", "nurse", "--agency", "iow-nhs"],
        &[]
    )
    .status
    .success());
    // The shipped configuration names the shipped record types, relative to the directory.
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/record-types.toml"),
        include_str!("../../config/record-types.toml"),
    )
    .unwrap();
    let cert = pki.join("clients/nurse.pem");
    let add_agency = [
        "agencies", "add", "iow-nhs", "--kind", "health", "--name", "NHS",
    ];
    assert!(run(&add_agency).0);
    assert!(!run(&add_agency).0, "a duplicate agency is refused");
    let (added, message) = run(&[
        "principals",
        "add",
        "nurse",
        "--agency",
        "iow-nhs",
        "--cert",
        cert.to_str().unwrap(),
        "--role",
        "practitioner",
    ]);
    assert!(added, "{message}");
    assert!(run(&["principals", "disable", "nurse"]).0);
    let export = |name: &str| {
        let path = dir.path().join(name);
        let (exported, message) = run(&[
            "audit",
            "export",
            "--format",
            "ndjson",
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(exported, "{message}");
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .collect::<Vec<_>>()
    };
    // An export covers the trail as it stood when it began; its own entry is durable
    // before its first byte, so the next export shows it.
    export("first.ndjson");
    let entries = export("second.ndjson");
    let seen: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("agency.add", "granted"),
            ("agency.add", "denied"),
            ("principal.add", "granted"),
            ("principal.disable", "granted"),
            ("audit.export", "granted"),
        ]
    );
    for entry in &entries {
        assert!(
            entry["principal_id"].as_str().unwrap().starts_with("cli:"),
            "{entry}"
        );
    }
    assert_eq!(entries[2]["agency_id"], "iow-nhs");
}

/// `concordat witness key` makes the witness's key once and prints its verifier key;
/// `witness check` reports no evidence on a new witness. Paths in the witness's file are
/// relative to it, a bare file name included.
#[test]
fn a_witness_makes_its_key_once_and_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let log = concordat::audit::checkpoint::CheckpointSigner::load_or_create(
        &dir.path().join("log-keys"),
        "concordat.test/log",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("witness.toml"),
        format!(
            "name = \"witness.test/w1\"\nkey = \"witness.pk8\"\nstate_dir = \"state\"\n\
             bind = \"127.0.0.1:0\"\n[[logs]]\norigin = \"concordat.test/log\"\nvkey = \"{}\"\n",
            log.verifier().encode()
        ),
    )
    .unwrap();
    let witness = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_concordat"))
            .current_dir(dir.path())
            .args(["witness", "--config", "witness.toml"])
            .args(args)
            .output()
            .unwrap()
    };

    let first = witness(&["key"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let vkey = stdout(&first);
    assert!(vkey.starts_with("witness.test/w1+"), "{vkey}");
    concordat::audit::cosignature::WitnessKey::parse(&vkey).unwrap();
    assert_eq!(stdout(&witness(&["key"])), vkey);
    let mode = std::fs::metadata(dir.path().join("witness.pk8"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // A state directory no witness has run in is not taken for a clean one.
    let check = witness(&["check"]);
    assert!(!check.status.success());
    assert!(
        stderr(&check).contains("holds no witness state"),
        "{}",
        stderr(&check)
    );

    let mut running = Command::new(env!("CARGO_BIN_EXE_concordat"))
        .current_dir(dir.path())
        .args(["witness", "--config", "witness.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !dir.path().join("state/evidence").is_dir() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the witness did not start"
        );
        std::thread::yield_now();
    }
    // Beside the running witness, which holds the state directory's lock.
    let check = witness(&["check"]);
    let _ = running.kill();
    let _ = running.wait();
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stdout(&check).contains("no evidence of misbehaviour"));
    assert_eq!(stdout(&witness(&["key"])), vkey);
}
