//! `concordat agencies`: the agencies that share records.

use std::io::Write;

use clap::Subcommand;

use crate::{
    app::registry,
    audit::Action,
    config::Settings,
    domain::{Agency, AgencyId, AgencyKind},
};

#[derive(Debug, Subcommand)]
pub enum AgenciesCommand {
    /// Register an agency.
    Add {
        id: AgencyId,
        #[arg(long)]
        kind: AgencyKind,
        #[arg(long)]
        name: String,
    },
}

pub async fn run(
    command: AgenciesCommand,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let AgenciesCommand::Add { id, kind, name } = command;
    let added = id.clone();
    // Built inside the call, so that even a refused name leaves its entry.
    super::audited(settings, Action::AgencyAdd, async |database, call| {
        registry::add_agency(database, call, Agency::new(id, kind, &name)?).await
    })
    .await?;
    writeln!(out, "added agency {added}")?;
    Ok(())
}
