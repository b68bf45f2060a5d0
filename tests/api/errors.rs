//! Every error leaves as an RFC 9457 problem document with a request id.

use concordat::domain::Role;

use crate::helpers::{problem, spawn_app};

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    let certificate = app
        .register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
        .await;

    let response = app
        .client(&certificate)
        .get(app.url("/v1/nowhere"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 404);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = problem(response).await;
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["request_id"], request_id);
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem() {
    let app = spawn_app().await;
    let certificate = app
        .register("ig-auditor", "iow-recovery", &[Role::IgAuditor])
        .await;

    let response = app
        .client(&certificate)
        .delete(app.url("/v1/whoami"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 405);
    assert_eq!(problem(response).await["code"], "method_not_allowed");
}

#[tokio::test]
async fn an_unknown_principal_learns_nothing_about_routes() {
    let app = spawn_app().await;
    let certificate = app.issue("stranger", "scas");

    let response = app
        .client(&certificate)
        .get(app.url("/v1/nowhere"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 403);
    assert_eq!(problem(response).await["code"], "unknown_principal");
}
