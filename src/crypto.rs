//! Encryption at rest and blind indexes, with ring.
//!
//! Identifiers, names, dates of birth, consent evidence and (later) record payloads are
//! stored only as AES-256-GCM ciphertexts: a fresh random 96-bit nonce per value, and the
//! row id and column name as associated data, so a ciphertext moved to another row or
//! column fails to open. Each ciphertext carries the id of the key that sealed it, so a new
//! data key can be introduced without re-encrypting old rows (README, "Key rotation").
//! Lookups by identifier use an HMAC-SHA-256 blind index under a separate key: equal
//! identifiers give equal indexes, and the index reveals nothing without the key.
//!
//! Keys live in `keys.dir`, outside the database, as `data-key-<n>.bin` (the highest `n`
//! seals; all open) and `blind-index.key`, each 32 random bytes, mode 0600, created at
//! first start. A stolen database file alone discloses nothing.

use std::{collections::BTreeMap, path::Path};

use ring::{
    aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN},
    hmac,
    rand::{SecureRandom, SystemRandom},
};

/// First byte of every sealed value: the layout below.
const FORMAT_V1: u8 = 1;
const DATA_KEY_PREFIX: &str = "data-key-";
const DATA_KEY_SUFFIX: &str = ".bin";
const BLIND_INDEX_KEY: &str = "blind-index.key";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("{path}: {message}")]
    KeyFile { path: String, message: String },
    #[error("no data key with id {0} (was a key file removed?)")]
    UnknownKey(u32),
    #[error("a stored value cannot be opened: it was changed, moved, or sealed by another key")]
    Open,
    #[error("the random number generator failed")]
    Random,
}

/// The data keys and the blind-index key.
pub struct Keyring {
    current: u32,
    data_keys: BTreeMap<u32, LessSafeKey>,
    blind_index: hmac::Key,
    random: SystemRandom,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current)
            .field("data_keys", &self.data_keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Loads every data key in `dir` and the blind-index key, creating `data-key-1.bin`
    /// and `blind-index.key` on first start.
    pub fn load_or_create(dir: &Path) -> Result<Self, CryptoError> {
        let random = SystemRandom::new();
        let file_error = |path: &Path, message: String| CryptoError::KeyFile {
            path: path.display().to_string(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e.to_string()))?;
        let mut data_keys = BTreeMap::new();
        let entries = std::fs::read_dir(dir).map_err(|e| file_error(dir, e.to_string()))?;
        for entry in entries {
            let entry = entry.map_err(|e| file_error(dir, e.to_string()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name
                .strip_prefix(DATA_KEY_PREFIX)
                .and_then(|rest| rest.strip_suffix(DATA_KEY_SUFFIX))
                .and_then(|id| id.parse::<u32>().ok())
            else {
                continue;
            };
            let bytes = read_key(&entry.path())?;
            let key = UnboundKey::new(&AES_256_GCM, &bytes)
                .map_err(|_| file_error(&entry.path(), "not a 32-byte key".into()))?;
            data_keys.insert(id, LessSafeKey::new(key));
        }
        if data_keys.is_empty() {
            let path = dir.join(format!("{DATA_KEY_PREFIX}1{DATA_KEY_SUFFIX}"));
            let bytes = create_key(&path, &random)?;
            let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| CryptoError::Random)?;
            data_keys.insert(1, LessSafeKey::new(key));
        }
        let blind_path = dir.join(BLIND_INDEX_KEY);
        let blind_bytes = if blind_path.exists() {
            read_key(&blind_path)?
        } else {
            create_key(&blind_path, &random)?
        };
        let current = data_keys.keys().next_back().copied().unwrap_or(1);
        Ok(Self {
            current,
            data_keys,
            blind_index: hmac::Key::new(hmac::HMAC_SHA256, &blind_bytes),
            random,
        })
    }

    /// `[1][key id, 4 bytes big-endian][nonce, 12][ciphertext and tag]`
    pub fn seal(
        &self,
        row_id: &str,
        column: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let key = self
            .data_keys
            .get(&self.current)
            .ok_or(CryptoError::UnknownKey(self.current))?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| CryptoError::Random)?;
        let mut in_out = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated_data(row_id, column)),
            &mut in_out,
        )
        .map_err(|_| CryptoError::Random)?;
        let mut sealed = Vec::with_capacity(1 + 4 + NONCE_LEN + in_out.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&self.current.to_be_bytes());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    pub fn open(&self, row_id: &str, column: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (&format, rest) = sealed.split_first().ok_or(CryptoError::Open)?;
        if format != FORMAT_V1 || rest.len() < 4 + NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (id, rest) = rest.split_at(4);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let id = u32::from_be_bytes(id.try_into().map_err(|_| CryptoError::Open)?);
        let key = self.data_keys.get(&id).ok_or(CryptoError::UnknownKey(id))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = key
            .open_in_place(
                nonce,
                Aad::from(associated_data(row_id, column)),
                &mut in_out,
            )
            .map_err(|_| CryptoError::Open)?;
        Ok(plaintext.to_vec())
    }

    pub fn open_text(
        &self,
        row_id: &str,
        column: &str,
        sealed: &[u8],
    ) -> Result<String, CryptoError> {
        String::from_utf8(self.open(row_id, column, sealed)?).map_err(|_| CryptoError::Open)
    }

    /// Hex HMAC-SHA-256 of `kind`, a zero byte and `value`: `kind` keeps an NHS number and
    /// a PNC id that happen to share characters from sharing an index.
    pub fn blind_index(&self, kind: &str, value: &str) -> String {
        let mut message = kind.as_bytes().to_vec();
        message.push(0);
        message.extend_from_slice(value.as_bytes());
        hex::encode(hmac::sign(&self.blind_index, &message))
    }
}

fn associated_data(row_id: &str, column: &str) -> Vec<u8> {
    let mut aad = row_id.as_bytes().to_vec();
    aad.push(0);
    aad.extend_from_slice(column.as_bytes());
    aad
}

fn read_key(path: &Path) -> Result<Vec<u8>, CryptoError> {
    let bytes = std::fs::read(path).map_err(|e| CryptoError::KeyFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    if bytes.len() != 32 {
        return Err(CryptoError::KeyFile {
            path: path.display().to_string(),
            message: "must hold exactly 32 bytes".into(),
        });
    }
    Ok(bytes)
}

fn create_key(path: &Path, random: &SystemRandom) -> Result<Vec<u8>, CryptoError> {
    let mut bytes = vec![0u8; 32];
    random.fill(&mut bytes).map_err(|_| CryptoError::Random)?;
    crate::files::write_private(path, &bytes).map_err(|e| CryptoError::KeyFile {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_own_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::load_or_create(dir.path()).unwrap();
        let sealed = keys.seal("subj_a", "family_name", b"Example").unwrap();
        assert_eq!(
            keys.open("subj_a", "family_name", &sealed).unwrap(),
            b"Example"
        );
        assert!(keys.open("subj_b", "family_name", &sealed).is_err());
        assert!(keys.open("subj_a", "given_name", &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(keys.open("subj_a", "family_name", &flipped).is_err());
        assert_ne!(
            keys.seal("subj_a", "family_name", b"Example").unwrap(),
            sealed,
            "nonces repeat"
        );
        assert!(!sealed.windows(7).any(|w| w == b"Example"));
    }

    #[test]
    fn keys_are_private_and_survive_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let first = Keyring::load_or_create(dir.path()).unwrap();
        let sealed = first.seal("r", "c", b"v").unwrap();
        let index = first.blind_index("nhs_number", "9434765919");
        let second = Keyring::load_or_create(dir.path()).unwrap();
        assert_eq!(second.open("r", "c", &sealed).unwrap(), b"v");
        assert_eq!(second.blind_index("nhs_number", "9434765919"), index);
        for file in ["data-key-1.bin", "blind-index.key"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    #[test]
    fn a_new_data_key_seals_while_old_values_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let old = Keyring::load_or_create(dir.path()).unwrap();
        let sealed_before = old.seal("r", "c", b"before").unwrap();
        std::fs::write(dir.path().join("data-key-2.bin"), [7u8; 32]).unwrap();
        let rotated = Keyring::load_or_create(dir.path()).unwrap();
        let sealed_after = rotated.seal("r", "c", b"after").unwrap();
        assert_eq!(&sealed_after[1..5], &2u32.to_be_bytes());
        assert_eq!(rotated.open("r", "c", &sealed_before).unwrap(), b"before");
        assert_eq!(rotated.open("r", "c", &sealed_after).unwrap(), b"after");
        assert!(matches!(
            old.open("r", "c", &sealed_after),
            Err(CryptoError::UnknownKey(2))
        ));
    }

    #[test]
    fn blind_indexes_separate_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::load_or_create(dir.path()).unwrap();
        assert_ne!(
            keys.blind_index("nhs_number", "x"),
            keys.blind_index("pnc_id", "x")
        );
        assert_eq!(keys.blind_index("nhs_number", "x").len(), 64);
    }
}
