//! A development PKI made with rcgen (P-256 ECDSA): a CA, a server certificate for
//! `localhost`, client certificates named `CN=<name>, O=<agency>` (PEM for tools, PKCS#12
//! for browsers), and the CA's CRL.
//!
//! Production deployments use their own CA; this module serves `concordat certs`, dev mode
//! and the test suite. Private keys are written with mode 0600 and files are replaced by
//! rename (see [`crate::files`]), so the CRL watcher never reads half a CRL.

use std::{
    fs,
    path::{Path, PathBuf},
};

use p12_keystore::{
    Certificate as Pkcs12Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm,
    PrivateKey, PrivateKeyChain,
};
use rand::{seq::SliceRandom, RngCore};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use ring::digest::{digest, SHA256};
use secrecy::{ExposeSecret, SecretString};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::domain::{AgencyId, InvalidValue};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Name(#[from] InvalidValue),
    #[error("PKCS#12: {0}")]
    Pkcs12(#[from] p12_keystore::error::Error),
}

/// Days a server certificate lives, from notBefore to notAfter.
const SERVER_CERTIFICATE_DAYS: i64 = 365;

/// The longest life `certs issue` gives a client certificate. A lost key that nobody
/// reported stops working within a year even if it is never revoked, and yearly re-issue
/// matches the yearly data-security training that access to shared records requires.
pub const MAX_CLIENT_CERTIFICATE_DAYS: u32 = 365;

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct IssuedCertificate {
    pub certificate_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate").finish_non_exhaustive()
    }
}

/// PBKDF2 rounds for a PKCS#12 file's encryption and MAC keys: what Java's keytool writes
/// (OpenSSL 3 writes 2,048). Issuing stays quick; a generated password has 100 bits anyway.
const PKCS12_ITERATIONS: u32 = 10_000;

impl IssuedCertificate {
    /// This certificate, its key and the CA's certificate as one PKCS#12 file (the form
    /// browsers import), the key's entry named `alias`. Encrypted with PBES2 (PBKDF2-HMAC-
    /// SHA256, AES-256-CBC) and MACed with HMAC-SHA256: OpenSSL 3 (and so Node) refuses the
    /// older RC2 scheme by default, and NSS (Chromium, Firefox) reads this one.
    pub fn to_pkcs12(
        &self,
        ca_certificate_pem: &str,
        alias: &str,
        password: &SecretString,
    ) -> Result<Vec<u8>, PkiError> {
        check_pkcs12_password(password)?;
        let certificate = der_certificate(&self.certificate_pem)?;
        let key = PrivateKey::from_der(KeyPair::from_pem(&self.key_pem)?.serialized_der())?;
        // Browsers pair the key with its certificate by this id; any stable bytes will do.
        let local_key_id = digest(&SHA256, &certificate).as_ref().to_vec();
        let chain = PrivateKeyChain::new(
            local_key_id,
            key,
            [
                Pkcs12Certificate::from_der(&certificate)?,
                Pkcs12Certificate::from_der(&der_certificate(ca_certificate_pem)?)?,
            ],
        );
        let mut store = KeyStore::new();
        store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(chain));
        Ok(store
            .writer(password.expose_secret())
            .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
            .encryption_iterations(PKCS12_ITERATIONS)
            .mac_algorithm(MacAlgorithm::HmacSha256)
            .mac_iterations(PKCS12_ITERATIONS)
            .write()?)
    }
}

/// Printable ASCII only: PKCS#12 readers encode other characters differently (UTF-8 for
/// PBES2, UTF-16 for the MAC, and not always the same way), so such a file might not open.
fn check_pkcs12_password(password: &SecretString) -> Result<(), PkiError> {
    let password = password.expose_secret();
    if password.is_empty() {
        return Err(PkiError::Invalid(
            "the PKCS#12 password must not be empty".into(),
        ));
    }
    if !password.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return Err(PkiError::Invalid(
            "the PKCS#12 password must be printable ASCII".into(),
        ));
    }
    Ok(())
}

/// Characters of a generated PKCS#12 password: Crockford's base32 in lower case, without
/// the letters a reader could take for digits (i, l, o) or that spell words by accident (u).
const PASSWORD_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A random PKCS#12 password of four groups of five characters (100 bits), such as
/// `7k2qm-x9d4e-0hj3w-tb8pz`: easy to read out and type into a browser's import dialog.
pub fn generate_pkcs12_password() -> SecretString {
    let mut rng = rand::rngs::OsRng;
    let mut password = String::with_capacity(23);
    for group in 0..4 {
        if group > 0 {
            password.push('-');
        }
        for _ in 0..5 {
            password.extend(PASSWORD_ALPHABET.choose(&mut rng).map(|&c| char::from(c)));
        }
    }
    SecretString::from(password)
}

/// A revoked certificate: its serial number (DER integer bytes) and when it was revoked.
#[derive(Debug, Clone)]
pub struct Revocation {
    pub serial: Vec<u8>,
    pub revoked_at: OffsetDateTime,
}

pub struct CertificateAuthority {
    certificate_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    pub fn generate(common_name: &str) -> Result<Self, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = distinguished_name(common_name, "Concordat development");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(5 * 365);
        params.serial_number = Some(random_serial());
        let certificate = params.self_signed(&key)?;
        Ok(Self {
            certificate_pem: certificate.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    pub fn load(certificate_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(Self {
            certificate_pem: certificate_pem.to_owned(),
            issuer: Issuer::from_ca_cert_pem(certificate_pem, key)?,
        })
    }

    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A TLS server certificate for `names` (DNS names or IP addresses).
    pub fn issue_server(&self, names: &[&str]) -> Result<IssuedCertificate, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        params.distinguished_name =
            distinguished_name("concordat gateway", "Concordat development");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = OffsetDateTime::now_utc();
        // 365 days from notBefore to notAfter: TLS scanners (Mozilla's "intermediate"
        // profile) flag server certificates that live longer than 366.
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(SERVER_CERTIFICATE_DAYS - 1);
        self.sign(params, key)
    }

    /// A client certificate `CN=<name>, O=<agency>` valid from `not_before` to `not_after`.
    pub fn issue_client(
        &self,
        name: &str,
        agency: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedCertificate, PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = distinguished_name(name, agency);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = not_before;
        params.not_after = not_after;
        self.sign(params, key)
    }

    /// A CRL listing `revoked`, valid for a year. `crl_number` must grow with each new CRL.
    pub fn revocation_list(
        &self,
        revoked: &[Revocation],
        crl_number: u64,
    ) -> Result<String, PkiError> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(365),
            crl_number: SerialNumber::from(crl_number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&r.serial),
                    revocation_time: r.revoked_at,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }

    fn sign(
        &self,
        mut params: CertificateParams,
        key: KeyPair,
    ) -> Result<IssuedCertificate, PkiError> {
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        let certificate = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn distinguished_name(common_name: &str, organization: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, organization);
    name
}

/// 16 random bytes, first bit clear so the DER integer is positive, never starting at zero.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

/// The files of a PKI directory as `concordat certs` lays them out.
#[derive(Debug, Clone)]
pub struct PkiDirectory {
    dir: PathBuf,
}

impl PkiDirectory {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn ca_certificate(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn server_certificate(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    pub fn crl(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }
    pub fn client_certificate(&self, name: &str) -> PathBuf {
        self.dir.join("clients").join(format!("{name}.pem"))
    }
    pub fn client_key(&self, name: &str) -> PathBuf {
        self.dir.join("clients").join(format!("{name}.key"))
    }
    pub fn client_pkcs12(&self, name: &str) -> PathBuf {
        self.dir.join("clients").join(format!("{name}.p12"))
    }

    pub fn exists(&self) -> bool {
        self.ca_certificate().exists() || self.ca_key().exists()
    }

    /// `certs init`: a new CA, a server certificate for localhost and an empty CRL.
    pub fn init(&self) -> Result<(), PkiError> {
        for path in [self.ca_certificate(), self.ca_key()] {
            if path.exists() {
                return Err(PkiError::Exists(path));
            }
        }
        create_dir(&self.dir)?;
        let ca = CertificateAuthority::generate("Concordat development CA")?;
        let server = ca.issue_server(&["localhost", "127.0.0.1", "::1"])?;
        write_private(&self.ca_key(), ca.key_pem().as_bytes())?;
        write_public(&self.ca_certificate(), ca.certificate_pem())?;
        write_private(&self.server_key(), server.key_pem.as_bytes())?;
        write_public(&self.server_certificate(), &server.certificate_pem)?;
        write_public(&self.crl(), &ca.revocation_list(&[], crl_number())?)?;
        Ok(())
    }

    pub fn authority(&self) -> Result<CertificateAuthority, PkiError> {
        CertificateAuthority::load(&read(&self.ca_certificate())?, &read(&self.ca_key())?)
    }

    /// `certs issue`: a client certificate for `name` in `agency`, valid for `days`, as
    /// `NAME.pem` and `NAME.key`, and both with the CA's certificate in `NAME.p12` under
    /// `password`. Refuses to replace an existing one: revoke it and remove its files first.
    pub fn issue_client(
        &self,
        name: &str,
        agency: &AgencyId,
        days: u32,
        password: &SecretString,
    ) -> Result<PathBuf, PkiError> {
        crate::domain::parse_slug("name", name)?;
        if !(1..=MAX_CLIENT_CERTIFICATE_DAYS).contains(&days) {
            return Err(PkiError::Invalid(format!(
                "a client certificate lives 1 to {MAX_CLIENT_CERTIFICATE_DAYS} days, not {days}"
            )));
        }
        let certificate_path = self.client_certificate(name);
        if certificate_path.exists() {
            return Err(PkiError::Exists(certificate_path));
        }
        let now = OffsetDateTime::now_utc();
        let authority = self.authority()?;
        let issued = authority.issue_client(
            name,
            agency.as_str(),
            now - Duration::minutes(5),
            now + Duration::days(i64::from(days)),
        )?;
        let pkcs12 = issued.to_pkcs12(authority.certificate_pem(), name, password)?;
        create_dir(&self.dir.join("clients"))?;
        write_private(&self.client_key(name), issued.key_pem.as_bytes())?;
        write_private(&self.client_pkcs12(name), &pkcs12)?;
        // Last: its presence is what marks the name as issued.
        write_public(&certificate_path, &issued.certificate_pem)?;
        Ok(certificate_path)
    }

    /// `NAME.p12` from the `NAME.pem` and `NAME.key` already issued (for certificates
    /// issued before `certs issue` wrote one), replacing any earlier `NAME.p12`.
    pub fn write_client_pkcs12(
        &self,
        name: &str,
        password: &SecretString,
    ) -> Result<PathBuf, PkiError> {
        crate::domain::parse_slug("name", name)?;
        let issued = IssuedCertificate {
            certificate_pem: read(&self.client_certificate(name))?,
            key_pem: read(&self.client_key(name))?,
        };
        let pkcs12 = issued.to_pkcs12(&read(&self.ca_certificate())?, name, password)?;
        let path = self.client_pkcs12(name);
        write_private(&path, &pkcs12)?;
        Ok(path)
    }

    /// `certs revoke`: adds `name`'s certificate to the CRL, keeping earlier revocations.
    pub fn revoke(&self, name: &str) -> Result<(), PkiError> {
        crate::domain::parse_slug("name", name)?;
        let serial = certificate_serial(&read(&self.client_certificate(name))?)?;
        let mut revoked = self.revocations()?;
        if revoked.iter().any(|r| r.serial == serial) {
            return Ok(());
        }
        revoked.push(Revocation {
            serial,
            revoked_at: OffsetDateTime::now_utc(),
        });
        let crl = self.authority()?.revocation_list(&revoked, crl_number())?;
        write_public(&self.crl(), &crl)
    }

    /// The revocations in the current CRL file.
    pub fn revocations(&self) -> Result<Vec<Revocation>, PkiError> {
        let pem = read(&self.crl())?;
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| PkiError::Invalid(format!("crl.pem: {e}")))?;
        let (_, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&block.contents)
                .map_err(|e| PkiError::Invalid(format!("crl.pem: {e}")))?;
        Ok(crl
            .iter_revoked_certificates()
            .map(|r| Revocation {
                serial: r.raw_serial().to_vec(),
                revoked_at: r.revocation_date.to_datetime(),
            })
            .collect())
    }
}

fn certificate_serial(pem: &str) -> Result<Vec<u8>, PkiError> {
    let der = der_certificate(pem)?;
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|e| PkiError::Invalid(format!("certificate: {e}")))?;
    Ok(cert.raw_serial().to_vec())
}

/// The DER of the first certificate in `pem`.
fn der_certificate(pem: &str) -> Result<Vec<u8>, PkiError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| PkiError::Invalid(format!("certificate: {e}")))?;
    Ok(block.contents)
}

/// CRL numbers must increase; microseconds since the epoch do, without keeping state.
fn crl_number() -> u64 {
    u64::try_from(crate::domain::Timestamp::now().micros()).unwrap_or_default()
}

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_public(path: &Path, contents: &str) -> Result<(), PkiError> {
    crate::files::write_public(path, contents.as_bytes()).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    crate::files::write_private(path, contents).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn password(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    fn open_pkcs12(path: &Path, text: &str) -> p12_keystore::Result<KeyStore> {
        KeyStore::from_pkcs12(
            &fs::read(path).unwrap(),
            text,
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
    }

    #[test]
    fn init_writes_private_keys_0600_and_refuses_a_second_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDirectory::new(dir.path());
        pki.init().unwrap();
        for key in [pki.ca_key(), pki.server_key()] {
            let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
        assert!(matches!(pki.init(), Err(PkiError::Exists(_))));
    }

    /// Days from a PEM certificate's notBefore to its notAfter.
    fn lifetime_days(pem: &str) -> f64 {
        let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let certificate = der.parse_x509().unwrap();
        let validity = certificate.validity();
        (validity.not_after.timestamp() - validity.not_before.timestamp()) as f64 / 86_400.0
    }

    #[test]
    fn server_and_client_certificates_live_at_most_a_year() {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDirectory::new(dir.path());
        pki.init().unwrap();
        let agency = AgencyId::parse("iow-nhs").unwrap();
        let server = fs::read_to_string(pki.server_certificate()).unwrap();
        assert!(
            lifetime_days(&server) <= 365.0,
            "{}",
            lifetime_days(&server)
        );

        pki.issue_client("nurse", &agency, 365, &password("pw"))
            .unwrap();
        let client = fs::read_to_string(pki.client_certificate("nurse")).unwrap();
        assert!(
            lifetime_days(&client) <= 366.0,
            "{}",
            lifetime_days(&client)
        );
        assert!(matches!(
            pki.issue_client("porter", &agency, 366, &password("pw")),
            Err(PkiError::Invalid(_))
        ));
        assert!(!pki.client_certificate("porter").exists());
    }

    #[test]
    fn issue_then_revoke_lists_the_serial_once() {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDirectory::new(dir.path());
        pki.init().unwrap();
        let agency = AgencyId::parse("iow-nhs").unwrap();
        let path = pki
            .issue_client("nurse", &agency, 30, &password("pw"))
            .unwrap();
        let serial = certificate_serial(&fs::read_to_string(path).unwrap()).unwrap();
        assert!(pki.revocations().unwrap().is_empty());
        pki.revoke("nurse").unwrap();
        pki.revoke("nurse").unwrap();
        let revoked = pki.revocations().unwrap();
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked.first().unwrap().serial, serial);
        assert!(matches!(
            pki.issue_client("nurse", &agency, 30, &password("pw")),
            Err(PkiError::Exists(_))
        ));
    }

    #[test]
    fn names_that_could_escape_the_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDirectory::new(dir.path());
        pki.init().unwrap();
        let agency = AgencyId::parse("iow-nhs").unwrap();
        assert!(pki
            .issue_client("../ca", &agency, 30, &password("pw"))
            .is_err());
    }

    #[test]
    fn the_pkcs12_file_holds_the_certificate_and_its_key_and_opens_with_its_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDirectory::new(dir.path());
        pki.init().unwrap();
        let agency = AgencyId::parse("iow-nhs").unwrap();
        let certificate = pki
            .issue_client("nurse", &agency, 30, &password("correct horse"))
            .unwrap();
        let path = pki.client_pkcs12("nurse");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let store = open_pkcs12(&path, "correct horse").unwrap();
        let (alias, chain) = store.private_key_chain().unwrap();
        assert_eq!(alias, "nurse");
        let [leaf, ca] = chain.certs() else {
            panic!("expected the certificate and the CA's, got {chain:?}");
        };
        assert_eq!(leaf.subject(), "CN=nurse, O=iow-nhs");
        assert_eq!(
            leaf.as_der(),
            der_certificate(&fs::read_to_string(certificate).unwrap()).unwrap()
        );
        assert_eq!(
            ca.subject(),
            "CN=Concordat development CA, O=Concordat development"
        );
        let key = KeyPair::try_from(chain.key().as_der()).unwrap();
        let (_, parsed) = X509Certificate::from_der(leaf.as_der()).unwrap();
        assert_eq!(
            rcgen::PublicKeyData::subject_public_key_info(&key),
            parsed.public_key().raw
        );

        assert!(open_pkcs12(&path, "correct horsf").is_err());
        assert!(open_pkcs12(&path, "").is_err());
    }

    #[test]
    fn a_missing_pkcs12_file_is_written_from_the_certificate_and_key_already_issued() {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDirectory::new(dir.path());
        pki.init().unwrap();
        let agency = AgencyId::parse("scas").unwrap();
        let certificate = pki
            .issue_client("dispatch", &agency, 30, &password("first"))
            .unwrap();
        fs::remove_file(pki.client_pkcs12("dispatch")).unwrap();

        let path = pki
            .write_client_pkcs12("dispatch", &password("second"))
            .unwrap();
        let store = open_pkcs12(&path, "second").unwrap();
        let (_, chain) = store.private_key_chain().unwrap();
        assert_eq!(
            chain.certs().first().unwrap().as_der(),
            der_certificate(&fs::read_to_string(certificate).unwrap()).unwrap()
        );
        assert!(pki.write_client_pkcs12("nobody", &password("x")).is_err());
    }

    #[test]
    fn an_empty_or_non_ascii_password_is_refused_before_any_file_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let pki = PkiDirectory::new(dir.path());
        pki.init().unwrap();
        let agency = AgencyId::parse("iow-nhs").unwrap();
        for bad in ["", "caf\u{e9}", "tab\there"] {
            assert!(matches!(
                pki.issue_client("nurse", &agency, 30, &password(bad)),
                Err(PkiError::Invalid(_))
            ));
            assert!(!pki.client_certificate("nurse").exists());
            assert!(!pki.client_key("nurse").exists());
        }
    }

    #[test]
    fn generated_passwords_are_four_groups_of_five_unambiguous_characters() {
        let first = generate_pkcs12_password();
        let groups: Vec<&str> = first.expose_secret().split('-').collect();
        assert_eq!(groups.len(), 4);
        for group in groups {
            assert_eq!(group.len(), 5);
            assert!(group.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)));
        }
        assert_ne!(
            first.expose_secret(),
            generate_pkcs12_password().expose_secret()
        );
    }
}
