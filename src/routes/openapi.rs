//! `GET /openapi.json`: the OpenAPI 3.1 description, generated from the handlers'
//! annotations so it cannot drift from the code, and serialised once at start.

use actix_web::{http::header::ContentType, web, web::Bytes, HttpResponse};
use utoipa::{
    openapi::{
        path::{Operation, ParameterIn},
        security::{SecurityRequirement, SecurityScheme},
        ContentBuilder, Ref, RefOr, Response, ResponseBuilder,
    },
    Modify, OpenApi,
};

use crate::{
    audit::export::ExportFormat,
    error::{FieldError, Problem},
    identity::Caller,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Concordat",
        description = "Multi-agency data-sharing gateway. Every path is served only over mutual TLS; \
                       the client certificate identifies the caller. Errors are RFC 9457 problem documents.",
    ),
    paths(
        super::whoami::whoami,
        openapi_json,
        super::audit::search,
        super::audit::entry,
        super::audit::explain,
        super::audit::checkpoint,
        super::audit::checkpoint_key,
        super::audit::consistency,
        super::audit::export,
        super::subjects::enrol,
        super::subjects::lookup,
        super::subjects::discharge,
        super::consents::record_consent,
        super::consents::withdraw,
        super::consents::history,
        super::records::submit,
        super::records::read,
        super::agreements::list,
        super::agreements::get,
        super::agreements::create,
        super::agreements::approve,
        super::agreements::suspend,
        super::agreements::terminate,
        super::audit::alerts,
        super::audit::review,
        super::audit::access_report,
        super::reports::service_usage_json,
        super::reports::service_usage_svg,
    ),
    components(schemas(Problem, FieldError, ExportFormat)),
    modifiers(&MutualTls, &CommonRefusals),
    tags(
        (name = "identity", description = "Who the gateway takes the caller to be"),
        (name = "description", description = "This document"),
        (name = "audit", description = "The tamper-evident audit trail (ig_auditor)"),
        (name = "subjects", description = "Enrolment, lookup and discharge (coordinator)"),
        (name = "consent", description = "Consent with its full history (coordinator; ig_auditor reads)"),
        (name = "records", description = "Records, released by agreement and consent"),
        (name = "agreements", description = "Information-sharing agreements and their approval"),
        (name = "reports", description = "Programme evaluation, small numbers suppressed"),
    )
)]
pub struct ApiDoc;

/// Declares mutual TLS as the security scheme of every operation.
struct MutualTls;

impl Modify for MutualTls {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "mutualTLS",
            SecurityScheme::MutualTls {
                description: Some("Client certificate issued to a registered principal".into()),
                extensions: None,
            },
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "mutualTLS",
            Vec::<String>::new(),
        )]);
    }
}

/// The answers any operation can give before (or instead of) its own, written once here
/// rather than on every handler: the identity layer's refusals, the rate limit, the audit
/// trail's refusal, and, by what the operation takes, malformed input. A handler that
/// describes one of these itself keeps its own description.
struct CommonRefusals;

impl Modify for CommonRefusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_common_refusals(operation);
            }
        }
    }
}

fn add_common_refusals(operation: &mut Operation) {
    let takes = |place: ParameterIn| {
        operation
            .parameters
            .iter()
            .flatten()
            .any(|parameter| parameter.parameter_in == place)
    };
    let (path, query, body) = (
        takes(ParameterIn::Path),
        takes(ParameterIn::Query),
        operation.request_body.is_some(),
    );
    let mut refusals = vec![
        ("403", "certificate_rejected, unknown_principal, role, or a rule of this operation"),
        ("429", "rate_limited: see Retry-After"),
        ("503", "audit_unavailable: the audit entry could not be written; nothing was disclosed or changed"),
    ];
    if path {
        refusals.push(("404", "not_found: nothing at this path"));
    }
    if query || body {
        refusals.push(("422", "invalid: a parameter or field is invalid"));
    }
    if body {
        refusals.extend([
            ("400", "bad_request: the body is not valid JSON"),
            ("408", "request_timeout: the body did not arrive in time"),
            ("413", "payload_too_large"),
            (
                "415",
                "unsupported_media_type: the body must be application/json",
            ),
        ]);
    }
    for (status, description) in refusals {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(problem_response(description)));
    }
}

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "description",
    responses((status = 200, description = "OpenAPI 3.1 description of this API", content_type = "application/json"))
)]
pub async fn openapi_json(_caller: Caller, document: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(document.0.clone())
}

/// The serialised description, built once at start: it depends only on the code.
#[derive(Debug, Clone)]
pub struct OpenApiJson(Bytes);

impl OpenApiJson {
    pub fn build() -> Result<Self, serde_json::Error> {
        Ok(Self(Bytes::from(serde_json::to_vec(&ApiDoc::openapi())?)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
        match value {
            Value::Object(members) => {
                for (name, member) in members {
                    match (name.as_str(), member) {
                        ("$ref", Value::String(target)) => found.push(target),
                        _ => refs(member, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_in_the_description_resolves() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let name = target.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "{target} does not resolve"
            );
        }
    }

    #[test]
    fn every_operation_describes_the_refusals_any_call_can_meet() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for status in ["403", "429", "503"] {
                    assert!(
                        operation["responses"].get(status).is_some(),
                        "{method} {path} does not describe {status}"
                    );
                }
            }
        }
    }
}
