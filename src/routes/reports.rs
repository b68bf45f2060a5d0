//! Programme evaluation reports (ig_auditor, coordinator; purpose `service_evaluation`):
//! cohort totals of emergency service use before and after enrolment, small numbers
//! suppressed. Nothing in a report, or in its audit entry, names a subject.

use actix_web::{
    web::{self, Json, Query},
    HttpRequest, HttpResponse,
};
use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::{IntoParams, ToSchema};

use super::input::{parse_date, today};
use crate::{
    config::Settings,
    db::{subjects, Database},
    domain::{
        evaluation::{service_usage, Cell, Measure, WindowReport},
        Role,
    },
    error::ApiError,
    identity::Caller,
    routes::trail::annotate,
};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Comma-separated window lengths in months, default `12,18`.
    windows: Option<String>,
    /// `YYYY-MM-DD`, default today; moved back to the end of the previous month. Only
    /// windows fully elapsed by then count.
    as_of: Option<String>,
}

/// The service-usage report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceUsage {
    pub as_of: String,
    pub suppression_threshold: u32,
    #[schema(value_type = Vec<Object>)]
    pub windows: Vec<WindowReport>,
}

/// Reports are as of the end of a completed month, never a chosen day: two reports a day
/// apart would differ by the people enrolled that day, and their difference would describe
/// those few individually. A date that is not a month end is moved back to the last day
/// of the month before it; a future date is refused.
pub fn month_end(as_of: Date) -> Result<Date, ApiError> {
    if as_of > today() {
        return Err(ApiError::invalid_field(
            "as_of",
            "must not be in the future",
        ));
    }
    if as_of.next_day().is_some_and(|next| next.day() == 1) {
        return Ok(as_of);
    }
    Ok(as_of
        .replace_day(1)
        .map_or(as_of, |first| first.previous_day().unwrap_or(first)))
}

/// Window lengths: multiples of 6 months up to 120, at most four, no repeats. Coarse
/// windows keep two reports from being differenced down to a few people.
pub fn parse_windows(raw: Option<&str>) -> Result<Vec<u32>, ApiError> {
    let Some(raw) = raw else {
        return Ok(vec![12, 18]);
    };
    let invalid = || {
        ApiError::invalid_field(
            "windows",
            "must be up to six month counts from 1 to 120, e.g. 12,18",
        )
    };
    let mut windows = Vec::new();
    for part in raw.split(',') {
        let months: u32 = part.trim().parse().map_err(|_| invalid())?;
        if !(6..=120).contains(&months) || months % 6 != 0 || windows.contains(&months) {
            return Err(invalid());
        }
        windows.push(months);
    }
    if windows.is_empty() || windows.len() > 4 {
        return Err(invalid());
    }
    Ok(windows)
}

/// Builds the report from the database (blocking), as the API and the CLI both do.
pub fn build(
    conn: &mut crate::db::DbConnection,
    windows: &[u32],
    as_of: Date,
    threshold: u32,
) -> Result<ServiceUsage, crate::db::DbError> {
    let cohort = subjects::cohort(conn)?;
    Ok(ServiceUsage {
        as_of: as_of.to_string(),
        suppression_threshold: threshold,
        windows: service_usage(&cohort, windows, as_of, threshold),
    })
}

async fn report(
    req: &HttpRequest,
    caller: &Caller,
    database: &Database,
    settings: &Settings,
    query: ReportQuery,
) -> Result<ServiceUsage, ApiError> {
    annotate(req, |a| {
        a.purpose = Some("service_evaluation".into());
        a.released = Measure::ALL
            .iter()
            .map(|m| format!("report.service_usage.{}", m.name()))
            .collect();
    });
    caller.require_any(&[Role::IgAuditor, Role::Coordinator])?;
    let windows = parse_windows(query.windows.as_deref())?;
    let as_of = month_end(match query.as_of.as_deref() {
        Some(raw) => parse_date("as_of", raw)?,
        None => today(),
    })?;
    let threshold = settings.policy.suppression_threshold;
    Ok(database
        .run(move |conn| build(conn, &windows, as_of, threshold))
        .await?)
}

#[utoipa::path(get, path = "/v1/reports/service-usage", tag = "reports", params(ReportQuery),
    responses((status = 200, description = "Counts below the threshold appear as \"<5\"", body = ServiceUsage)))]
pub async fn service_usage_json(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    settings: web::Data<Settings>,
    query: Query<ReportQuery>,
) -> Result<Json<ServiceUsage>, ApiError> {
    Ok(Json(
        report(&req, &caller, &database, &settings, query.into_inner()).await?,
    ))
}

#[utoipa::path(get, path = "/v1/reports/service-usage.svg", tag = "reports", params(ReportQuery),
    responses((status = 200, description = "Before/after bars per measure", content_type = "image/svg+xml")))]
pub async fn service_usage_svg(
    req: HttpRequest,
    caller: Caller,
    database: web::Data<Database>,
    settings: web::Data<Settings>,
    query: Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let report = report(&req, &caller, &database, &settings, query.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .body(svg(&report)))
}

/// A grouped bar chart: for each window, each measure's before (grey) and after (teal)
/// bar, suppressed cells drawn as an outline labelled `<5`.
pub fn svg(report: &ServiceUsage) -> String {
    const BAR: u32 = 28;
    const GAP: u32 = 64;
    /// Room above the bars for the window title and the tallest bar's label.
    const TOP: u32 = 44;
    const HEIGHT: u32 = 220;
    let group = 2 * BAR + GAP;
    let width = 80 + (Measure::ALL.len() as u32 * group + 40) * report.windows.len().max(1) as u32;
    let top = report
        .windows
        .iter()
        .flat_map(|w| w.measures.iter().filter(|r| r.measure != "total"))
        .flat_map(|r| [r.before.count(), r.after.count()])
        .flatten()
        .max()
        .unwrap_or(0)
        .max(1);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\
         <title>Emergency service use before and after enrolment, as of {}</title>",
        TOP + HEIGHT + 72,
        report.as_of
    );
    let mut x = 60;
    for window in &report.windows {
        out.push_str(&format!(
            "<text x=\"{x}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{} months (subjects: {})</text>",
            window.months,
            xml_escape(&window.subjects.to_string())
        ));
        for row in window.measures.iter().filter(|r| r.measure != "total") {
            for (offset, cell, colour) in [(0, row.before, "#9e9e9e"), (BAR, row.after, "#00897b")]
            {
                let bar_x = x + offset;
                match cell {
                    Cell::Count(n) => {
                        let h = (n as f64 / top as f64 * f64::from(HEIGHT)).round() as u32;
                        out.push_str(&format!(
                            "<rect x=\"{bar_x}\" y=\"{}\" width=\"{}\" height=\"{h}\" fill=\"{colour}\"/>\
                             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{n}</text>",
                            TOP + HEIGHT - h,
                            BAR - 4,
                            bar_x + BAR / 2 - 2,
                            TOP - 4 + HEIGHT - h
                        ));
                    }
                    Cell::Suppressed(_) => out.push_str(&format!(
                        "<rect x=\"{bar_x}\" y=\"{}\" width=\"{}\" height=\"20\" fill=\"none\" stroke=\"{colour}\" stroke-dasharray=\"3 2\"/>\
                         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                        TOP - 20 + HEIGHT,
                        BAR - 4,
                        bar_x + BAR / 2 - 2,
                        TOP - 24 + HEIGHT,
                        xml_escape(&cell.to_string())
                    )),
                }
            }
            let change = match (row.change_percent, row.suppressed) {
                (Some(c), _) => format!("{c:+.1}%"),
                (None, true) => "suppressed".to_owned(),
                (None, false) => "no change figure".to_owned(),
            };
            out.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{change}</text>",
                x + BAR,
                TOP + HEIGHT + 18,
                xml_escape(row.label),
                x + BAR,
                TOP + HEIGHT + 34
            ));
            x += group;
        }
        x += 40;
    }
    out.push_str(&format!(
        "<rect x=\"60\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"#9e9e9e\"/><text x=\"78\" y=\"{t}\">before enrolment</text>\
         <rect x=\"190\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"#00897b\"/><text x=\"208\" y=\"{t}\">after enrolment</text></svg>",
        y = TOP + HEIGHT + 50,
        t = TOP + HEIGHT + 60
    ));
    out
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn reports_are_as_of_a_completed_month_end() {
        assert_eq!(
            month_end(date!(2026 - 03 - 31)).unwrap(),
            date!(2026 - 03 - 31)
        );
        assert_eq!(
            month_end(date!(2026 - 03 - 15)).unwrap(),
            date!(2026 - 02 - 28)
        );
        assert_eq!(
            month_end(date!(2026 - 01 - 10)).unwrap(),
            date!(2025 - 12 - 31)
        );
        assert!(month_end(today() + time::Duration::days(1)).is_err());
    }

    #[test]
    fn windows_are_coarse_multiples_of_six_months() {
        assert_eq!(parse_windows(None).unwrap(), [12, 18]);
        assert_eq!(parse_windows(Some("6, 24")).unwrap(), [6, 24]);
        for bad in ["13", "0", "12,12", "6,12,18,24,30", "x", ""] {
            assert!(parse_windows(Some(bad)).is_err(), "{bad}");
        }
    }
}
