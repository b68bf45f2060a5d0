//! The client certificate a connection presented, parsed once when the connection opens.

use std::sync::atomic::{AtomicU64, Ordering};

use ring::digest::{digest, SHA256};
#[cfg(test)]
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::{
    objects::{oid2abbrev, oid_registry},
    prelude::{FromDer, X509Certificate, X509Name},
};

use super::TlsError;
use crate::domain::CertificateBinding;

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
    /// The key of the configured CA that issued the chain (see [`super::TrustAnchors`]).
    pub issuer_key: Option<String>,
    pub not_after: OffsetDateTime,
    /// The earliest expiry in the chain the client sent.
    chain_not_after: OffsetDateTime,
    /// One more than the CRL generation the whole chain last verified under; 0 before
    /// the first check. A connection's requests share it (see
    /// [`super::ClientVerifier::recheck`]).
    verified_generation: AtomicU64,
}

impl PeerCertificate {
    pub fn from_chain(
        chain: &[CertificateDer<'_>],
        anchors: &super::TrustAnchors,
    ) -> Result<Self, TlsError> {
        let own = chain
            .first()
            .ok_or_else(|| TlsError::Certificate("the peer sent no certificate".into()))?;
        let (subject, issuer, organization, not_after) = describe(own)?;
        let mut chain_not_after = not_after;
        for intermediate in chain.iter().skip(1) {
            let (_, cert) = X509Certificate::from_der(intermediate.as_ref())
                .map_err(|e| TlsError::Certificate(e.to_string()))?;
            chain_not_after = chain_not_after.min(cert.validity().not_after.to_datetime());
        }
        Ok(Self {
            chain: chain.iter().map(|c| c.clone().into_owned()).collect(),
            subject,
            issuer,
            organization,
            sha256: hex::encode(digest(&SHA256, own.as_ref())),
            issuer_key: anchors.issuer_key(chain),
            not_after,
            chain_not_after,
            verified_generation: AtomicU64::new(0),
        })
    }

    pub(super) fn chain_not_after(&self) -> OffsetDateTime {
        self.chain_not_after
    }

    /// The CRL generation the chain last verified under, if it ever did.
    pub(super) fn verified_under(&self) -> Option<u64> {
        self.verified_generation
            .load(Ordering::Acquire)
            .checked_sub(1)
    }

    pub(super) fn mark_verified(&self, generation: u64) {
        self.verified_generation
            .store(generation.saturating_add(1), Ordering::Release);
    }

    pub fn binding(&self) -> CertificateBinding {
        CertificateBinding {
            subject: self.subject.clone(),
            issuer: self.issuer.clone(),
            issuer_key: self.issuer_key.clone(),
        }
    }

    pub(super) fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }
}

/// Subject and issuer as distinguished-name strings, the one `O`, and the expiry. The same
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
        distinguished_name(cert.subject())?,
        distinguished_name(cert.issuer())?,
        organization,
        cert.validity().not_after.to_datetime(),
    ))
}

/// `CN=…, O=…` in certificate order, each value escaped as RFC 4514 requires, so that two
/// different names can never print alike (`CN=a\, O=b` is not `CN=a, O=b`). A name whose
/// values do not decode as text is refused rather than printed as a placeholder.
pub(super) fn distinguished_name(name: &X509Name<'_>) -> Result<String, TlsError> {
    let mut rdns = Vec::new();
    for rdn in name.iter() {
        let mut attributes = Vec::new();
        for attribute in rdn.iter() {
            let kind = oid2abbrev(attribute.attr_type(), oid_registry())
                .map(str::to_owned)
                .unwrap_or_else(|_| attribute.attr_type().to_id_string());
            let value = attribute
                .as_str()
                .map_err(|_| TlsError::Certificate("a name attribute is not text".into()))?;
            attributes.push(format!("{kind}={}", escape(value)));
        }
        rdns.push(attributes.join("+"));
    }
    Ok(rdns.join(", "))
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if c.is_control() => {
                let mut buffer = [0u8; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    out.push_str(&format!("\\{byte:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_could_forge_another_name_are_escaped() {
        assert_eq!(escape("alice, OU=nurses"), "alice\\, OU=nurses");
        assert_eq!(escape(" #lead "), "\\ #lead\\ ");
        assert_eq!(escape("#x"), "\\#x");
        assert_eq!(escape("a+b;c<d>\"e\\"), "a\\+b\\;c\\<d\\>\\\"e\\\\");
        assert_eq!(escape("tab\there"), "tab\\09here");
        assert_eq!(escape("hampshire-police"), "hampshire-police");
    }

    #[test]
    fn a_comma_in_a_common_name_cannot_impersonate_another_subject() {
        let now = OffsetDateTime::now_utc();
        let ca = crate::pki::CertificateAuthority::generate("CA").unwrap();
        let sneaky = ca
            .issue_client(
                "alice, O=iow-nhs",
                "iow-nhs",
                now,
                now + time::Duration::days(1),
            )
            .unwrap();
        let plain = ca
            .issue_client("alice", "iow-nhs", now, now + time::Duration::days(1))
            .unwrap();
        let subject = |pem: &str| {
            let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
            describe(&der).unwrap().0
        };
        assert_eq!(subject(&plain.certificate_pem), "CN=alice, O=iow-nhs");
        assert_eq!(
            subject(&sneaky.certificate_pem),
            "CN=alice\\, O=iow-nhs, O=iow-nhs"
        );
    }
}
