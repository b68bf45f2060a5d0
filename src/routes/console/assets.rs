//! The console's only static files, compiled into the binary: no third-party asset, no CDN.

use actix_web::{http::header, web, HttpResponse};

use super::page::STYLESHEET;

const STYLESHEET_TEXT: &str = include_str!("console.css");
const ICON: &str = include_str!("icon.svg");

pub async fn asset(file: web::Path<String>) -> HttpResponse {
    let (content_type, body) = match file.as_str() {
        name if STYLESHEET.ends_with(&format!("/{name}")) => {
            ("text/css; charset=utf-8", STYLESHEET_TEXT)
        }
        "icon.svg" => ("image/svg+xml", ICON),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .body(body)
}
