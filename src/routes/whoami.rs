//! `GET /v1/whoami`: the principal, agency and roles the gateway maps this certificate to.

use actix_web::web::Json;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::{
    domain::Role,
    error::{ApiError, Problem},
    identity::Caller,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    pub principal_id: String,
    pub agency_id: String,
    pub roles: Vec<Role>,
    pub certificate: CertificateSummary,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateSummary {
    pub subject: String,
    pub issuer: String,
    /// Hex SHA-256 of the client certificate (DER).
    pub sha256: String,
    /// RFC 3339, UTC.
    pub not_after: String,
}

#[utoipa::path(
    get,
    path = "/v1/whoami",
    tag = "identity",
    responses(
        (status = 200, description = "The caller as the gateway knows it", body = WhoAmI),
        (status = 403, description = "Unknown or disabled principal, or certificate no longer accepted",
         body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = Problem, content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn whoami(caller: Caller) -> Result<Json<WhoAmI>, ApiError> {
    let certificate = &caller.certificate;
    Ok(Json(WhoAmI {
        principal_id: caller.principal.id.to_string(),
        agency_id: caller.principal.agency.to_string(),
        roles: caller.principal.roles.iter().copied().collect(),
        certificate: CertificateSummary {
            subject: certificate.subject.clone(),
            issuer: certificate.issuer.clone(),
            sha256: certificate.sha256.clone(),
            not_after: certificate
                .not_after
                .format(&Rfc3339)
                .map_err(|e| ApiError::Internal(e.into()))?,
        },
    }))
}
