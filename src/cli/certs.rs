//! `concordat certs`: the development PKI (files only; nothing here touches the database).

use std::{io::Write, path::PathBuf};

use clap::Subcommand;

use crate::{domain::AgencyId, pki::PkiDirectory};

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create DIR/ca.pem, ca.key, server.pem, server.key and an empty crl.pem.
    Init {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Issue DIR/clients/NAME.pem and NAME.key with subject CN=NAME, O=AGENCY.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        agency: AgencyId,
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Add NAME's certificate to DIR/crl.pem.
    Revoke {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        name: String,
    },
}

pub fn run(command: CertsCommand, out: &mut impl Write) -> anyhow::Result<()> {
    match command {
        CertsCommand::Init { dir } => {
            PkiDirectory::new(&dir).init()?;
            writeln!(
                out,
                "created CA, server certificate and CRL in {}",
                dir.display()
            )?;
        }
        CertsCommand::Issue {
            dir,
            name,
            agency,
            days,
        } => {
            let path = PkiDirectory::new(&dir).issue_client(&name, &agency, days)?;
            writeln!(out, "issued {}", path.display())?;
        }
        CertsCommand::Revoke { dir, name } => {
            let pki = PkiDirectory::new(&dir);
            pki.revoke(&name)?;
            writeln!(out, "revoked {name} in {}", pki.crl().display())?;
        }
    }
    Ok(())
}
