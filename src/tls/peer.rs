//! The client certificate a connection presented, parsed once when the connection opens.

use std::sync::atomic::{AtomicU64, Ordering};

use ring::digest::{digest, SHA256};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::TlsError;
use crate::domain::CertificateBinding;

/// Marks a certificate not yet checked by the identity layer on this connection.
const NOT_RECHECKED: u64 = u64::MAX;

#[derive(Debug)]
pub struct PeerCertificate {
    /// The client's own certificate first, then any intermediates it sent.
    chain: Vec<CertificateDer<'static>>,
    pub subject: String,
    pub issuer: String,
    /// The single `O` attribute of the subject; `None` when absent or repeated.
    pub organization: Option<String>,
    /// Lowercase hex SHA-256 of the client's own certificate (DER).
    pub sha256: String,
    pub not_after: OffsetDateTime,
    /// The verifier generation this chain was last checked against on this connection.
    checked_generation: AtomicU64,
}

impl PeerCertificate {
    pub fn from_chain(chain: &[CertificateDer<'_>]) -> Result<Self, TlsError> {
        let own = chain
            .first()
            .ok_or_else(|| TlsError::Certificate("the peer sent no certificate".into()))?;
        let (subject, issuer, organization, not_after) = describe(own)?;
        Ok(Self {
            chain: chain.iter().map(|c| c.clone().into_owned()).collect(),
            subject,
            issuer,
            organization,
            sha256: hex::encode(digest(&SHA256, own.as_ref())),
            not_after,
            checked_generation: AtomicU64::new(NOT_RECHECKED),
        })
    }

    pub fn binding(&self) -> CertificateBinding {
        CertificateBinding {
            subject: self.subject.clone(),
            issuer: self.issuer.clone(),
        }
    }

    pub(super) fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    pub(super) fn checked_generation(&self) -> u64 {
        self.checked_generation.load(Ordering::Acquire)
    }

    pub(super) fn mark_checked(&self, generation: u64) {
        self.checked_generation.store(generation, Ordering::Release);
    }
}

/// Subject and issuer as RFC 4514-style strings, the one `O`, and the expiry. The same
/// function reads certificates given to `principals add`, so bindings always compare equal.
pub fn describe(
    der: &CertificateDer<'_>,
) -> Result<(String, String, Option<String>, OffsetDateTime), TlsError> {
    let (_, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let mut organizations = cert.subject().iter_organization();
    let organization = match (organizations.next(), organizations.next()) {
        (Some(o), None) => o.as_str().ok().map(str::to_owned),
        _ => None,
    };
    Ok((
        cert.subject().to_string(),
        cert.issuer().to_string(),
        organization,
        cert.validity().not_after.to_datetime(),
    ))
}
