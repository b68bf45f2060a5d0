//! The CAs in `tls.client_ca`, each known by its key as well as its name. A principal is
//! bound to the name of the CA that issued its certificate and to that CA's key: two CAs
//! may share a name (by accident, or because one was made to), and the name alone would
//! then let either mint the other's identities.

use ring::digest::{digest, SHA256};
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{peer::distinguished_name, TlsError};

#[derive(Debug)]
struct Anchor {
    subject: String,
    /// The DER SubjectPublicKeyInfo, to check signatures with.
    public_key: Vec<u8>,
    /// Lowercase hex SHA-256 of `public_key`: how a binding names this CA.
    key_sha256: String,
}

/// The configured client CAs.
#[derive(Debug, Default)]
pub struct TrustAnchors {
    anchors: Vec<Anchor>,
}

impl TrustAnchors {
    pub fn from_certificates(certificates: &[CertificateDer<'_>]) -> Result<Self, TlsError> {
        let mut anchors = Vec::with_capacity(certificates.len());
        for der in certificates {
            let (_, certificate) = X509Certificate::from_der(der.as_ref())
                .map_err(|e| TlsError::Certificate(e.to_string()))?;
            let public_key = certificate.public_key().raw.to_vec();
            anchors.push(Anchor {
                subject: distinguished_name(certificate.subject())?,
                key_sha256: hex::encode(digest(&SHA256, &public_key)),
                public_key,
            });
        }
        Ok(Self { anchors })
    }

    /// The key (hex SHA-256 of its public key) of the configured CA that signed the last
    /// certificate of `chain`: the one whose name is that certificate's issuer and whose key
    /// verifies its signature. `None` when no configured CA did.
    pub fn issuer_key(&self, chain: &[CertificateDer<'_>]) -> Option<String> {
        let (_, last) = X509Certificate::from_der(chain.last()?.as_ref()).ok()?;
        let issuer = distinguished_name(last.issuer()).ok()?;
        self.anchors
            .iter()
            .filter(|anchor| anchor.subject == issuer)
            .find(|anchor| {
                x509_parser::x509::SubjectPublicKeyInfo::from_der(&anchor.public_key)
                    .is_ok_and(|(_, key)| last.verify_signature(Some(&key)).is_ok())
            })
            .map(|anchor| anchor.key_sha256.clone())
    }

    /// Whether another configured CA has the same name as the one with key `key_sha256`: a
    /// binding by name alone is then ambiguous.
    pub fn name_is_shared(&self, key_sha256: &str) -> bool {
        self.anchors
            .iter()
            .find(|anchor| anchor.key_sha256 == key_sha256)
            .is_some_and(|anchor| {
                self.anchors
                    .iter()
                    .filter(|other| other.subject == anchor.subject)
                    .count()
                    > 1
            })
    }
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::pem::PemObject;
    use time::{Duration, OffsetDateTime};

    use super::*;
    use crate::pki::CertificateAuthority;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn the_issuer_is_the_ca_whose_key_signed_not_any_ca_of_that_name() {
        let genuine = CertificateAuthority::generate("Programme CA").unwrap();
        let impostor = CertificateAuthority::generate("Programme CA").unwrap();
        let anchors = TrustAnchors::from_certificates(&[
            der(genuine.certificate_pem()),
            der(impostor.certificate_pem()),
        ])
        .unwrap();
        let now = OffsetDateTime::now_utc();
        let issue = |ca: &CertificateAuthority| {
            der(&ca
                .issue_client(
                    "police-mentor",
                    "hampshire-police",
                    now,
                    now + Duration::days(1),
                )
                .unwrap()
                .certificate_pem)
        };
        let by_genuine = anchors.issuer_key(&[issue(&genuine)]).unwrap();
        let by_impostor = anchors.issuer_key(&[issue(&impostor)]).unwrap();
        assert_ne!(by_genuine, by_impostor);
        assert!(anchors.name_is_shared(&by_genuine));

        let alone = TrustAnchors::from_certificates(&[der(genuine.certificate_pem())]).unwrap();
        assert_eq!(
            alone.issuer_key(&[issue(&genuine)]),
            Some(by_genuine.clone())
        );
        assert_eq!(alone.issuer_key(&[issue(&impostor)]), None);
        assert!(!alone.name_is_shared(&by_genuine));
    }
}
