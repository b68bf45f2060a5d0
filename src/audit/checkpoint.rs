//! Signed checkpoints in the C2SP `tlog-checkpoint` signed-note format, with the gateway's
//! Ed25519 key, so that an outside witness can hold the gateway to its log.
//!
//! A checkpoint body is `<origin>\n<tree size>\n<base64 root hash>\n`; the note adds a
//! blank line and `— <key name> <base64(4-byte key id || signature)>\n`. The verifier key
//! is `<key name>+<8 hex key id>+<base64(0x01 || public key)>`, the key id being the first
//! four bytes of `SHA-256(<key name> || 0x0A || 0x01 || public key)`.

use std::path::{Path, PathBuf};

use base64::{engine::general_purpose::STANDARD, Engine};
use ring::{
    digest::{digest, SHA256},
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519},
};

use super::merkle::Hash;

/// Signature algorithm byte of Ed25519 in signed-note keys.
const ALGORITHM_ED25519: u8 = 0x01;
/// Starts every note signature line: an em dash and a space.
pub(super) const SIGNATURE_PREFIX: &str = "\u{2014} ";
const PRIVATE_KEY_FILE: &str = "audit-checkpoint.pk8";
const VERIFIER_KEY_FILE: &str = "audit-checkpoint.vkey";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    #[error("invalid verifier key: {0}")]
    VerifierKey(&'static str),
    #[error("invalid checkpoint: {0}")]
    Malformed(&'static str),
    #[error("the checkpoint is not signed by this key")]
    BadSignature,
}

/// What a checkpoint commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    fn parse_body(body: &str) -> Result<Self, CheckpointError> {
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(CheckpointError::Malformed("origin"))?;
        let size = lines
            .next()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(CheckpointError::Malformed("tree size"))?;
        let root = lines
            .next()
            .and_then(|r| STANDARD.decode(r).ok())
            .and_then(|r| Hash::try_from(r.as_slice()).ok())
            .ok_or(CheckpointError::Malformed("root hash"))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// A signed note's body: its text up to the blank line before the signatures, with its
/// final newline, exactly as signed (and as a witness cosigns it).
pub fn note_body(note: &str) -> String {
    note.split_once("\n\n")
        .map_or_else(|| note.to_owned(), |(body, _)| format!("{body}\n"))
}

/// The public half: parses, prints and verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: [u8; 4],
    public_key: Vec<u8>,
}

impl VerifierKey {
    fn new(name: &str, public_key: &[u8]) -> Self {
        Self {
            name: name.to_owned(),
            key_id: key_id(name, ALGORITHM_ED25519, public_key),
            public_key: public_key.to_vec(),
        }
    }

    pub fn parse(vkey: &str) -> Result<Self, CheckpointError> {
        let (name, public_key) = parse_vkey(vkey, ALGORITHM_ED25519)?;
        Ok(Self::new(&name, &public_key))
    }

    pub fn encode(&self) -> String {
        encode_vkey(&self.name, self.key_id, ALGORITHM_ED25519, &self.public_key)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the note's signature by this key and returns what it commits to.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, CheckpointError> {
        let (body, signatures) = note.split_once("\n\n").ok_or(CheckpointError::Malformed(
            "no blank line before the signatures",
        ))?;
        let body = format!("{body}\n");
        let prefix = format!("{SIGNATURE_PREFIX}{} ", self.name);
        let signed = signatures
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .filter_map(|encoded| STANDARD.decode(encoded).ok())
            .any(|bytes| {
                bytes.len() == 68
                    && bytes.get(..4) == Some(&self.key_id[..])
                    && bytes.get(4..).is_some_and(|signature| {
                        UnparsedPublicKey::new(&ED25519, &self.public_key)
                            .verify(body.as_bytes(), signature)
                            .is_ok()
                    })
            });
        if !signed {
            return Err(CheckpointError::BadSignature);
        }
        Checkpoint::parse_body(&body)
    }
}

/// The gateway's signing key, kept in `keys.dir`.
pub struct CheckpointSigner {
    pair: Ed25519KeyPair,
    verifier: VerifierKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("verifier", &self.verifier.encode())
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// Loads `dir/audit-checkpoint.pk8`, creating it (mode 0600) on first start, and
    /// (re)writes the public verifier key beside it. Every instance sharing a database
    /// must share this key.
    pub fn load_or_create(dir: &Path, name: &str) -> Result<Self, CheckpointError> {
        Self::open(dir, name, true)
    }

    /// Loads `dir/audit-checkpoint.pk8` and creates none: once checkpoints are stored, a new
    /// key would sign checkpoints that do not verify under the published one.
    pub fn load(dir: &Path, name: &str) -> Result<Self, CheckpointError> {
        Self::open(dir, name, false)
    }

    fn open(dir: &Path, name: &str, create: bool) -> Result<Self, CheckpointError> {
        let path = dir.join(PRIVATE_KEY_FILE);
        let key_error = |message: String| CheckpointError::KeyFile {
            path: path.clone(),
            message,
        };
        let pkcs8 = if path.exists() || !create {
            crate::files::read_key_file(&path).map_err(|e| key_error(e.to_string()))?
        } else {
            crate::files::create_private_dir(dir).map_err(|e| key_error(e.to_string()))?;
            let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| key_error("cannot generate a key".into()))?;
            crate::files::create_key_file(&path, document.as_ref())
                .map_err(|e| key_error(e.to_string()))?;
            document.as_ref().to_vec()
        };
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|e| key_error(format!("not an Ed25519 PKCS#8 key: {e}")))?;
        let verifier = VerifierKey::new(name, pair.public_key().as_ref());
        // Written only when missing or different (a new origin), so that once the keys
        // exist `keys.dir` can be mounted read-only.
        let vkey_path = dir.join(VERIFIER_KEY_FILE);
        let vkey = format!("{}\n", verifier.encode());
        if std::fs::read_to_string(&vkey_path).ok().as_deref() != Some(vkey.as_str()) {
            crate::files::write_public(&vkey_path, vkey.as_bytes())
                .map_err(|e| key_error(e.to_string()))?;
        }
        Ok(Self { pair, verifier })
    }

    pub fn verifier(&self) -> &VerifierKey {
        &self.verifier
    }

    /// The signed note for `checkpoint`.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let body = checkpoint.body();
        let mut signature = self.verifier.key_id.to_vec();
        signature.extend_from_slice(self.pair.sign(body.as_bytes()).as_ref());
        format!(
            "{body}\n{SIGNATURE_PREFIX}{} {}\n",
            self.verifier.name,
            STANDARD.encode(signature)
        )
    }
}

/// Parses a signed-note verifier key of `algorithm` with a 32-byte Ed25519 public key,
/// `<name>+<8 hex key id>+<base64(algorithm || key)>`, checking its name and key id.
/// Returns the name and the key.
pub(super) fn parse_vkey(vkey: &str, algorithm: u8) -> Result<(String, [u8; 32]), CheckpointError> {
    let mut parts = vkey.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CheckpointError::VerifierKey("expected name+id+key"));
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(CheckpointError::VerifierKey("invalid key name"));
    }
    let key = STANDARD
        .decode(key)
        .map_err(|_| CheckpointError::VerifierKey("key is not base64"))?;
    let Some((&found, public_key)) = key.split_first() else {
        return Err(CheckpointError::VerifierKey("the key is empty"));
    };
    if found != algorithm {
        return Err(CheckpointError::VerifierKey(
            "not a key of the expected type (0x01 for a log, 0x04 for a witness)",
        ));
    }
    let public_key: [u8; 32] = public_key
        .try_into()
        .map_err(|_| CheckpointError::VerifierKey("an Ed25519 key is 32 bytes"))?;
    if hex::encode(key_id(name, algorithm, &public_key)) != id {
        return Err(CheckpointError::VerifierKey(
            "key id does not match the key",
        ));
    }
    Ok((name.to_owned(), public_key))
}

/// The verifier key text [`parse_vkey`] reads.
pub(super) fn encode_vkey(name: &str, key_id: [u8; 4], algorithm: u8, public_key: &[u8]) -> String {
    let mut key = vec![algorithm];
    key.extend_from_slice(public_key);
    format!("{name}+{}+{}", hex::encode(key_id), STANDARD.encode(key))
}

/// A signed-note key id: the first four bytes of `SHA-256(name || 0x0A || algorithm ||
/// public key)`.
pub(super) fn key_id(name: &str, algorithm: u8, public_key: &[u8]) -> [u8; 4] {
    let mut material = name.as_bytes().to_vec();
    material.push(b'\n');
    material.push(algorithm);
    material.extend_from_slice(public_key);
    let hash = digest(&SHA256, &material);
    let mut id = [0u8; 4];
    id.copy_from_slice(hash.as_ref().get(..4).unwrap_or(&[0; 4]));
    id
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "concordat.test/log".into(),
            size: 42,
            root: [7u8; 32],
        }
    }

    #[test]
    fn notes_have_the_c2sp_shape_and_verify_with_the_exported_key() {
        let dir = tempfile::tempdir().unwrap();
        let signer = CheckpointSigner::load_or_create(dir.path(), "concordat.test/log").unwrap();
        let note = signer.sign(&checkpoint());
        let lines: Vec<&str> = note.split('\n').collect();
        assert_eq!(
            lines[..4],
            ["concordat.test/log", "42", &STANDARD.encode([7u8; 32]), ""]
        );
        assert!(lines[4].starts_with("\u{2014} concordat.test/log "));
        assert!(note.ends_with('\n'));

        let vkey = std::fs::read_to_string(dir.path().join(VERIFIER_KEY_FILE)).unwrap();
        let verifier = VerifierKey::parse(&vkey).unwrap();
        assert_eq!(verifier.verify(&note).unwrap(), checkpoint());
        let mode = std::fs::metadata(dir.path().join(PRIVATE_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_key_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let first = CheckpointSigner::load_or_create(dir.path(), "o").unwrap();
        let second = CheckpointSigner::load_or_create(dir.path(), "o").unwrap();
        assert_eq!(first.verifier(), second.verifier());
    }

    /// After the first start `keys.dir` may be read-only (a sandboxed service): the verifier
    /// key file is written only when it is missing or says something else.
    #[test]
    fn the_verifier_key_file_is_rewritten_only_when_it_differs() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let vkey = dir.path().join(VERIFIER_KEY_FILE);
        CheckpointSigner::load_or_create(dir.path(), "o").unwrap();
        let written = std::fs::metadata(&vkey).unwrap().ino();

        CheckpointSigner::load_or_create(dir.path(), "o").unwrap();
        assert_eq!(std::fs::metadata(&vkey).unwrap().ino(), written);

        CheckpointSigner::load_or_create(dir.path(), "another.origin/log").unwrap();
        assert!(std::fs::read_to_string(&vkey)
            .unwrap()
            .starts_with("another.origin/log+"));
    }

    #[test]
    fn a_changed_body_or_another_key_fails() {
        let dir = tempfile::tempdir().unwrap();
        let signer = CheckpointSigner::load_or_create(dir.path(), "o").unwrap();
        let note = signer.sign(&Checkpoint {
            origin: "o".into(),
            ..checkpoint()
        });
        let forged = note.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            signer.verifier().verify(&forged),
            Err(CheckpointError::BadSignature)
        ));

        let other_dir = tempfile::tempdir().unwrap();
        let other = CheckpointSigner::load_or_create(other_dir.path(), "o").unwrap();
        assert!(other.verifier().verify(&note).is_err());
    }

    #[test]
    fn verifier_keys_with_a_wrong_id_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let vkey = CheckpointSigner::load_or_create(dir.path(), "o")
            .unwrap()
            .verifier()
            .encode();
        let tampered = vkey.replacen("+", "+0", 1);
        assert!(VerifierKey::parse(&tampered).is_err());
        assert!(VerifierKey::parse(&vkey).is_ok());
    }
}
