//! `concordat reports`: programme evaluation, through the same use case as the API's
//! report, audited before anything is printed.

use std::io::Write;

use clap::Subcommand;
use ring::digest::{digest, SHA256};

use crate::{
    app::{
        reports::{self, ReportQuery, ServiceUsage},
        AppError,
    },
    audit::{Action, Decision},
    config::Settings,
};

#[derive(Debug, Subcommand)]
pub enum ReportsCommand {
    /// Emergency service use before and after enrolment.
    ServiceUsage {
        /// Window lengths in months.
        #[arg(long, default_value = "12,18")]
        windows: String,
        /// `YYYY-MM-DD`; default today.
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
}

pub async fn run(
    command: ReportsCommand,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let ReportsCommand::ServiceUsage {
        windows,
        as_of,
        format,
    } = command;
    let query = ReportQuery {
        windows: Some(windows),
        as_of,
    };
    let text = super::audited_with_gateway(
        settings,
        Action::ReportServiceUsage,
        async |gateway, call| {
            let report = reports::service_usage(gateway, call, query).await?;
            let text = render(&report, format).map_err(AppError::internal)?;
            // The entry carries the digest of exactly what is printed, durable before it is.
            let sha256 = hex::encode(digest(&SHA256, &text));
            call.audit
                .record(Decision::Granted, "ok", Some(sha256))
                .await?;
            Ok(text)
        },
    )
    .await
    .map_err(super::flag_error)?;
    out.write_all(&text)?;
    Ok(())
}

fn render(report: &ServiceUsage, format: ReportFormat) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match format {
        ReportFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(report)?)?,
        ReportFormat::Csv => {
            writeln!(
                out,
                "window_months,subjects,measure,before,after,change_percent,suppressed"
            )?;
            for window in &report.windows {
                for row in &window.measures {
                    writeln!(
                        out,
                        "{},{},{},{},{},{},{}",
                        window.months,
                        window.subjects,
                        row.measure,
                        row.before,
                        row.after,
                        row.change_percent
                            .map_or(String::new(), |c| format!("{c:.1}")),
                        row.suppressed
                    )?;
                }
            }
        }
        ReportFormat::Table => table(report, &mut out)?,
    }
    Ok(out)
}

fn table(report: &ServiceUsage, out: &mut Vec<u8>) -> std::io::Result<()> {
    writeln!(
        out,
        "Emergency service use before and after enrolment, as of {} (counts below {} suppressed)",
        report.as_of, report.suppression_threshold
    )?;
    for window in &report.windows {
        writeln!(
            out,
            "\n{} months: {} subjects counted",
            window.months, window.subjects
        )?;
        writeln!(
            out,
            "  {:<22} {:>8} {:>8} {:>9}",
            "measure", "before", "after", "change"
        )?;
        for row in &window.measures {
            let change = match (row.change_percent, row.suppressed) {
                (Some(c), _) => format!("{c:+.1}%"),
                (None, true) => "suppr.".to_owned(),
                (None, false) => "n/a".to_owned(),
            };
            writeln!(
                out,
                "  {:<22} {:>8} {:>8} {:>9}",
                row.label,
                row.before.to_string(),
                row.after.to_string(),
                change
            )?;
        }
    }
    Ok(())
}
