//! `concordat agreements`: import agreement files (an admin action, audited) and list
//! agreements with their status and review dates.

use std::{io::Write, path::PathBuf};

use anyhow::Context;
use clap::Subcommand;

use crate::{
    admin,
    config::Settings,
    db::{agreements, Database},
    domain::{agreement::Known, record_type::RecordTypes},
    routes,
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
    let (url, types_path) = (
        settings.database.url.clone(),
        settings.policy.record_types.clone(),
    );
    let (database, record_types) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let database = Database::connect(&url).context("database.url")?;
        database.migrate()?;
        let record_types = RecordTypes::load(&types_path).context("policy.record_types")?;
        Ok((database, record_types))
    })
    .await??;
    match command {
        AgreementsCommand::Import { files } => {
            let operator = std::env::var("USER").unwrap_or_else(|_| "operator".into());
            for (label, changed) in
                admin::import_agreements(&database, &record_types, &files, &operator).await?
            {
                writeln!(
                    out,
                    "{label}: {}",
                    if changed {
                        "imported, in force"
                    } else {
                        "already imported"
                    }
                )?;
            }
        }
        AgreementsCommand::List => {
            let stored = {
                let database = database.clone();
                tokio::task::spawn_blocking(move || {
                    database.run_blocking(|conn| {
                        Ok((
                            agreements::load_all(conn)?,
                            agreements::known_agencies(conn)?,
                        ))
                    })
                })
                .await??
            };
            let (all, agencies) = stored;
            let known = Known {
                agencies: &agencies,
                record_types: &record_types,
            };
            writeln!(
                out,
                "{:<28} {:<11} {:<9} {:<12} {:<12} NOTE",
                "ID", "STATUS", "IN FORCE", "VALID UNTIL", "REVIEW BY"
            )?;
            for agreement in &all {
                let view = routes::agreements::view(agreement, &known);
                let latest = agreement.versions.last();
                let overdue = routes::agreements::overdue_reviews(agreement);
                let note = match (view.in_force_version, latest) {
                    (Some(v), _) if overdue.contains(&v) => "WARNING: review overdue",
                    _ => "",
                };
                writeln!(
                    out,
                    "{:<28} {:<11} {:<9} {:<12} {:<12} {note}",
                    agreement.id,
                    format!("{:?}", view.status).to_lowercase(),
                    view.in_force_version
                        .map_or("-".to_owned(), |v| format!("v{v}")),
                    latest.map_or("-", |v| v.document.valid_until.as_str()),
                    latest.map_or("-", |v| v.document.review_by.as_str()),
                )?;
            }
        }
    }
    Ok(())
}
