//! `concordat reports`: programme evaluation, audited like the API's report.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;

use crate::{admin, config::Settings, db::Database, routes};

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
    let windows = routes::reports::parse_windows(Some(&windows))
        .map_err(|e| anyhow::anyhow!("--windows: {e}"))?;
    let as_of = match as_of {
        Some(raw) => time::Date::parse(&raw, &time::format_description::well_known::Iso8601::DATE)
            .with_context(|| format!("--as-of: {raw} is not a date, YYYY-MM-DD"))?,
        None => time::OffsetDateTime::now_utc().date(),
    };
    let as_of = routes::reports::month_end(as_of).map_err(|e| anyhow::anyhow!("--as-of: {e}"))?;

    let database = {
        let url = settings.database.url.clone();
        tokio::task::spawn_blocking(move || Database::connect(&url)).await??
    };
    admin::audit_report(&database).await?;
    let threshold = settings.policy.suppression_threshold;
    let report = {
        let database = database.clone();
        tokio::task::spawn_blocking(move || {
            database.run_blocking(|conn| routes::reports::build(conn, &windows, as_of, threshold))
        })
        .await??
    };
    match format {
        ReportFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
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
        ReportFormat::Table => {
            writeln!(out, "Emergency service use before and after enrolment, as of {} (counts below {} suppressed)", report.as_of, threshold)?;
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
                    let change = row.change_percent.map_or_else(
                        || {
                            if row.suppressed {
                                "suppr.".to_owned()
                            } else {
                                "n/a".to_owned()
                            }
                        },
                        |c| format!("{c:+.1}%"),
                    );
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
        }
    }
    Ok(())
}
