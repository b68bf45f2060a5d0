//! The evaluation report over HTTP, as JSON or as an SVG chart: [`crate::app::reports`] builds it,
//! [`charts`] draws it.

use actix_web::{
    web::{self, Json, Query},
    HttpResponse,
};

use crate::{
    app::{
        reports::{self, ReportQuery, ServiceUsage},
        Call, Gateway,
    },
    charts,
    error::ApiError,
};

#[utoipa::path(get, path = "/v1/reports/service-usage", tag = "reports", params(ReportQuery),
    responses((status = 200, description = "Counts below the threshold appear as \"<5\"", body = ServiceUsage)))]
pub async fn service_usage_json(
    call: Call,
    gateway: web::Data<Gateway>,
    query: Query<ReportQuery>,
) -> Result<Json<ServiceUsage>, ApiError> {
    let report = reports::service_usage(&gateway, &call, query.into_inner()).await?;
    Ok(Json(report))
}

#[utoipa::path(get, path = "/v1/reports/service-usage.svg", tag = "reports", params(ReportQuery),
    responses((status = 200, description = "Before/after bars per measure", content_type = "image/svg+xml")))]
pub async fn service_usage_svg(
    call: Call,
    gateway: web::Data<Gateway>,
    query: Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let report = reports::service_usage(&gateway, &call, query.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .body(charts::service_usage_svg(&report)))
}
