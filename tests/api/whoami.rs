use concordat::domain::Role;

use crate::helpers::spawn_app;

#[tokio::test]
async fn whoami_names_the_registered_principal_agency_and_roles() {
    let app = spawn_app().await;
    let certificate = app
        .register(
            "police-mentor",
            "hampshire-police",
            &[Role::Practitioner, Role::System],
        )
        .await;

    let response = app.whoami(&app.client(&certificate)).await.unwrap();

    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["principal_id"], "police-mentor");
    assert_eq!(body["agency_id"], "hampshire-police");
    assert_eq!(body["roles"], serde_json::json!(["practitioner", "system"]));
    assert_eq!(
        body["certificate"]["subject"],
        "CN=police-mentor, O=hampshire-police"
    );
    assert_eq!(body["certificate"]["sha256"].as_str().unwrap().len(), 64);
    assert!(body["certificate"]["not_after"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
}

#[tokio::test]
async fn openapi_describes_whoami_as_openapi_3_1() {
    let app = spawn_app().await;
    let certificate = app
        .register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
        .await;

    let response = app
        .client(&certificate)
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let document: serde_json::Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/whoami",
        "/v1/audit",
        "/v1/audit/entries/{leaf_index}",
        "/v1/audit/export",
    ] {
        assert!(document["paths"][path]["get"].is_object(), "{path}");
    }
    assert_eq!(
        document["components"]["securitySchemes"]["mutualTLS"]["type"],
        "mutualTLS"
    );
}
