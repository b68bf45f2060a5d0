//! HTTP routes of the mutual-TLS API, one file per resource. Handlers parse input, call
//! the domain and the named queries of `db`, and return typed bodies; they never touch the
//! schema or render errors themselves.

pub mod agreements;
pub mod audit;
pub mod consents;
pub mod input;
pub mod openapi;
pub mod records;
pub mod reports;
pub mod subjects;
pub mod whoami;

use actix_web::web;

use crate::error::ApiError;

/// Registers every API route and the extractor settings that turn bad input into problems.
pub fn configure(max_body_bytes: usize) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(
            web::JsonConfig::default()
                .limit(max_body_bytes)
                .error_handler(move |error, _| ApiError::from_json(&error, max_body_bytes).into()),
        )
        .app_data(web::PayloadConfig::default().limit(max_body_bytes))
        .app_data(
            web::QueryConfig::default()
                .error_handler(|error, _| ApiError::from_query(&error).into()),
        )
        .app_data(
            web::PathConfig::default().error_handler(|error, _| ApiError::from_path(&error).into()),
        )
        // Resources (not bare routes) so that a known path with the wrong method is 405.
        .service(web::resource("/openapi.json").get(openapi::openapi_json))
        .service(
            web::scope("/v1")
                .service(web::resource("/whoami").get(whoami::whoami))
                .service(web::resource("/audit").get(audit::search))
                .service(web::resource("/audit/entries/{leaf_index}").get(audit::entry))
                .service(web::resource("/audit/checkpoint").get(audit::checkpoint))
                .service(web::resource("/audit/checkpoint/key").get(audit::checkpoint_key))
                .service(web::resource("/audit/consistency").get(audit::consistency))
                .service(web::resource("/audit/export").get(audit::export))
                .service(web::resource("/subjects").post(subjects::enrol))
                .service(web::resource("/subjects/lookup").get(subjects::lookup))
                .service(
                    web::resource("/subjects/{subject_id}/discharge").post(subjects::discharge),
                )
                .service(
                    web::resource("/subjects/{subject_id}/consents")
                        .get(consents::history)
                        .post(consents::record_consent),
                )
                .service(
                    web::resource("/subjects/{subject_id}/consents/withdraw")
                        .post(consents::withdraw),
                )
                .service(
                    web::resource("/subjects/{subject_id}/records")
                        .get(records::read)
                        .post(records::submit),
                )
                .service(
                    web::resource("/agreements")
                        .get(agreements::list)
                        .post(agreements::create),
                )
                .service(web::resource("/agreements/{id}").get(agreements::get))
                .service(
                    web::resource("/agreements/{id}/versions/{version}/approve")
                        .post(agreements::approve),
                )
                .service(web::resource("/agreements/{id}/suspend").post(agreements::suspend))
                .service(web::resource("/agreements/{id}/terminate").post(agreements::terminate))
                .service(web::resource("/audit/alerts").get(audit::alerts))
                .service(web::resource("/audit/alerts/{leaf_index}/review").post(audit::review))
                .service(
                    web::resource("/subjects/{subject_id}/access-report").get(audit::access_report),
                )
                .service(web::resource("/reports/service-usage").get(reports::service_usage_json))
                .service(
                    web::resource("/reports/service-usage.svg").get(reports::service_usage_svg),
                ),
        );
    }
}

#[cfg(test)]
mod tests {
    use actix_web::{
        http::header::CONTENT_TYPE,
        middleware::from_fn,
        test::{call_service, init_service, read_body_json, TestRequest},
        web, App, HttpResponse,
    };
    use serde::Deserialize;

    use super::configure;
    use crate::telemetry::observe_request;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        #[allow(dead_code, reason = "only its presence in the JSON matters here")]
        name: String,
    }

    async fn accept(_: web::Json<Strict>) -> HttpResponse {
        HttpResponse::NoContent().finish()
    }

    /// Sends `body` with `content_type` through the API's own extractor settings and
    /// returns the status and problem `code`.
    async fn post(content_type: &str, body: &str) -> (u16, serde_json::Value) {
        let app = init_service(
            App::new()
                .configure(configure(64))
                .route("/strict", web::post().to(accept))
                .wrap(from_fn(observe_request)),
        )
        .await;
        let request = TestRequest::post()
            .uri("/strict")
            .insert_header((CONTENT_TYPE, content_type))
            .set_payload(body.to_owned())
            .to_request();
        let response = call_service(&app, request).await;
        let status = response.status().as_u16();
        if status == 204 {
            return (status, serde_json::Value::Null);
        }
        assert_eq!(
            response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        let problem: serde_json::Value = read_body_json(response).await;
        (status, problem["code"].clone())
    }

    #[actix_web::test]
    async fn well_formed_json_of_the_right_shape_is_accepted() {
        assert_eq!(post("application/json", r#"{"name":"x"}"#).await.0, 204);
    }

    #[actix_web::test]
    async fn malformed_json_is_400() {
        assert_eq!(
            post("application/json", "{\"name\":").await,
            (400, "bad_request".into())
        );
    }

    #[actix_web::test]
    async fn unknown_fields_are_422() {
        let (status, code) = post("application/json", r#"{"name":"x","extra":1}"#).await;
        assert_eq!((status, code), (422, "invalid".into()));
    }

    #[actix_web::test]
    async fn wrong_content_type_is_415() {
        let (status, code) = post("text/plain", r#"{"name":"x"}"#).await;
        assert_eq!((status, code), (415, "unsupported_media_type".into()));
    }

    #[actix_web::test]
    async fn bodies_over_the_limit_are_413() {
        let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(100));
        assert_eq!(
            post("application/json", &big).await,
            (413, "payload_too_large".into())
        );
    }
}
