//! What keeps the console safe in a browser that presents its certificate with every
//! request, whoever asks it to: [`guard`] refuses requests started by another site,
//! [`Submitted`] refuses a form without this principal's token, and [`present`] dresses
//! every console response (security headers, no caching, refusals as plain pages).

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{
        header::{self, HeaderName, HeaderValue},
        Method, StatusCode,
    },
    middleware::Next,
    web, FromRequest, HttpMessage, HttpRequest,
};
use futures_util::future::LocalBoxFuture;
use serde::{de::DeserializeOwned, Deserialize};

use super::page;
use crate::{
    app::{Call, Gateway},
    error::{ApiError, Problem},
    telemetry::RequestId,
};

pub const PREFIX: &str = "/console";

/// No script at all, styles and images only from the gateway, forms only to it, never
/// framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn is_console(path: &str) -> bool {
    path == PREFIX || path.starts_with("/console/")
}

fn cross_site(detail: &str) -> ApiError {
    ApiError::forbidden("csrf", detail.to_owned())
}

/// Refuses a console request another site started (fetch metadata), and a form posted
/// from anywhere but the console's own origin. Runs after identity, so the refusal's
/// entry names the principal whose browser was used.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if is_console(req.path()) {
        if let Err(refusal) = same_site(&req) {
            return Ok(req.error_response(refusal).map_into_boxed_body());
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

fn same_site(req: &ServiceRequest) -> Result<(), ApiError> {
    let headers = req.headers();
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or("invalid"));
    let changes = req.method() != Method::GET && req.method() != Method::HEAD;
    match fetch_site {
        // Typed, bookmarked or from the console itself.
        None | Some("same-origin") => {}
        Some("none") if !changes => {}
        Some(_) => {
            return Err(cross_site(
                "This console page was requested by another site; open it from the console.",
            ))
        }
    }
    if changes {
        let expected = format!("https://{}", req.connection_info().host());
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        // Under `Referrer-Policy: no-referrer` a browser sends a form posted from the
        // console's own page with `Origin: null`; fetch metadata, which that policy does
        // not touch, then says whether the page was the console's.
        let same_origin = match origin {
            Some("null") => fetch_site == Some("same-origin"),
            origin => origin == Some(expected.as_str()),
        };
        if !same_origin {
            return Err(cross_site(
                "This form was not sent from the console's own pages.",
            ));
        }
    }
    Ok(())
}

/// A console form, accepted only with the form token of the principal sending it. Every
/// state-changing console handler takes its input through this.
pub struct Submitted<T>(pub T);

#[derive(Deserialize)]
struct Token {
    form_token: Option<String>,
}

impl<T: DeserializeOwned + 'static> FromRequest for Submitted<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (req, body) = (req.clone(), web::Bytes::from_request(&req.clone(), payload));
        Box::pin(async move {
            let body = body.await?;
            let call = Call::from_request(&req, &mut Payload::None).await?;
            let gateway = req
                .app_data::<web::Data<Gateway>>()
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("gateway not configured")))?;
            let principal = call
                .principal()
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no principal")))?;
            let token: Token = serde_html_form::from_bytes(&body)
                .map_err(|_| ApiError::BadRequest("The form could not be read.".into()))?;
            let genuine = token
                .form_token
                .is_some_and(|token| gateway.keys.check_form_token(principal.id.as_str(), &token));
            if !genuine {
                return Err(cross_site(
                    "This form has no valid form token; open the page again and resend it.",
                )
                .into());
            }
            let form = serde_html_form::from_bytes(&body)
                .map_err(|_| ApiError::BadRequest("The form could not be read.".into()))?;
            Ok(Self(form))
        })
    }
}

/// Adds the console's security headers to every console response, and turns error
/// responses (problem documents from identity, the guard, or a use case) into a plain
/// refusal page. The status and the error stay, so the audit entry keeps its reason.
pub async fn present(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !is_console(req.path()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let is_asset = req.path().starts_with("/console/assets/");
    let request_id = req.extensions().get::<RequestId>().map(|id| id.0.clone());
    let mut response = next.call(req).await?.map_into_boxed_body();
    let status = response.status();
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if (status.is_client_error() || status.is_server_error()) && !is_html {
        let problem = response
            .response()
            .error()
            .and_then(|e| e.as_error::<ApiError>())
            .map_or_else(|| Problem::for_status(status), ApiError::problem);
        let markup = page::refusal(
            status,
            &problem.detail,
            &problem.code,
            request_id.as_deref(),
        );
        response = response.map_body(|head, _| {
            head.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(page::HTML));
            BoxBody::new(markup.into_string())
        });
    }
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        // Addresses (a lookup's NHS number, a subject id) never leave the gateway.
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    let cache = if is_asset && status == StatusCode::OK {
        // The stylesheet's name carries the version; it holds nothing personal.
        "private, max-age=86400, immutable"
    } else {
        "no-store"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(response)
}
