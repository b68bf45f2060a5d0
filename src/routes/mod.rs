//! HTTP routes of the mutual-TLS API, one file per resource. Handlers parse input, call
//! the domain and the named queries of `db`, and return typed bodies; they never touch the
//! schema or render errors themselves.

pub mod openapi;
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
        .service(web::scope("/v1").service(web::resource("/whoami").get(whoami::whoami)));
    }
}
