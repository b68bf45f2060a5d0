//! The edges under abuse: a certificate that identifies nobody sending as fast as it can,
//! a peer opening connections as fast as it can, clients that stall a handshake or trickle
//! a request. Each is cut short while other callers are served.

use std::{
    io::{Read, Write},
    net::TcpStream,
    num::NonZeroU32,
    sync::Arc,
    time::{Duration, Instant},
};

use concordat::{audit::Decision, domain::Role, pki::IssuedCertificate};
use rustls::{pki_types::ServerName, ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

use crate::helpers::{eventually, problem, spawn_app_with, TestApp};

fn per_second(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

#[tokio::test]
async fn an_unknown_certificate_flooding_is_throttled_before_identity_and_counted_in_few_entries() {
    let app = spawn_app_with(|settings| {
        settings.limits.per_principal_rps = per_second(1);
        settings.limits.per_principal_burst = per_second(2);
    })
    .await;
    let stranger = app.issue("stranger", "hampshire-police");
    let client = app.client(&stranger);

    const SENT: u64 = 60;
    let started = Instant::now();
    let (mut unknown, mut limited) = (0, 0);
    for _ in 0..SENT {
        let response = app.whoami(&client).await.unwrap();
        match problem(response).await["code"].as_str().unwrap() {
            "unknown_principal" => unknown += 1,
            "rate_limited" => limited += 1,
            other => panic!("unexpected refusal {other}"),
        }
    }
    let seconds = started.elapsed().as_secs() + 1;

    // The certificate's quota (burst 2, then 1 a second) is spent before anything asks the
    // database who it is: the rest are refused by rate, not by identity.
    assert!((2..=2 + seconds).contains(&unknown), "{unknown} identified");
    assert_eq!(unknown + limited, SENT);

    // Every refusal is in the trail, most as counts: the last second's count is written
    // once that second is over.
    let denied = |entries: Vec<concordat::audit::AuditEntry>| -> Vec<_> {
        entries
            .into_iter()
            .filter(|e| e.decision == Decision::Denied)
            .collect()
    };
    let all_counted = eventually(Duration::from_secs(5), || async {
        let counted: u64 = denied(app.audit_entries().await)
            .iter()
            .map(|e| e.refusals.unwrap_or(1))
            .sum();
        counted == SENT
    })
    .await;
    assert!(all_counted, "{:?}", denied(app.audit_entries().await));
    let entries = denied(app.audit_entries().await);
    // At most two entries per reason and second: the first refusal, and the count.
    assert!(
        entries.len() as u64 <= 2 * 2 * (seconds + 1),
        "{} entries for {SENT} refusals in {seconds} s",
        entries.len()
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("concordat_refusals_coalesced_total"),
        "{metrics}"
    );
    app.verify().unwrap();
}

#[tokio::test]
async fn a_certificate_that_identifies_nobody_has_its_connection_closed() {
    let app = spawn_app_with(|_| {}).await;
    let stranger = app.issue("stranger", "hampshire-police");

    let response = app.whoami(&app.client(&stranger)).await.unwrap();

    assert_eq!(response.status(), 403);
    assert_eq!(
        response
            .headers()
            .get("connection")
            .map(|v| v.to_str().unwrap()),
        Some("close")
    );
}

#[tokio::test]
async fn new_connections_beyond_an_address_quota_are_closed_before_the_handshake() {
    let app = spawn_app_with(|settings| {
        settings.limits.per_address_connections_rps = per_second(1);
        settings.limits.per_address_connections_burst = per_second(2);
    })
    .await;
    let certificate = app.register("scas-system", "scas", &[Role::System]).await;

    let started = Instant::now();
    let mut served = 0;
    for _ in 0..5 {
        // A new client is a new connection, and so a new handshake.
        if app.whoami(&app.client(&certificate)).await.is_ok() {
            served += 1;
        }
    }
    let seconds = started.elapsed().as_secs();

    assert!((2..=2 + seconds).contains(&served), "{served} served");
    let metrics = app.metrics().await;
    let refused = metrics
        .lines()
        .find_map(|line| line.strip_prefix("concordat_connections_refused_total "))
        .unwrap();
    assert_eq!(refused.parse::<u64>().unwrap(), 5 - served);
}

#[tokio::test]
async fn a_stalled_handshake_and_trickling_requests_are_cut_off_while_others_are_served() {
    let app = spawn_app_with(|settings| {
        settings.limits.handshake_timeout = Duration::from_secs(1);
        settings.limits.request_read_timeout = Duration::from_secs(1);
    })
    .await;
    let coordinator = app
        .register("iow-coordinator", "iow-nhs", &[Role::Coordinator])
        .await;
    let address = format!("127.0.0.1:{}", app.port);

    // A connection that never starts its handshake.
    let stalled = {
        let address = address.clone();
        tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(address).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let started = Instant::now();
            let outcome = stream.read(&mut [0u8; 16]);
            (outcome.map_err(|e| e.kind()), started.elapsed())
        })
    };
    // A request whose head arrives a byte at a time, and one whose body does.
    let head = trickle(
        &app,
        &coordinator,
        &address,
        String::new(),
        "GET /v1/whoami HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
    );
    let body = trickle(
        &app,
        &coordinator,
        &address,
        "POST /v1/subjects HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: 62\r\n\r\n"
            .to_owned(),
        r#"{"nhs_number":"9434765919","given_name":"aaaaaaaaaaaaaaaaaaa"}"#,
    );

    // Meanwhile others are served.
    let client = app.client(&coordinator);
    assert_eq!(app.whoami(&client).await.unwrap().status(), 200);

    let (outcome, waited) = stalled.await.unwrap();
    assert!(
        matches!(outcome, Ok(0)) || outcome == Err(std::io::ErrorKind::ConnectionReset),
        "{outcome:?}"
    );
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    let (answer, sent) = head.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(
        sent < 40,
        "{sent} bytes of the head were read before it was cut off"
    );
    let (answer, sent) = body.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(
        sent < 40,
        "{sent} bytes of the body were read before it was cut off"
    );
    assert_eq!(app.whoami(&client).await.unwrap().status(), 200);
}

/// Opens a mutual-TLS connection, sends `prefix` at once and then `slowly` one byte every
/// 100 ms, and returns what the gateway answered and how many slow bytes it took first.
fn trickle(
    app: &TestApp,
    certificate: &IssuedCertificate,
    address: &str,
    prefix: String,
    slowly: &'static str,
) -> tokio::task::JoinHandle<(String, usize)> {
    let config = client_config(app, certificate);
    let address = address.to_owned();
    tokio::task::spawn_blocking(move || {
        let connection =
            ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
        let socket = TcpStream::connect(address).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut stream = StreamOwned::new(connection, socket);
        stream.write_all(prefix.as_bytes()).unwrap();
        let mut answer = Vec::new();
        for (sent, byte) in slowly.bytes().enumerate() {
            if stream.write_all(&[byte]).is_err() {
                return (String::from_utf8_lossy(&answer).into_owned(), sent);
            }
            let mut buffer = [0u8; 4096];
            match stream.read(&mut buffer) {
                Ok(0) => return (String::from_utf8_lossy(&answer).into_owned(), sent),
                Ok(n) => {
                    answer.extend_from_slice(&buffer[..n]);
                    // Read the rest of the answer, then stop.
                    let _ = stream.read_to_end(&mut answer);
                    return (String::from_utf8_lossy(&answer).into_owned(), sent);
                }
                // The read timeout paces the bytes.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return (String::from_utf8_lossy(&answer).into_owned(), sent),
            }
        }
        (String::from_utf8_lossy(&answer).into_owned(), slowly.len())
    })
}

fn client_config(app: &TestApp, certificate: &IssuedCertificate) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(app.pki.ca_certificate()).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let chain = CertificateDer::pem_slice_iter(certificate.certificate_pem.as_bytes())
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes()).unwrap();
    Arc::new(
        ClientConfig::builder_with_provider(concordat::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap(),
    )
}
