//! Client certificate verification against the configured CA and CRL, with the CRL file
//! re-read while the gateway runs.
//!
//! rustls asks one verifier for every handshake. This wrapper holds the current webpki
//! verifier and swaps in a new one when the CRL file's contents change, and counts every
//! certificate it refuses. The identity layer calls [`ClientVerifier::recheck`] on each
//! request, which re-verifies the connection's chain, so a revocation reaches kept-alive
//! connections too.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use prometheus::IntCounterVec;
use ring::digest::{digest, SHA256};
use rustls::{
    client::danger::HandshakeSignatureValid,
    pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime},
    server::{
        danger::{ClientCertVerified, ClientCertVerifier},
        WebPkiClientVerifier,
    },
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use time::OffsetDateTime;
use x509_parser::{prelude::FromDer, revocation_list::CertificateRevocationList};

use super::{
    crypto_provider, read_certificates, read_crls, PeerCertificate, TlsError, TrustAnchors,
};

/// Why a client certificate was refused, as a metric label and a problem detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateRejection {
    Revoked,
    Expired,
    UnknownIssuer,
    Invalid,
}

impl CertificateRejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::UnknownIssuer => "unknown_issuer",
            Self::Invalid => "invalid",
        }
    }

    fn of(error: &rustls::Error) -> Self {
        match error {
            rustls::Error::InvalidCertificate(CertificateError::Revoked) => Self::Revoked,
            rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. },
            ) => Self::Expired,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                Self::UnknownIssuer
            }
            _ => Self::Invalid,
        }
    }
}

struct Current {
    verifier: Arc<dyn ClientCertVerifier>,
    /// Bumped on every successful reload; connections compare it to their last check.
    generation: u64,
    crl_sha256: Vec<u8>,
    /// The earliest `nextUpdate` of the CRLs in force: after it the verifier refuses every
    /// chain (`enforce_revocation_expiration`), so no earlier check may stand past it.
    crl_next_update: Option<OffsetDateTime>,
}

pub struct ClientVerifier {
    roots: Arc<RootCertStore>,
    /// The same CAs, known by key: which one issued a chain.
    anchors: TrustAnchors,
    /// Roots never change while running (only the CRL does), so the hint list is fixed.
    root_subjects: Vec<DistinguishedName>,
    crl_path: PathBuf,
    current: RwLock<Current>,
    rejections: IntCounterVec,
}

impl std::fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientVerifier")
            .field("crl_path", &self.crl_path)
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl ClientVerifier {
    pub fn load(
        client_ca: &Path,
        crl_path: &Path,
        rejections: IntCounterVec,
    ) -> Result<Arc<Self>, TlsError> {
        let mut roots = RootCertStore::empty();
        let certificates = read_certificates(client_ca)?;
        let anchors = TrustAnchors::from_certificates(&certificates)?;
        for ca in certificates {
            roots.add(ca)?;
        }
        let roots = Arc::new(roots);
        let crl_bytes = read_file(crl_path)?;
        let (verifier, crl_next_update) = build(&roots, crl_path)?;
        Ok(Arc::new(Self {
            anchors,
            root_subjects: roots.subjects(),
            roots,
            crl_path: crl_path.to_path_buf(),
            current: RwLock::new(Current {
                verifier,
                generation: 0,
                crl_sha256: digest(&SHA256, &crl_bytes).as_ref().to_vec(),
                crl_next_update,
            }),
            rejections,
        }))
    }

    pub fn anchors(&self) -> &TrustAnchors {
        &self.anchors
    }

    pub fn generation(&self) -> u64 {
        self.read_current().generation
    }

    /// Re-reads the CRL file and swaps the verifier when its contents changed. A file that
    /// does not parse (say, half-written) leaves the last good CRL in force; the next poll
    /// tries again.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let bytes = read_file(&self.crl_path)?;
        let fingerprint = digest(&SHA256, &bytes).as_ref().to_vec();
        if fingerprint == self.read_current().crl_sha256 {
            return Ok(false);
        }
        let (verifier, crl_next_update) = build(&self.roots, &self.crl_path)?;
        let mut current = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        current.verifier = verifier;
        current.generation += 1;
        current.crl_sha256 = fingerprint;
        current.crl_next_update = crl_next_update;
        Ok(true)
    }

    /// Polls the CRL file every `every` for the life of the process.
    pub fn watch(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                let this = Arc::clone(&self);
                match tokio::task::spawn_blocking(move || this.reload_if_changed()).await {
                    Ok(Ok(true)) => tracing::info!(
                        crl = %self.crl_path.display(),
                        generation = self.generation(),
                        "certificate revocation list reloaded"
                    ),
                    Ok(Ok(false)) => {}
                    Ok(Err(error)) => tracing::error!(
                        %error,
                        "certificate revocation list not reloaded; the previous one stays in force"
                    ),
                    Err(error) => tracing::error!(%error, "CRL reload task failed"),
                }
            }
        })
    }

    /// Verifies a connection's whole chain again before serving one of its requests,
    /// against the CRL and the clock of now: a revocation, an expired certificate (leaf or
    /// intermediate) or a CRL past its next update refuses kept-alive connections too. It
    /// costs one signature check per certificate, about a hundred microseconds.
    pub fn recheck(&self, peer: &PeerCertificate) -> Result<(), CertificateRejection> {
        let (verifier, generation, crl_next_update) = {
            let current = self.read_current();
            (
                Arc::clone(&current.verifier),
                current.generation,
                current.crl_next_update,
            )
        };
        // The signatures of a chain do not change: a chain verified under this very CRL
        // stands until a certificate of it or the CRL expires. Anything else is checked
        // again in full.
        let now = OffsetDateTime::now_utc();
        let still_valid = now < peer.chain_not_after() && crl_next_update.is_none_or(|at| now < at);
        if still_valid && peer.verified_under() == Some(generation) {
            return Ok(());
        }
        let (own, intermediates) = peer
            .chain()
            .split_first()
            .ok_or(CertificateRejection::Invalid)?;
        verifier
            .verify_client_cert(own, intermediates, UnixTime::now())
            .map(|_| peer.mark_verified(generation))
            .map_err(|error| {
                let rejection = CertificateRejection::of(&error);
                self.count(rejection);
                rejection
            })
    }

    fn read_current(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        // A poisoned lock still holds a complete verifier: writers swap whole values.
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn inner(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::clone(&self.read_current().verifier)
    }

    fn count(&self, rejection: CertificateRejection) {
        self.rejections
            .with_label_values(&[rejection.as_str()])
            .inc();
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.root_subjects
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner()
            .verify_client_cert(end_entity, intermediates, now)
            .inspect_err(|error| self.count(CertificateRejection::of(error)))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner().supported_verify_schemes()
    }
}

/// A webpki verifier for `roots` with the CRLs in `crl_path`. An expired CRL refuses every
/// client rather than trusting stale revocation data.
fn build(
    roots: &Arc<RootCertStore>,
    crl_path: &Path,
) -> Result<(Arc<dyn ClientCertVerifier>, Option<OffsetDateTime>), TlsError> {
    let crls = read_crls(crl_path)?;
    let next_update = earliest_next_update(&crls)?;
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), crypto_provider())
            .with_crls(crls)
            .enforce_revocation_expiration()
            .build()?;
    Ok((verifier, next_update))
}

/// The earliest `nextUpdate` among `crls`; `None` when none has one.
fn earliest_next_update(
    crls: &[CertificateRevocationListDer<'_>],
) -> Result<Option<OffsetDateTime>, TlsError> {
    let mut earliest: Option<OffsetDateTime> = None;
    for crl in crls {
        let (_, parsed) = CertificateRevocationList::from_der(crl.as_ref())
            .map_err(|e| TlsError::Certificate(format!("certificate revocation list: {e}")))?;
        if let Some(next) = parsed.next_update() {
            let next = next.to_datetime();
            earliest = Some(earliest.map_or(next, |e| e.min(next)));
        }
    }
    Ok(earliest)
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}
