//! One error type for the HTTP API, mapped once to RFC 9457 problem documents.
//!
//! Error policy:
//! - **What the caller sees**: every error is an `application/problem+json` document with
//!   `type`, `title`, `status`, `detail`, a short machine-readable `code` (`unknown_principal`,
//!   `role`, ...) and the `request_id`. A 4xx says what was wrong and names the field, but
//!   never repeats stored data. A 5xx is opaque: it says only that the request failed and
//!   carries the request id for the operator.
//! - **What is logged**: 5xx causes at `error` with the request id; 4xx at `debug` by code.
//!   Never request bodies, record contents, subject identifiers or consent evidence.
//! - **What is audited**: every request that reaches the application gets one audit entry,
//!   errors included, with the problem `code` as the reason (the audit trail lands with the
//!   audit issue; this type is what it records).
//!
//! actix-web's own failures (malformed JSON, unknown route, wrong method, body too large,
//! wrong content type) are turned into the same documents by [`render_problems`], so no
//! error leaves the gateway in another shape.

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError},
    http::{
        header::{self, HeaderValue},
        StatusCode,
    },
    middleware::Next,
    HttpMessage, HttpResponse, ResponseError,
};
use serde::Serialize;

use crate::{app::AppError, telemetry::RequestId};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 403 with the reason in `code`: `unknown_principal`, `certificate_rejected`, `role`, ...
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{detail}")]
    Invalid {
        detail: String,
        errors: Vec<FieldError>,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("too many requests with this certificate")]
    RateLimited { retry_after_secs: u64 },
    /// The request body did not arrive within `limits.request_read_timeout`.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// The audit trail cannot be written, so nothing may be disclosed.
    #[error("the audit trail cannot be written")]
    AuditUnavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:concordat:problem:<code>`
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Machine-readable reason, e.g. `unknown_principal`.
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            problem_type: format!("urn:concordat:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            errors: Vec::new(),
            request_id: None,
        }
    }

    /// The document for a response that no [`ApiError`] produced (actix's own 404, 405...).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::BAD_REQUEST => ("bad_request", "The request is malformed."),
            StatusCode::NOT_FOUND => ("not_found", "There is nothing at this path."),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "This path does not accept that method.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "The request body is larger than the gateway accepts.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "The request body must be application/json.",
            ),
            status if status.is_server_error() => (
                "internal",
                "The gateway could not complete this request; quote the request id to the operator.",
            ),
            _ => ("error", "The request was refused."),
        };
        Self::new(status, code, detail)
    }

    pub fn with_request_id(mut self, request_id: &str) -> Self {
        self.request_id = Some(request_id.to_owned());
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| format!(r#"{{"type":"about:blank","status":{}}}"#, self.status))
    }
}

impl ApiError {
    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            detail: detail.into(),
        }
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::Invalid {
            detail: format!("{field}: {message}"),
            errors: vec![FieldError {
                field: field.to_owned(),
                message,
            }],
        }
    }

    /// The reason recorded for this error (problem `code`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Forbidden { code, .. } => code,
            Self::NotFound(_) => "not_found",
            Self::BadRequest(_) => "bad_request",
            Self::Invalid { .. } => "invalid",
            Self::Conflict(_) => "conflict",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited { .. } => "rate_limited",
            Self::RequestTimeout => "request_timeout",
            Self::AuditUnavailable => "audit_unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        match self {
            Self::Internal(_) => Problem::for_status(status),
            Self::AuditUnavailable => Problem::new(
                status,
                self.code(),
                "The audit trail cannot be written, so nothing was disclosed. Try again later.",
            ),
            Self::Invalid { errors, .. } => Problem {
                errors: errors.clone(),
                ..Problem::new(status, self.code(), self.to_string())
            },
            _ => Problem::new(status, self.code(), self.to_string()),
        }
    }

    /// actix's JSON extractor failures: syntax errors are 400, well-formed JSON of the wrong
    /// shape (unknown field, wrong type, missing field) is 422.
    pub fn from_json(error: &JsonPayloadError, limit: usize) -> Self {
        match error {
            JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
                Self::PayloadTooLarge { limit }
            }
            JsonPayloadError::ContentType => Self::UnsupportedMediaType,
            JsonPayloadError::Payload(PayloadError::Io(e))
                if e.kind() == std::io::ErrorKind::TimedOut =>
            {
                Self::RequestTimeout
            }
            JsonPayloadError::Deserialize(e) if e.is_data() => Self::Invalid {
                detail: format!(
                    "the body does not match the expected fields: {}",
                    without_values(e)
                ),
                errors: Vec::new(),
            },
            JsonPayloadError::Deserialize(e) => Self::BadRequest(format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            )),
            other => Self::BadRequest(format!("the body could not be read: {other}")),
        }
    }

    pub fn from_query(error: &QueryPayloadError) -> Self {
        let detail = match error {
            QueryPayloadError::Deserialize(e) => {
                let message = e.to_string();
                match message.split_once('`') {
                    Some((_, rest)) if message.starts_with("unknown field") => {
                        format!(
                            "unknown parameter `{}",
                            rest.split_once(',').map_or(rest, |(f, _)| f)
                        )
                    }
                    _ => "a parameter is missing or has the wrong form".to_owned(),
                }
            }
            _ => "the query string cannot be read".to_owned(),
        };
        Self::Invalid {
            detail: format!("the query string is invalid: {detail}"),
            errors: Vec::new(),
        }
    }

    pub fn from_path(_error: &PathError) -> Self {
        Self::NotFound("There is nothing at this path.".into())
    }
}

/// serde's message for a JSON body of the wrong shape, keeping the names it gives (unknown
/// or missing field) and dropping the values it would quote back (an identifier sent as a
/// number, say), then where it was found.
fn without_values(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let kept = if message.starts_with("unknown field") || message.starts_with("missing field") {
        message
            .split(", expected")
            .next()
            .and_then(|m| m.split(" at line").next())
            .unwrap_or("a field")
            .to_owned()
    } else {
        "a value has the wrong type or form".to_owned()
    };
    format!("{kept} (line {}, column {})", error.line(), error.column())
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        if let Self::RateLimited { retry_after_secs } = self {
            response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        response.body(self.problem().to_json())
    }
}

/// The reason an audit entry records for a response: the problem `code` of its error, or
/// `ok`.
pub fn reason_code<B>(response: &HttpResponse<B>) -> String {
    let status = response.status();
    match response.error().and_then(|e| e.as_error::<ApiError>()) {
        Some(api_error) => api_error.code().to_owned(),
        None if status.is_client_error() || status.is_server_error() => {
            Problem::for_status(status).code
        }
        None => "ok".to_owned(),
    }
}

/// Middleware: replaces every error response's body with the problem document for its
/// error (ours or actix's), with the request id. Status and other headers (`Retry-After`)
/// stay. Logs 5xx causes; never bodies.
pub async fn render_problems(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = req.extensions().get::<RequestId>().cloned();
    let response = next.call(req).await?.map_into_boxed_body();
    let status = response.status();
    // A page the console drew for a refusal (a form shown again with its errors) is
    // already the answer; its error stays on the response for the audit entry.
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_page {
        return Ok(response);
    }
    let problem = match response.response().error() {
        Some(error) => match error.as_error::<ApiError>() {
            Some(api_error) => {
                if status.is_server_error() {
                    tracing::error!(code = api_error.code(), error = ?api_error, "request failed");
                } else {
                    tracing::debug!(code = api_error.code(), "request refused");
                }
                api_error.problem()
            }
            None => {
                if status.is_server_error() {
                    tracing::error!(error = %error, "request failed");
                }
                Problem::for_status(status)
            }
        },
        None => Problem::for_status(status),
    };
    let problem = match &request_id {
        Some(RequestId(id)) => problem.with_request_id(id),
        None => problem,
    };
    let body = problem.to_json();
    Ok(response.map_body(|head, _| {
        head.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        BoxBody::new(body)
    }))
}

/// The one mapping from a use case's answer to a problem document: a refusal is 403 with
/// the rule's code, and the words are the use case's own.
impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Refused { rule, detail } => Self::Forbidden {
                code: rule.code(),
                detail,
            },
            AppError::NotFound(detail) => Self::NotFound(detail),
            AppError::Invalid { field, message } => Self::invalid_field(&field, message),
            AppError::Conflict(detail) => Self::Conflict(detail),
            AppError::AuditUnavailable(_) => Self::AuditUnavailable,
            AppError::Internal(error) => Self::Internal(error),
        }
    }
}

/// Storage failures reach the edge only through the same words the use cases use.
impl From<crate::db::DbError> for ApiError {
    fn from(error: crate::db::DbError) -> Self {
        AppError::from(error).into()
    }
}

impl From<crate::domain::InvalidValue> for ApiError {
    fn from(error: crate::domain::InvalidValue) -> Self {
        Self::invalid_field(error.field, error.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_disclose_nothing_of_their_cause() {
        let error = ApiError::Internal(anyhow::anyhow!("table principals is locked at /srv/db"));
        let body = error.problem().to_json();
        assert!(!body.contains("principals"), "{body}");
        assert!(body.contains("\"status\":500"));
    }

    #[test]
    fn field_errors_name_the_field() {
        let problem = ApiError::invalid_field("nhs_number", "bad check digit").problem();
        assert_eq!(problem.status, 422);
        assert_eq!(
            problem.errors.first().map(|e| e.field.as_str()),
            Some("nhs_number")
        );
    }

    #[test]
    fn json_shape_errors_do_not_quote_the_values_sent() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code, reason = "only deserialisation is exercised")]
        struct Body {
            nhs_number: String,
        }
        let wrong_type = serde_json::from_str::<Body>(r#"{"nhs_number": 9434765919}"#).unwrap_err();
        let detail = ApiError::from_json(&JsonPayloadError::Deserialize(wrong_type), 1).to_string();
        assert!(!detail.contains("9434765919"), "{detail}");
        let unknown =
            serde_json::from_str::<Body>(r#"{"nhs_number": "x", "secret_field": 1}"#).unwrap_err();
        let detail = ApiError::from_json(&JsonPayloadError::Deserialize(unknown), 1).to_string();
        assert!(detail.contains("unknown field `secret_field`"), "{detail}");
    }

    #[test]
    fn problem_type_carries_the_code() {
        let problem = ApiError::forbidden("unknown_principal", "who?").problem();
        assert_eq!(
            problem.problem_type,
            "urn:concordat:problem:unknown_principal"
        );
        assert_eq!(problem.status, 403);
    }
}
