//! The audit action of each route: one table, next to the entries it names, so that a
//! request refused before it reaches a handler is still recorded under what it attempted.

use actix_web::http::Method;

/// The action for a method and matched route pattern (`unknown_route` when none matched).
pub fn action(method: &Method, pattern: Option<&str>) -> &'static str {
    let Some(pattern) = pattern else {
        return "unknown_route";
    };
    match (method.as_str(), pattern) {
        ("GET", "/v1/whoami") => "whoami.read",
        ("GET", "/openapi.json") => "openapi.read",
        ("GET", "/v1/audit") => "audit.search",
        ("GET", "/v1/audit/entries/{leaf_index}") => "audit.entry",
        ("GET", "/v1/audit/checkpoint") => "audit.checkpoint",
        ("GET", "/v1/audit/checkpoint/key") => "audit.checkpoint_key",
        ("GET", "/v1/audit/consistency") => "audit.consistency",
        ("GET", "/v1/audit/export") => "audit.export",
        ("POST", "/v1/subjects") => "subject.enrol",
        ("GET", "/v1/subjects/lookup") => "subject.lookup",
        ("POST", "/v1/subjects/{subject_id}/discharge") => "subject.discharge",
        ("POST", "/v1/subjects/{subject_id}/consents") => "consent.record",
        ("POST", "/v1/subjects/{subject_id}/consents/withdraw") => "consent.withdraw",
        ("GET", "/v1/subjects/{subject_id}/consents") => "consent.history",
        ("POST", "/v1/subjects/{subject_id}/records") => "records.submit",
        ("GET", "/v1/subjects/{subject_id}/records") => "records.read",
        ("GET", "/v1/agreements") => "agreement.list",
        ("POST", "/v1/agreements") => "agreement.create",
        ("GET", "/v1/agreements/{id}") => "agreement.read",
        ("POST", "/v1/agreements/{id}/versions/{version}/approve") => "agreement.approve",
        ("POST", "/v1/agreements/{id}/suspend") => "agreement.suspend",
        ("POST", "/v1/agreements/{id}/terminate") => "agreement.terminate",
        ("GET", "/v1/audit/alerts") => "audit.alerts",
        ("POST", "/v1/audit/alerts/{leaf_index}/review") => "audit.alert_review",
        ("GET", "/v1/subjects/{subject_id}/access-report") => "subject.access_report",
        ("GET", "/v1/reports/service-usage") => "report.service_usage",
        ("GET", "/v1/reports/service-usage.svg") => "report.service_usage",
        _ => "method_not_allowed",
    }
}
