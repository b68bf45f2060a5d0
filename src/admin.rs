//! Operator actions outside the HTTP API that still leave audit entries: printing
//! evaluation reports (`concordat reports`). Each action is appended to the audit trail
//! through the audit module's own writer before it acts, as every API change is.

use std::time::Duration;

use anyhow::Context;

use crate::{
    audit::{AuditLog, Decision, PendingEntry},
    db::Database,
};

/// How long an operator action waits for its audit entry.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Records an operator's evaluation report before it is printed.
pub async fn audit_report(database: &Database) -> anyhow::Result<()> {
    let operator = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    let (log, writer) = AuditLog::start(database.clone(), AUDIT_TIMEOUT)?;
    let mut entry = PendingEntry::new(
        &uuid::Uuid::new_v4().to_string(),
        crate::audit::Action::ReportServiceUsage,
        Decision::Granted,
        "ok",
    );
    entry.principal_id = Some(format!("cli:{operator}"));
    entry.purpose = Some("service_evaluation".into());
    entry.released = crate::domain::evaluation::Measure::ALL
        .iter()
        .map(|m| format!("report.service_usage.{}", m.name()))
        .collect();
    log.append(entry)
        .await
        .context("the audit trail cannot be written; no report")?;
    drop(log);
    tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the audit writer failed"))?;
    Ok(())
}
