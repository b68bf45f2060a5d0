//! `concordat agreements`: import agreement files (an admin action, one audited call per
//! file) and list agreements with their status and review dates.

use std::{io::Write, path::Path, path::PathBuf};

use anyhow::Context;
use clap::Subcommand;

use super::Operator;
use crate::{
    app::{self, agreements::Imported, Gateway},
    audit::Action,
    config::Settings,
    domain::agreement::AgreementDocument,
};

#[derive(Debug, Subcommand)]
pub enum AgreementsCommand {
    /// Validate agreement files and make each file's version the one in force (an admin
    /// action, audited). Nothing is imported if any file is invalid.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Every agreement with its status and dates; warns about reviews that are overdue.
    List,
}

pub async fn run(
    command: AgreementsCommand,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        AgreementsCommand::Import { files } => {
            let operator = Operator::open(settings).await?;
            let gateway = operator.gateway(settings).await?;
            let imported = import_files(&operator, &gateway, &files).await;
            drop(gateway);
            operator.close().await?;
            for imported in imported? {
                let outcome = if imported.changed {
                    "imported, in force"
                } else {
                    "already imported"
                };
                writeln!(out, "{}: {outcome}", imported.agreement)?;
            }
        }
        AgreementsCommand::List => {
            let summaries = super::audited_with_gateway(
                settings,
                Action::AgreementList,
                async |gateway, call| app::agreements::summaries(gateway, call).await,
            )
            .await?;
            writeln!(
                out,
                "{:<28} {:<11} {:<9} {:<12} {:<12} NOTE",
                "ID", "STATUS", "IN FORCE", "VALID UNTIL", "REVIEW BY"
            )?;
            for summary in summaries {
                writeln!(
                    out,
                    "{:<28} {:<11} {:<9} {:<12} {:<12} {}",
                    summary.id,
                    format!("{:?}", summary.status).to_lowercase(),
                    summary
                        .in_force_version
                        .map_or("-".to_owned(), |v| format!("v{v}")),
                    summary.valid_until.as_deref().unwrap_or("-"),
                    summary.review_by.as_deref().unwrap_or("-"),
                    if summary.review_overdue {
                        "WARNING: review overdue"
                    } else {
                        ""
                    },
                )?;
            }
        }
    }
    Ok(())
}

/// Reads and checks every file first (nothing is imported if one is wrong), then imports
/// each as its own audited operator action, which makes that version the one in force.
/// Development mode imports its sample agreements the same way.
pub(crate) async fn import_files(
    operator: &Operator,
    gateway: &Gateway,
    files: &[impl AsRef<Path>],
) -> anyhow::Result<Vec<Imported>> {
    let mut documents = Vec::new();
    for file in files {
        let path = file.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let document: AgreementDocument =
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        if let Err(refusal) = app::agreements::validate(gateway, &document).await {
            // Nothing is imported, and the refused import is on the record.
            let refused = operator
                .audited(Action::AgreementImport, async |call| {
                    call.audit.annotate(|entry| {
                        entry.agreements = vec![document.reference().to_string()]
                    });
                    Err::<(), _>(refusal)
                })
                .await;
            return Err(refused
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("refused"))
                .context(format!("{}: invalid agreement", path.display())));
        }
        documents.push(document);
    }
    let mut imported = Vec::new();
    for document in documents {
        let agreement = document.reference();
        imported.push(
            operator
                .audited(Action::AgreementImport, async |call| {
                    app::agreements::import(gateway, call, document).await
                })
                .await
                .with_context(|| format!("{agreement}: not imported"))?,
        );
    }
    Ok(imported)
}
