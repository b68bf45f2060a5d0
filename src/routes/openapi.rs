//! `GET /openapi.json`: the OpenAPI 3.1 description, generated from the handlers'
//! annotations so it cannot drift from the code, and serialised once at start.

use actix_web::{http::header::ContentType, web, web::Bytes, HttpResponse};
use utoipa::{
    openapi::security::{SecurityRequirement, SecurityScheme},
    Modify, OpenApi,
};

use crate::{
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
    components(schemas(Problem, FieldError)),
    modifiers(&MutualTls),
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
