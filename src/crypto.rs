//! Encryption at rest and blind indexes, with ring.
//!
//! Identifiers, names, dates of birth, consent evidence and record payloads are stored
//! only as AES-256-GCM ciphertexts: a fresh random 96-bit nonce per value, and the row id
//! and column name as associated data, so a ciphertext moved to another row or column fails
//! to open. A value whose meaning depends on other columns of its row (a record payload
//! means something only for its subject, holder and type) is sealed *bound* to those
//! columns as well, so changing any of them in the database makes it fail to open rather
//! than be read as someone else's. A bound column accepts only bound values: a value sealed
//! before its column was bound is refused until it is re-sealed bound ([`Keyring::rebind`],
//! which `concordat migrate` runs), since its old ciphertext, in any backup, would open in
//! its row wherever that row had been moved. Each ciphertext carries the id of the key that
//! sealed it, so a new data key can be introduced without re-encrypting old rows
//! (docs/operations.md, "Rotating the data key").
//! Lookups by identifier use an HMAC-SHA-256 blind index under a separate key: equal
//! identifiers give equal indexes, and the index reveals nothing without the key.
//!
//! Keys live in `keys.dir`, outside the database, as `data-key-<n>.bin` (the highest `n`
//! seals; all open) and `blind-index.key`, each 32 random bytes, mode 0600, created at
//! first start of the gateway (and by nothing else). A stolen database file alone discloses
//! nothing.

use std::{collections::BTreeMap, path::Path};

use ring::{
    aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN},
    hmac,
    rand::{SecureRandom, SystemRandom},
};

/// First byte of every sealed value, saying what its associated data was: the row id and
/// column ([`Keyring::seal`]). Public so storage can find the values of a bound column that
/// were sealed before it was bound.
pub const FORMAT_V1: u8 = 1;
/// The row id, the column and the columns the value is bound to ([`Keyring::seal_bound`]).
/// A different first byte than v1, so a bound value can never be opened as an unbound one.
const FORMAT_BOUND: u8 = 2;
const DATA_KEY_PREFIX: &str = "data-key-";
const DATA_KEY_SUFFIX: &str = ".bin";
const BLIND_INDEX_KEY: &str = "blind-index.key";
const FORM_TOKEN_LABEL: &[u8] = b"concordat console form token v1";

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
    /// Keys the console's form tokens: derived from the blind-index key under its own
    /// label, so every instance sharing the keys directory accepts the same tokens and no
    /// token says anything about a blind index.
    form_tokens: hmac::Key,
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
        Self::load_from(dir, true)
    }

    /// Loads the keys in `dir` and creates none: for an operator command that must work with
    /// the keys the gateway already seals with, where a new key would seal what no instance
    /// can open.
    pub fn load(dir: &Path) -> Result<Self, CryptoError> {
        Self::load_from(dir, false)
    }

    fn load_from(dir: &Path, create: bool) -> Result<Self, CryptoError> {
        let random = SystemRandom::new();
        let file_error = |path: &Path, message: String| CryptoError::KeyFile {
            path: path.display().to_string(),
            message,
        };
        if create {
            crate::files::create_private_dir(dir).map_err(|e| file_error(dir, e.to_string()))?;
        }
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
            if !create {
                return Err(file_error(
                    dir,
                    format!("holds no data key ({DATA_KEY_PREFIX}<n>{DATA_KEY_SUFFIX})"),
                ));
            }
            let bytes = create_key(&path, &random)?;
            let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| CryptoError::Random)?;
            data_keys.insert(1, LessSafeKey::new(key));
        }
        let blind_path = dir.join(BLIND_INDEX_KEY);
        let blind_bytes = if blind_path.exists() || !create {
            read_key(&blind_path)?
        } else {
            create_key(&blind_path, &random)?
        };
        let current = data_keys.keys().next_back().copied().unwrap_or(1);
        let blind_index = hmac::Key::new(hmac::HMAC_SHA256, &blind_bytes);
        let form_tokens = hmac::Key::new(
            hmac::HMAC_SHA256,
            hmac::sign(&blind_index, FORM_TOKEN_LABEL).as_ref(),
        );
        Ok(Self {
            current,
            data_keys,
            blind_index,
            form_tokens,
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
        self.seal_as(FORMAT_V1, &unbound(row_id, column), plaintext)
    }

    pub fn open(&self, row_id: &str, column: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match sealed.first() {
            Some(&FORMAT_V1) => self.open_as(&unbound(row_id, column), sealed),
            _ => Err(CryptoError::Open),
        }
    }

    /// Seals `plaintext` bound to its row and column and to `bound_to`, the values of the
    /// other columns its meaning depends on: it opens only where all of them are the same.
    /// The same layout as [`Keyring::seal`], with first byte 2.
    pub fn seal_bound(
        &self,
        row_id: &str,
        column: &str,
        bound_to: &[&str],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.seal_as(FORMAT_BOUND, &bound(row_id, column, bound_to), plaintext)
    }

    /// Opens a value sealed by [`Keyring::seal_bound`] with the same binding, and nothing
    /// else: a value sealed by [`Keyring::seal`] before its column was bound says nothing
    /// about where it belongs, so it is refused like a moved one until [`Keyring::rebind`]
    /// has bound it.
    pub fn open_bound(
        &self,
        row_id: &str,
        column: &str,
        bound_to: &[&str],
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match sealed.first() {
            Some(&FORMAT_BOUND) => self.open_as(&bound(row_id, column, bound_to), sealed),
            _ => Err(CryptoError::Open),
        }
    }

    /// Seals again, bound to `bound_to`, a value that [`Keyring::seal`] sealed for this row
    /// and column before the column was bound. Nothing else is accepted: a bound value needs
    /// no binding, and one from another row or column does not open.
    pub fn rebind(
        &self,
        row_id: &str,
        column: &str,
        bound_to: &[&str],
        sealed: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let plaintext = self.open(row_id, column, sealed)?;
        self.seal_bound(row_id, column, bound_to, &plaintext)
    }

    fn seal_as(&self, format: u8, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
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
            Aad::from(aad),
            &mut in_out,
        )
        .map_err(|_| CryptoError::Random)?;
        let mut sealed = Vec::with_capacity(1 + 4 + NONCE_LEN + in_out.len());
        sealed.push(format);
        sealed.extend_from_slice(&self.current.to_be_bytes());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Opens any layout; the caller has chosen `aad` by the first byte.
    fn open_as(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let rest = sealed.get(1..).ok_or(CryptoError::Open)?;
        if rest.len() < 4 + NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (id, rest) = rest.split_at(4);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let id = u32::from_be_bytes(id.try_into().map_err(|_| CryptoError::Open)?);
        let key = self.data_keys.get(&id).ok_or(CryptoError::UnknownKey(id))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = key
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
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

    /// The token every state-changing console form of `principal` carries: a client
    /// certificate is sent with any request the browser makes, so only a page the gateway
    /// served that principal can know it (cross-site request forgery).
    pub fn form_token(&self, principal: &str) -> String {
        hex::encode(hmac::sign(&self.form_tokens, principal.as_bytes()))
    }

    /// Whether `token` is `principal`'s form token, compared in constant time.
    pub fn check_form_token(&self, principal: &str, token: &str) -> bool {
        hex::decode(token)
            .is_ok_and(|tag| hmac::verify(&self.form_tokens, principal.as_bytes(), &tag).is_ok())
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

/// Version 1: `row id, 0, column` (ids and column names hold no zero byte).
fn unbound(row_id: &str, column: &str) -> Vec<u8> {
    let mut aad = row_id.as_bytes().to_vec();
    aad.push(0);
    aad.extend_from_slice(column.as_bytes());
    aad
}

/// Version 2: the format byte, then the row id, the column and each bound value, each
/// preceded by its length, so no two different bindings give the same bytes whatever the
/// values hold (a bound column is read back from the database, where it could be anything).
fn bound(row_id: &str, column: &str, bound_to: &[&str]) -> Vec<u8> {
    let mut aad = vec![FORMAT_BOUND];
    for part in [row_id, column].iter().chain(bound_to) {
        let length = u64::try_from(part.len()).unwrap_or(u64::MAX);
        aad.extend_from_slice(&length.to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

fn read_key(path: &Path) -> Result<Vec<u8>, CryptoError> {
    let bytes = crate::files::read_key_file(path).map_err(|e| CryptoError::KeyFile {
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
    crate::files::create_key_file(path, &bytes).map_err(|e| CryptoError::KeyFile {
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
    fn form_tokens_belong_to_one_principal_and_survive_a_reload_of_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::load_or_create(dir.path()).unwrap();
        let token = keys.form_token("programme-coordinator");
        assert!(keys.check_form_token("programme-coordinator", &token));
        assert!(!keys.check_form_token("police-mentor", &token));
        assert!(!keys.check_form_token("programme-coordinator", ""));
        assert!(!keys.check_form_token("programme-coordinator", "not hex"));
        assert_ne!(
            token,
            keys.blind_index("principal", "programme-coordinator")
        );
        let reloaded = Keyring::load(dir.path()).unwrap();
        assert!(reloaded.check_form_token("programme-coordinator", &token));
        let other = tempfile::tempdir().unwrap();
        let elsewhere = Keyring::load_or_create(other.path()).unwrap();
        assert!(!elsewhere.check_form_token("programme-coordinator", &token));
    }

    #[test]
    fn bound_values_open_only_with_every_part_of_their_binding() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::load_or_create(dir.path()).unwrap();
        let binding = ["subj_a", "iow-nhs", "health.crisis_plan"];
        let sealed = keys
            .seal_bound("rec_1", "payload", &binding, b"plan")
            .unwrap();
        assert_eq!(
            keys.open_bound("rec_1", "payload", &binding, &sealed)
                .unwrap(),
            b"plan"
        );
        for (i, moved) in [
            ["subj_b", "iow-nhs", "health.crisis_plan"],
            ["subj_a", "hampshire-police", "health.crisis_plan"],
            ["subj_a", "iow-nhs", "health.care_plan"],
        ]
        .iter()
        .enumerate()
        {
            assert!(
                keys.open_bound("rec_1", "payload", moved, &sealed).is_err(),
                "binding part {i} not checked"
            );
        }
        assert!(keys
            .open_bound("rec_2", "payload", &binding, &sealed)
            .is_err());
        // Boundaries count: the same bytes split differently are another binding.
        assert!(keys
            .open_bound(
                "rec_1",
                "payload",
                &["subj_ai", "ow-nhs", "health.crisis_plan"],
                &sealed
            )
            .is_err());
        // A bound value is never opened as an unbound one, even relabelled as version 1.
        assert!(keys.open("rec_1", "payload", &sealed).is_err());
        let mut relabelled = sealed.clone();
        relabelled[0] = FORMAT_V1;
        assert!(keys
            .open_bound("rec_1", "payload", &binding, &relabelled)
            .is_err());
    }

    #[test]
    fn values_sealed_before_binding_are_refused_until_rebound_in_their_own_row() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::load_or_create(dir.path()).unwrap();
        let legacy = keys.seal("rec_1", "payload", b"plan").unwrap();
        let binding = ["subj_a", "iow-nhs", "health.crisis_plan"];
        assert_eq!(legacy[0], FORMAT_V1);
        assert!(keys
            .open_bound("rec_1", "payload", &binding, &legacy)
            .is_err());

        let rebound = keys.rebind("rec_1", "payload", &binding, &legacy).unwrap();
        assert_eq!(rebound[0], FORMAT_BOUND);
        assert_eq!(
            keys.open_bound("rec_1", "payload", &binding, &rebound)
                .unwrap(),
            b"plan"
        );
        assert!(keys
            .open_bound(
                "rec_1",
                "payload",
                &["subj_b", "iow-nhs", "health.crisis_plan"],
                &rebound
            )
            .is_err());
        // Only an unbound value of this very row and column is bound.
        assert!(keys.rebind("rec_2", "payload", &binding, &legacy).is_err());
        assert!(keys.rebind("rec_1", "payload", &binding, &rebound).is_err());
    }

    #[test]
    fn load_creates_no_keys() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Keyring::load(dir.path()).unwrap_err();
        assert!(missing.to_string().contains("data-key-"), "{missing}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let created = Keyring::load_or_create(dir.path()).unwrap();
        let sealed = created.seal("r", "c", b"v").unwrap();
        assert_eq!(
            Keyring::load(dir.path())
                .unwrap()
                .open("r", "c", &sealed)
                .unwrap(),
            b"v"
        );
        std::fs::remove_file(dir.path().join(BLIND_INDEX_KEY)).unwrap();
        let missing = Keyring::load(dir.path()).unwrap_err();
        assert!(missing.to_string().contains(BLIND_INDEX_KEY), "{missing}");
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
        crate::files::create_key_file(&dir.path().join("data-key-2.bin"), &[7u8; 32]).unwrap();
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
