//! `concordat certs`: the development PKI (files only; nothing here touches the database).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;
use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};

use crate::{
    domain::AgencyId,
    pki::{generate_pkcs12_password, PkiDirectory},
};

/// Where `certs issue` takes the `.p12` password from when `--p12-password-file` is absent.
const PASSWORD_VARIABLE: &str = "CONCORDAT_P12_PASSWORD";

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create DIR/ca.pem, ca.key, server.pem, server.key and an empty crl.pem.
    Init {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Issue DIR/clients/NAME.pem and NAME.key with subject CN=NAME, O=AGENCY, and NAME.p12
    /// (both, for a browser) protected by a password.
    ///
    /// The password is the first line of --p12-password-file, else CONCORDAT_P12_PASSWORD;
    /// with neither, a random one is generated and printed once.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long)]
        agency: AgencyId,
        /// Days the certificate lives: 1 to 365.
        #[arg(long, default_value_t = crate::pki::MAX_CLIENT_CERTIFICATE_DAYS)]
        days: u32,
        /// A file whose first line is the password for NAME.p12.
        #[arg(long, value_name = "PATH")]
        p12_password_file: Option<PathBuf>,
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
            p12_password_file,
        } => {
            let given = given_password(p12_password_file.as_deref())?;
            let password = given.clone().unwrap_or_else(generate_pkcs12_password);
            let pki = PkiDirectory::new(&dir);
            let path = pki.issue_client(&name, &agency, days, &password)?;
            writeln!(out, "issued {}", path.display())?;
            let pkcs12 = pki.client_pkcs12(&name);
            if given.is_some() {
                writeln!(out, "wrote {} with the password given", pkcs12.display())?;
            } else {
                // To the terminal only, never to the log: nothing else keeps this password.
                writeln!(
                    out,
                    "wrote {} with password {}\n\
                     Keep this password now: it is shown only once and cannot be recovered.",
                    pkcs12.display(),
                    password.expose_secret()
                )?;
            }
        }
        CertsCommand::Revoke { dir, name } => {
            let pki = PkiDirectory::new(&dir);
            pki.revoke(&name)?;
            writeln!(out, "revoked {name} in {}", pki.crl().display())?;
        }
    }
    Ok(())
}

/// The password for `NAME.p12` from `--p12-password-file` (its first line) or the
/// environment; `None` when neither gives one.
fn given_password(file: Option<&Path>) -> anyhow::Result<Option<SecretString>> {
    if let Some(file) = file {
        let contents = std::fs::read_to_string(file)
            .with_context(|| format!("--p12-password-file: cannot read {}", file.display()))?;
        let first = contents.lines().next().unwrap_or_default();
        return Ok(Some(SecretString::from(first.to_owned())));
    }
    match std::env::var(PASSWORD_VARIABLE) {
        Ok(password) => Ok(Some(SecretString::from(password))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("{PASSWORD_VARIABLE} is not valid UTF-8")
        }
    }
}
