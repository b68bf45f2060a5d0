//! The plain-HTTP operations listener.

use concordat::domain::Role;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_endpoints_answer_on_the_ops_listener() {
    let app = spawn_app().await;
    let live = reqwest::get(app.ops_url("/health/live")).await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = reqwest::get(app.ops_url("/health/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_without_identifiers() {
    let app = spawn_app().await;
    let certificate = app
        .register("police-mentor", "hampshire-police", &[Role::Practitioner])
        .await;
    let client = app.client(&certificate);
    app.whoami(&client).await.unwrap();
    client
        .get(app.url("/v1/subjects/lookup?nhs_number=9434765919"))
        .send()
        .await
        .unwrap();
    client
        .get(app.url("/v1/nowhere/9434765919"))
        .send()
        .await
        .unwrap();

    let metrics = app.metrics().await;

    assert!(
        metrics.contains(
            r#"concordat_http_requests_total{method="GET",route="/v1/whoami",status="200"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="unmatched",status="404""#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="/v1/subjects/lookup",status="404""#),
        "{metrics}"
    );
    assert!(metrics.contains("concordat_http_request_duration_seconds_bucket"));
    assert!(!metrics.contains("9434765919"));
    assert!(!metrics.contains("police-mentor"));
}

#[tokio::test]
async fn invented_methods_share_one_metric_series() {
    let app = spawn_app().await;
    let certificate = app
        .register("police-mentor", "hampshire-police", &[Role::Practitioner])
        .await;
    let client = app.client(&certificate);
    for method in ["FOO1", "FOO2", "FOO3"] {
        client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                app.url("/v1/whoami"),
            )
            .send()
            .await
            .unwrap();
    }

    let metrics = app.metrics().await;

    assert!(!metrics.contains("FOO"), "{metrics}");
    assert!(
        metrics.contains(
            r#"concordat_http_requests_total{method="other",route="/v1/whoami",status="405"} 3"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_api_port_does_not_speak_plain_http() {
    let app = spawn_app().await;
    let result = reqwest::get(format!("http://127.0.0.1:{}/v1/whoami", app.port)).await;
    let refused = match result {
        Err(_) => true,
        Ok(response) => !response.status().is_success(),
    };
    assert!(refused);
}
