//! The operations listener: plain HTTP, loopback by default, for load balancers and
//! Prometheus. It serves no data and needs no certificate, so it must not be exposed.

use std::net::TcpListener;

use actix_web::{dev::Server, web, App, HttpResponse, HttpServer};
use serde_json::json;

use crate::{db::Database, metrics::Metrics};

pub fn server(
    listener: TcpListener,
    database: Database,
    metrics: Metrics,
) -> std::io::Result<Server> {
    let database = web::Data::new(database);
    let metrics = web::Data::new(metrics);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(database.clone())
            .app_data(metrics.clone())
            .route("/health/live", web::get().to(live))
            .route("/health/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics_text))
    })
    .workers(1)
    .listen(listener)?
    .run())
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "live"}))
}

/// Ready when the database answers. (The audit writer joins this check when it exists.)
async fn ready(database: web::Data<Database>) -> HttpResponse {
    match database.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready", "database": "ok"})),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .json(json!({"status": "unavailable", "database": "unreachable"}))
        }
    }
}

async fn metrics_text(metrics: web::Data<Metrics>) -> HttpResponse {
    match metrics.render() {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Err(error) => {
            tracing::error!(%error, "metrics could not be rendered");
            HttpResponse::InternalServerError().finish()
        }
    }
}
