//! The TLS edge: no certificate, a foreign CA, an expired or revoked certificate never
//! reach the application.

use std::time::Duration;

use concordat::{domain::Role, pki::IssuedCertificate};
use time::OffsetDateTime;

use crate::helpers::{eventually, foreign_certificate, problem, spawn_app};

#[tokio::test]
async fn a_connection_without_a_client_certificate_is_refused() {
    let app = spawn_app().await;
    let result = app.whoami(&app.client_without_certificate()).await;
    assert!(
        result.is_err(),
        "expected a handshake failure, got {result:?}"
    );
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_and_counted() {
    let app = spawn_app().await;
    let foreign = foreign_certificate("police-mentor", "hampshire-police");

    let result = app.whoami(&app.client(&foreign)).await;

    assert!(
        result.is_err(),
        "expected a handshake failure, got {result:?}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            r#"concordat_tls_client_certificate_rejections_total{reason="unknown_issuer"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_expired_certificate_is_refused_even_when_registered() {
    let app = spawn_app().await;
    let ca = app.pki.authority().unwrap();
    let now = OffsetDateTime::now_utc();
    let expired = ca
        .issue_client(
            "old-mentor",
            "hampshire-police",
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        )
        .unwrap();
    app.add_principal(
        "old-mentor",
        "hampshire-police",
        &[Role::Practitioner],
        &expired,
    )
    .await;

    let result = app.whoami(&app.client(&expired)).await;

    assert!(
        result.is_err(),
        "expected a handshake failure, got {result:?}"
    );
}

#[tokio::test]
async fn revocation_refuses_new_connections_within_five_seconds_and_kept_alive_ones_next() {
    let app = spawn_app().await;
    let certificate = app
        .register("police-mentor", "hampshire-police", &[Role::Practitioner])
        .await;
    let kept_alive = app.client(&certificate);
    assert_eq!(app.whoami(&kept_alive).await.unwrap().status(), 200);

    app.pki.revoke("police-mentor").unwrap();

    let refused = eventually(Duration::from_secs(5), || async {
        app.whoami(&app.client(&certificate)).await.is_err()
    })
    .await;
    assert!(
        refused,
        "new connections still accepted 5 s after revocation"
    );

    // The connection opened before the revocation is still up: its request reaches the
    // gateway (a new connection could not) and is refused there.
    let response = app.whoami(&kept_alive).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(problem(response).await["code"], "certificate_rejected");
}

#[tokio::test]
async fn revoking_one_certificate_leaves_others_working() {
    let app = spawn_app().await;
    let revoked = app
        .register("police-mentor", "hampshire-police", &[Role::Practitioner])
        .await;
    let other = app
        .register("nhs-nurse", "iow-nhs", &[Role::Practitioner])
        .await;

    app.pki.revoke("police-mentor").unwrap();
    let refused = eventually(Duration::from_secs(5), || async {
        app.whoami(&app.client(&revoked)).await.is_err()
    })
    .await;

    assert!(refused);
    assert_eq!(app.whoami(&app.client(&other)).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_client_limited_to_tls_1_2_is_served() {
    let app = spawn_app().await;
    let certificate = app.register("scas-system", "scas", &[Role::System]).await;
    let client = tls12_client(&app.pki.ca_certificate(), &certificate);
    let response = client.get(app.url("/v1/whoami")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

fn tls12_client(ca: &std::path::Path, certificate: &IssuedCertificate) -> reqwest::Client {
    let identity = reqwest::Identity::from_pem(
        format!("{}{}", certificate.certificate_pem, certificate.key_pem).as_bytes(),
    )
    .unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap())
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .identity(identity)
        .build()
        .unwrap()
}

/// TLS to PostgreSQL: `database.url` reaches libpq as it is, so its TLS parameters apply.
/// With `sslmode=verify-full` and a CA file that did not issue the server's certificate the
/// pool refuses to open (and so the gateway to start); with TLS required, the connections
/// are encrypted.
#[tokio::test]
async fn on_postgres_the_database_url_s_tls_parameters_are_applied() {
    use concordat::{config::DatabaseUrl, db::Database};
    use diesel::{sql_types::Bool, QueryableByName, RunQueryDsl};
    let Ok(base) = std::env::var("CONCORDAT_TEST_POSTGRES_URL") else {
        return;
    };
    #[derive(QueryableByName)]
    struct Encrypted {
        #[diesel(sql_type = Bool)]
        ssl: bool,
    }
    let with = |parameters: &[(&str, &str)]| {
        let mut url = url::Url::parse(&base).unwrap();
        url.query_pairs_mut().extend_pairs(parameters);
        DatabaseUrl::parse(url.as_str()).unwrap()
    };
    let plain = Database::connect(&with(&[])).unwrap();
    let server_tls = plain
        .run_blocking(|conn| {
            Ok(
                diesel::sql_query("SELECT current_setting('ssl') = 'on' AS ssl")
                    .get_result::<Encrypted>(conn)?,
            )
        })
        .unwrap();
    assert!(
        server_tls.ssl,
        "the test server has TLS off; these checks need it on"
    );

    let dir = tempfile::tempdir().unwrap();
    let other_ca = concordat::pki::PkiDirectory::new(dir.path().join("pki"));
    other_ca.init().unwrap();
    let ca_file = other_ca.ca_certificate();
    let refused = Database::connect(&with(&[
        ("sslmode", "verify-full"),
        ("sslrootcert", ca_file.to_str().unwrap()),
    ]))
    .unwrap_err()
    .to_string();
    assert!(refused.contains("certificate verify failed"), "{refused}");

    let required = Database::connect(&with(&[("sslmode", "require")])).unwrap();
    let encrypted = required
        .run_blocking(|conn| {
            Ok(
                diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                    .get_result::<Encrypted>(conn)?,
            )
        })
        .unwrap();
    assert!(encrypted.ssl);
}
