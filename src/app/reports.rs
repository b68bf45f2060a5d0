//! Programme evaluation reports (ig_auditor, coordinator; purpose `service_evaluation`):
//! cohort totals of emergency service use before and after enrolment, small numbers
//! suppressed. Nothing in a report, or in its entry, names a subject. The API, the console
//! and `concordat reports` all ask through [`service_usage`].

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{input, AppError, Call, Gateway};
use crate::{
    db::subjects,
    domain::{
        evaluation::{self, Measure, WindowReport, DEFAULT_WINDOWS},
        purpose::Purpose,
        Role,
    },
};

/// What the report is asked for, as a query string or the command line gives it.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Comma-separated window lengths in months, default `12,18`.
    pub windows: Option<String>,
    /// `YYYY-MM-DD`, default today; moved back to the end of the previous month. Only
    /// windows fully elapsed by then count.
    pub as_of: Option<String>,
}

/// The service-usage report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceUsage {
    pub as_of: String,
    pub suppression_threshold: u32,
    #[schema(value_type = Vec<Object>)]
    pub windows: Vec<WindowReport>,
}

/// The report's entry names the measures it released, never anyone they describe.
fn released() -> Vec<String> {
    Measure::ALL
        .iter()
        .map(|m| format!("report.service_usage.{}", m.name()))
        .collect()
}

pub async fn service_usage(
    gateway: &Gateway,
    call: &Call,
    query: ReportQuery,
) -> Result<ServiceUsage, AppError> {
    call.audit.annotate(|entry| {
        entry.purpose = Some(Purpose::ServiceEvaluation.to_string());
    });
    call.require_any(&[Role::IgAuditor, Role::Coordinator])?;
    let windows = match query.windows.as_deref() {
        Some(raw) => evaluation::parse_windows(raw)?,
        None => DEFAULT_WINDOWS.to_vec(),
    };
    let today = input::today();
    let asked = match query.as_of.as_deref() {
        Some(raw) => input::parse_date("as_of", raw)?,
        None => today,
    };
    let as_of = evaluation::month_end(asked, today)?;
    let threshold = gateway.suppression_threshold;
    // Named as released only once nothing can refuse the report.
    call.audit.annotate(|entry| entry.released = released());
    let cohort = gateway.database.run(subjects::cohort).await?;
    Ok(ServiceUsage {
        as_of: as_of.to_string(),
        suppression_threshold: threshold,
        windows: evaluation::service_usage(&cohort, &windows, as_of, threshold),
    })
}
