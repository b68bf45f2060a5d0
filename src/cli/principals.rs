//! `concordat principals`: certificate holders known to the gateway.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;
use clap::Subcommand;

use super::audited;
use crate::{
    app::registry::{self, NewPrincipal},
    audit::Action,
    config::Settings,
    domain::{principal::roles_to_text, AgencyId, CertificateBinding, PrincipalId, Role},
    tls,
};

#[derive(Debug, Subcommand)]
pub enum PrincipalsCommand {
    /// Register a principal bound to the subject and issuer of a client certificate.
    Add {
        id: PrincipalId,
        #[arg(long)]
        agency: AgencyId,
        /// The principal's client certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        #[arg(long = "role", required = true)]
        roles: Vec<Role>,
    },
    /// Disable a principal; its next request is refused.
    Disable { id: PrincipalId },
    /// List the current version of every principal.
    List,
}

pub async fn run(
    command: PrincipalsCommand,
    settings: &Settings,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        PrincipalsCommand::Add {
            id,
            agency,
            cert,
            roles,
        } => add(settings, out, id, agency, &cert, roles).await,
        PrincipalsCommand::Disable { id } => {
            let disabled = audited(
                settings,
                Action::PrincipalDisable,
                async |database, call| registry::disable_principal(database, call, id).await,
            )
            .await?;
            writeln!(
                out,
                "principal {} is disabled (version {})",
                disabled.id, disabled.version
            )?;
            Ok(())
        }
        PrincipalsCommand::List => list(settings, out).await,
    }
}

async fn add(
    settings: &Settings,
    out: &mut impl Write,
    id: PrincipalId,
    agency: AgencyId,
    cert: &Path,
    roles: Vec<Role>,
) -> anyhow::Result<()> {
    let certificate = tls::read_certificates(cert)
        .with_context(|| format!("--cert: cannot read {}", cert.display()))?
        .into_iter()
        .next()
        .context("--cert: the certificate file is empty")?;
    let (subject, issuer, organization, _) =
        tls::describe(&certificate).context("--cert: not an X.509 certificate")?;
    let issuer_key = issuing_ca_key(settings, &certificate)?;
    let new = NewPrincipal {
        id,
        agency,
        certificate: CertificateBinding {
            subject,
            issuer,
            issuer_key: Some(issuer_key),
        },
        organization,
        roles,
    };
    let added = audited(settings, Action::PrincipalAdd, async |database, call| {
        registry::add_principal(database, call, new).await
    })
    .await?;
    writeln!(out, "added principal {}", added.id)?;
    Ok(())
}

/// The key of the CA in `tls.client_ca` that issued `certificate`: the principal is bound to
/// it, so a CA of the same name cannot issue this principal's certificates.
pub fn issuing_ca_key(
    settings: &Settings,
    certificate: &rustls_pki_types::CertificateDer<'_>,
) -> anyhow::Result<String> {
    let path = &settings.tls.client_ca;
    let anchors = tls::read_certificates(path)
        .and_then(|cas| tls::TrustAnchors::from_certificates(&cas))
        .with_context(|| format!("tls.client_ca: cannot read {}", path.display()))?;
    anchors
        .issuer_key(std::slice::from_ref(certificate))
        .with_context(|| {
            format!(
                "--cert: not issued by a CA in tls.client_ca ({}), so the gateway would refuse it",
                path.display()
            )
        })
}

async fn list(settings: &Settings, out: &mut impl Write) -> anyhow::Result<()> {
    let all = audited(settings, Action::PrincipalList, async |database, call| {
        registry::list_principals(database, call).await
    })
    .await?;
    writeln!(
        out,
        "{:<24} {:<20} {:<9} {:<3} {:<30} SUBJECT",
        "ID", "AGENCY", "STATUS", "V", "ROLES"
    )?;
    for p in all {
        writeln!(
            out,
            "{:<24} {:<20} {:<9} {:<3} {:<30} {}",
            p.id,
            p.agency,
            p.status.as_str(),
            p.version,
            roles_to_text(&p.roles),
            p.certificate.subject
        )?;
    }
    Ok(())
}
