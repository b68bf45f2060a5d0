//! Certificate → principal mapping: unknown, disabled and wrong-agency callers are refused.

use concordat::{
    db::principals,
    domain::{AgencyId, CertificateBinding, Principal, PrincipalId, PrincipalStatus, Role},
    pki::CertificateAuthority,
    startup::Application,
};
use rustls_pki_types::{pem::PemObject, CertificateDer};
use time::OffsetDateTime;

use crate::helpers::{problem, spawn_app};

#[tokio::test]
async fn a_valid_but_unregistered_certificate_is_unknown_principal() {
    let app = spawn_app().await;
    let certificate = app.issue("stranger", "hampshire-police");

    let response = app.whoami(&app.client(&certificate)).await.unwrap();

    assert_eq!(response.status(), 403);
    assert!(response.headers().contains_key("x-request-id"));
    let body = problem(response).await;
    assert_eq!(body["code"], "unknown_principal");
    assert_eq!(body["type"], "urn:concordat:problem:unknown_principal");
    assert_eq!(body["status"], 403);
}

#[tokio::test]
async fn disabling_a_principal_refuses_its_next_request_on_the_same_connection() {
    let app = spawn_app().await;
    let certificate = app
        .register("nhs-nurse", "iow-nhs", &[Role::Practitioner])
        .await;
    let kept_alive = app.client(&certificate);
    assert_eq!(app.whoami(&kept_alive).await.unwrap().status(), 200);

    app.disable("nhs-nurse").await;

    let response = app.whoami(&kept_alive).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(problem(response).await["code"], "unknown_principal");
}

#[tokio::test]
async fn a_certificate_whose_organisation_is_not_the_principal_agency_is_refused() {
    let app = spawn_app().await;
    // Issued for the police, registered (by mistake or malice) as an NHS principal.
    let certificate = app.issue("police-mentor", "hampshire-police");
    app.add_principal(
        "police-mentor",
        "iow-nhs",
        &[Role::Practitioner],
        &certificate,
    )
    .await;

    let response = app.whoami(&app.client(&certificate)).await.unwrap();

    assert_eq!(response.status(), 403);
    assert_eq!(problem(response).await["code"], "unknown_principal");
}

#[tokio::test]
async fn a_principal_over_its_rate_limit_gets_429_with_retry_after() {
    let app = crate::helpers::spawn_app_with(|settings| {
        settings.limits.per_principal_rps = std::num::NonZeroU32::new(1).unwrap();
        settings.limits.per_principal_burst = std::num::NonZeroU32::new(2).unwrap();
    })
    .await;
    let certificate = app.register("scas-system", "scas", &[Role::System]).await;
    let client = app.client(&certificate);

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = app.whoami(&client).await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry_after), "{retry_after}");
            assert_eq!(problem(response).await["code"], "rate_limited");
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    let reasons: Vec<String> = app
        .audit_entries()
        .await
        .into_iter()
        .map(|e| e.reason)
        .collect();
    assert_eq!(reasons, ["ok", "ok", "rate_limited"]);
}

#[tokio::test]
async fn a_ca_sharing_the_programme_ca_name_cannot_issue_a_principal_certificate() {
    let mut app = crate::helpers::prepare_app(|_| {}).await;
    // A second CA calling itself what the programme's CA is called, trusted by mistake
    // (say, a test CA appended to `tls.client_ca`), its CRL found first: so its
    // certificates pass the handshake, and only the binding's key tells them apart.
    let impostor = CertificateAuthority::generate("Concordat development CA").unwrap();
    let mut ca = std::fs::read_to_string(app.pki.ca_certificate()).unwrap();
    ca.push_str(impostor.certificate_pem());
    std::fs::write(app.pki.ca_certificate(), ca).unwrap();
    let crl = std::fs::read_to_string(app.pki.crl()).unwrap();
    let crl = format!("{}{crl}", impostor.revocation_list(&[], 1).unwrap());
    std::fs::write(app.pki.crl(), crl).unwrap();
    let application = Application::build(&app.settings).await.unwrap();
    (app.port, app.ops_port) = (application.port(), application.ops_port());
    tokio::spawn(application.run_until_stopped());

    // Registered as `principals add` registers it: bound to the genuine CA's key.
    app.register("police-mentor", "hampshire-police", &[Role::Practitioner])
        .await;
    let now = OffsetDateTime::now_utc();
    let issue = |name: &str, agency: &str| {
        impostor
            .issue_client(
                name,
                agency,
                now - time::Duration::days(1),
                now + time::Duration::days(1),
            )
            .unwrap()
    };
    let forged = issue("police-mentor", "hampshire-police");
    let response = app.whoami(&app.client(&forged)).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(problem(response).await["code"], "unknown_principal");

    // A principal registered before bindings named the key is bound by name only, which
    // two CAs now share: refused too, until it is registered again.
    let legacy = issue("nhs-nurse", "iow-nhs");
    let chain = CertificateDer::pem_slice_iter(legacy.certificate_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let (subject, issuer, _, _) = concordat::tls::describe(&chain[0]).unwrap();
    let principal = Principal {
        id: PrincipalId::parse("nhs-nurse").unwrap(),
        version: 1,
        agency: AgencyId::parse("iow-nhs").unwrap(),
        roles: [Role::Practitioner].into(),
        certificate: CertificateBinding {
            subject,
            issuer,
            issuer_key: None,
        },
        status: PrincipalStatus::Active,
    };
    app.database
        .run(move |conn| principals::add(conn, &principal))
        .await
        .unwrap();
    let response = app.whoami(&app.client(&legacy)).await.unwrap();
    assert_eq!(response.status(), 403);
}
