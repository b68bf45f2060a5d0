//! The HTTP edge of the mutual-TLS listener: the API, one file per resource, and the web
//! console ([`console`]). Handlers extract input,
//! call one use case of [`crate::app`] and render its answer; they hold no rule. The route
//! table below is the one place a path, its methods, handlers and audit actions are named.

pub mod agreements;
pub mod audit;
pub mod consents;
pub mod console;
pub mod deadline;
pub mod openapi;
pub mod records;
pub mod reports;
pub mod subjects;
pub mod trail;
pub mod whoami;

use actix_web::{http::Method, web};

use crate::{audit::Action, error::ApiError};

/// Declares every route once: its path, and for each method the handler and the audit
/// action its entry is recorded under. From this come both the actix registration and
/// [`action_for`], so a route cannot exist without an action.
macro_rules! route_table {
    ($($path:literal { $($method:ident => $handler:path, $action:ident;)+ })*) => {
        /// Every (method, path pattern, action) the API serves.
        pub const ROUTES: &[(&str, &str, Action)] = &[
            $($((stringify!($method), $path, Action::$action),)+)*
        ];

        fn register(cfg: &mut web::ServiceConfig) {
            // Resources (not bare routes) so that a known path with the wrong method is 405.
            $(cfg.service(
                web::resource($path)$(.route(web::method(Method::$method).to($handler)))+
            );)*
        }
    };
}

route_table! {
    "/openapi.json" { GET => openapi::openapi_json, OpenapiRead; }
    "/v1/whoami" { GET => whoami::whoami, WhoamiRead; }
    "/v1/audit" { GET => audit::search, AuditSearch; }
    "/v1/audit/entries/{leaf_index}" { GET => audit::entry, AuditEntry; }
    "/v1/audit/entries/{leaf_index}/explain" { GET => audit::explain, AuditExplain; }
    "/v1/audit/checkpoint" { GET => audit::checkpoint, AuditCheckpoint; }
    "/v1/audit/checkpoint/key" { GET => audit::checkpoint_key, AuditCheckpointKey; }
    "/v1/audit/consistency" { GET => audit::consistency, AuditConsistency; }
    "/v1/audit/export" { GET => audit::export, AuditExport; }
    "/v1/audit/alerts" { GET => audit::alerts, AuditAlerts; }
    "/v1/audit/alerts/{leaf_index}/review" { POST => audit::review, AuditAlertReview; }
    "/v1/subjects" { POST => subjects::enrol, SubjectEnrol; }
    "/v1/subjects/lookup" { GET => subjects::lookup, SubjectLookup; }
    "/v1/subjects/{subject_id}/discharge" { POST => subjects::discharge, SubjectDischarge; }
    "/v1/subjects/{subject_id}/consents" {
        GET => consents::history, ConsentHistory;
        POST => consents::record_consent, ConsentRecord;
    }
    "/v1/subjects/{subject_id}/consents/withdraw" { POST => consents::withdraw, ConsentWithdraw; }
    "/v1/subjects/{subject_id}/records" {
        GET => records::read, RecordsRead;
        POST => records::submit, RecordsSubmit;
    }
    "/v1/subjects/{subject_id}/access-report" { GET => audit::access_report, SubjectAccessReport; }
    "/v1/agreements" {
        GET => agreements::list, AgreementList;
        POST => agreements::create, AgreementCreate;
    }
    "/v1/agreements/{id}" { GET => agreements::get, AgreementRead; }
    "/v1/agreements/{id}/versions/{version}/approve" { POST => agreements::approve, AgreementApprove; }
    "/v1/agreements/{id}/suspend" { POST => agreements::suspend, AgreementSuspend; }
    "/v1/agreements/{id}/terminate" { POST => agreements::terminate, AgreementTerminate; }
    "/v1/reports/service-usage" { GET => reports::service_usage_json, ReportServiceUsage; }
    "/v1/reports/service-usage.svg" { GET => reports::service_usage_svg, ReportServiceUsage; }
    "/console" { GET => console::home, ConsolePage; }
    "/console/assets/{file}" { GET => console::assets::asset, ConsoleAsset; }
    "/console/caseload" { GET => console::people::caseload, SubjectCaseload; }
    "/console/subjects/new" { GET => console::people::enrol_form, ConsolePage; }
    "/console/subjects" { POST => console::people::enrol, SubjectEnrol; }
    "/console/find" { GET => console::people::find, ConsolePage; }
    "/console/lookup" { GET => console::people::lookup, SubjectLookup; }
    "/console/subjects/{subject_id}/consents" {
        GET => console::people::consent_history, ConsentHistory;
        POST => console::people::record_consent, ConsentRecord;
    }
    "/console/subjects/{subject_id}/consents/new" { GET => console::people::consent_form, ConsolePage; }
    "/console/subjects/{subject_id}/consents/withdraw" { POST => console::people::withdraw, ConsentWithdraw; }
    "/console/subjects/{subject_id}/discharge" { POST => console::people::discharge, SubjectDischarge; }
    "/console/subjects/{subject_id}/records" {
        GET => console::records::read, RecordsRead;
        POST => console::records::submit, RecordsSubmit;
    }
    "/console/subjects/{subject_id}/break-glass" {
        GET => console::records::break_glass_form, ConsolePage;
        POST => console::records::break_glass, RecordsRead;
    }
    "/console/subjects/{subject_id}/records/new" { GET => console::records::submit_form, ConsolePage; }
    "/console/subjects/{subject_id}/access-report" { GET => console::audit::access_report, SubjectAccessReport; }
    "/console/audit" { GET => console::audit::search, AuditSearch; }
    "/console/audit/entries/{leaf_index}" { GET => console::audit::entry, AuditEntry; }
    "/console/audit/entries/{leaf_index}/explain" { GET => console::audit::explain, AuditExplain; }
    "/console/audit/alerts" { GET => console::audit::alerts, AuditAlerts; }
    "/console/audit/alerts/{leaf_index}/review" { POST => console::audit::review, AuditAlertReview; }
    "/console/audit/checkpoint" { GET => console::audit::checkpoint, AuditCheckpoint; }
    "/console/audit/activity" { GET => console::audit::activity, AuditActivity; }
    "/console/reports/service-usage" { GET => console::audit::service_usage, ReportServiceUsage; }
    "/console/agreements" { GET => console::agreements::list, AgreementList; }
    "/console/agreements/{id}" { GET => console::agreements::detail, AgreementRead; }
    "/console/agreements/{id}/versions/{version}/approve" { POST => console::agreements::approve, AgreementApprove; }
    "/console/agreements/{id}/suspend" { POST => console::agreements::suspend, AgreementSuspend; }
}

/// The action of a request, from its method and the route pattern it matched: `unknown_route`
/// when no path matched, `method_not_allowed` when the path exists but not for that method.
pub fn action_for(method: &Method, pattern: Option<&str>) -> Action {
    let Some(pattern) = pattern else {
        return Action::UnknownRoute;
    };
    ROUTES
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == pattern)
        .map_or(Action::MethodNotAllowed, |(_, _, action)| *action)
}

pub use openapi::OpenApiJson;
pub use trail::record_requests;

/// Registers every API route, the OpenAPI description (built once, by the caller) and the
/// extractor settings that turn bad input into problems.
pub fn configure(
    max_body_bytes: usize,
    openapi: web::Data<OpenApiJson>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(openapi)
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body_bytes)
                    .error_handler(move |error, _| {
                        ApiError::from_json(&error, max_body_bytes).into()
                    }),
            )
            .app_data(web::PayloadConfig::default().limit(max_body_bytes))
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|error, _| ApiError::from_query(&error).into()),
            )
            .app_data(
                web::PathConfig::default()
                    .error_handler(|error, _| ApiError::from_path(&error).into()),
            );
        register(cfg);
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

    use super::{configure, OpenApiJson};
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
                .configure(configure(64, web::Data::new(OpenApiJson::build().unwrap())))
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
