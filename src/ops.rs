//! The operations listener: plain HTTP, loopback by default, for load balancers and
//! Prometheus. It serves no data and needs no certificate, so it must not be exposed.

use std::net::TcpListener;

use actix_web::{dev::Server, web, App, HttpResponse, HttpServer};
use serde_json::json;

use crate::{
    audit::{witnessing::Witnesses, AuditLog, WriterCondition},
    db::Database,
    metrics::Metrics,
};

pub fn server(
    listener: TcpListener,
    database: Database,
    audit_log: AuditLog,
    witnesses: Witnesses,
    metrics: Metrics,
) -> std::io::Result<Server> {
    let database = web::Data::new(database);
    let witnesses = web::Data::new(witnesses);
    let audit_log = web::Data::new(audit_log);
    let metrics = web::Data::new(metrics);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(database.clone())
            .app_data(audit_log.clone())
            .app_data(witnesses.clone())
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

/// Ready when the database answers and the audit writer can write: without either, every
/// request would be refused. The witnesses' standing is reported, never counted: a witness
/// down must not take the gateway out of service.
async fn ready(
    database: web::Data<Database>,
    audit_log: web::Data<AuditLog>,
    witnesses: web::Data<Witnesses>,
) -> HttpResponse {
    let database_ok = match database.ping().await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "readiness check: database unreachable");
            false
        }
    };
    let writer = audit_log.condition(&database).await;
    let writer_ok = writer == WriterCondition::Ok;
    let mut body = json!({
        "status": if database_ok && writer_ok { "ready" } else { "unavailable" },
        "database": if database_ok { "ok" } else { "unreachable" },
        "audit_writer": writer.as_str(),
    });
    if let (false, Some(fields)) = (witnesses.is_empty(), body.as_object_mut()) {
        let latest = witnesses.witnessed().map(|(size, cosigned_by)| {
            json!({
                "size": size,
                "cosigned_by": cosigned_by,
                "quorum_met": cosigned_by >= witnesses.quorum(),
            })
        });
        fields.insert(
            "witnesses".into(),
            json!({
                "quorum": witnesses.quorum(),
                "latest_checkpoint": latest,
                "each": witnesses.standing(),
            }),
        );
    }
    if database_ok && writer_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
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
