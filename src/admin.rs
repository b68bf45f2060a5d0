//! Operator actions outside the HTTP API that still leave audit entries: importing
//! agreement files (the admin's `concordat agreements import`, and development mode).
//! Each action is appended to the audit trail through the audit module's own writer
//! before it changes anything, as every API change is.

use std::{path::Path, time::Duration};

use anyhow::Context;

use crate::{
    audit::{AuditLog, Decision, PendingEntry},
    db::{agreements, Database},
    domain::{
        agreement::{AgreementDocument, Known},
        record_type::RecordTypes,
    },
};

/// How long an import waits for its audit entry.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses and validates every file first (nothing is imported if one is wrong), then for
/// each: an audit entry `agreement.import`, then the import, which makes that version the
/// one in force. Returns `id@version` of each file and whether it changed anything.
pub async fn import_agreements(
    database: &Database,
    record_types: &RecordTypes,
    files: &[impl AsRef<Path>],
    operator: &str,
) -> anyhow::Result<Vec<(String, bool)>> {
    let agencies = {
        let database = database.clone();
        tokio::task::spawn_blocking(move || database.run_blocking(agreements::known_agencies))
            .await??
    };
    let known = Known {
        agencies: &agencies,
        record_types,
    };
    let mut documents = Vec::new();
    for file in files {
        let path = file.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let document: AgreementDocument =
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        document
            .validate(&known)
            .with_context(|| format!("{}: invalid agreement", path.display()))?;
        documents.push(document);
    }
    let (log, writer) = AuditLog::start(database.clone(), AUDIT_TIMEOUT)?;
    let mut imported = Vec::new();
    for document in documents {
        let label = format!("{}@{}", document.id, document.version);
        let mut entry = PendingEntry::new(
            &uuid::Uuid::new_v4().to_string(),
            crate::audit::Action::AgreementImport,
            Decision::Granted,
            "ok",
        );
        entry.principal_id = Some(format!("cli:{operator}"));
        entry.roles = vec!["admin".into()];
        entry.agreements = vec![label.clone()];
        log.append(entry)
            .await
            .context("the audit trail cannot be written; nothing imported")?;
        let (database, by) = (database.clone(), format!("cli:{operator}"));
        let changed = tokio::task::spawn_blocking(move || {
            database.run_blocking(|conn| agreements::import(conn, &document, &by))
        })
        .await??;
        imported.push((label, changed));
    }
    drop(log);
    tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the audit writer failed"))?;
    Ok(imported)
}
