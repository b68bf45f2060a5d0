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
    let agency = Agency::new(id, kind, &name)?;
    let added = agency.id.clone();
    super::audited(settings, Action::AgencyAdd, async |database, call| {
        registry::add_agency(database, call, agency).await
    })
    .await?;
    writeln!(out, "added agency {added}")?;
    Ok(())
}
