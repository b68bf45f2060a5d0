//! Witness cosignatures in the C2SP `tlog-cosignature` format (Ed25519, `cosignature/v1`):
//! a witness's statement that, at the time it gives, the checkpoint is the largest
//! consistent tree head it has seen for the log. Every agency can run a witness, so no
//! single operator, the gateway's included, can show one history to some and another to
//! others.
//!
//! A cosignature is a note signature line `— <witness name> <base64(key id || timestamp ||
//! signature)>` added under the checkpoint. The key id is the first four bytes of
//! `SHA-256(<name> || 0x0A || 0x04 || public key)`; the timestamp is eight bytes,
//! big-endian seconds since the epoch; the signature is Ed25519 over
//! `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint's body.

use std::path::Path;

use base64::{engine::general_purpose::STANDARD, Engine};
use ring::{
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519},
};

use super::checkpoint::{encode_vkey, key_id, parse_vkey, CheckpointError, SIGNATURE_PREFIX};

/// Signature algorithm byte of Ed25519 `cosignature/v1` keys.
const ALGORITHM_COSIGNATURE_V1: u8 = 0x04;

/// A witness's public key, as `<name>+<8 hex key id>+<base64(0x04 || public key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessKey {
    name: String,
    key_id: [u8; 4],
    public_key: [u8; 32],
}

/// A valid cosignature: when it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cosigned {
    pub timestamp: u64,
}

impl WitnessKey {
    fn new(name: &str, public_key: [u8; 32]) -> Self {
        Self {
            name: name.to_owned(),
            key_id: key_id(name, ALGORITHM_COSIGNATURE_V1, &public_key),
            public_key,
        }
    }

    pub fn parse(vkey: &str) -> Result<Self, CheckpointError> {
        let (name, public_key) = parse_vkey(vkey, ALGORITHM_COSIGNATURE_V1)?;
        Ok(Self::new(&name, public_key))
    }

    pub fn encode(&self) -> String {
        encode_vkey(
            &self.name,
            self.key_id,
            ALGORITHM_COSIGNATURE_V1,
            &self.public_key,
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cosignature by this key among `lines` (signature lines, or a whole cosigned
    /// note) on the checkpoint `body`, if there is a valid one. Lines of other keys, and
    /// lines of this name that do not verify, are ignored, as the format requires.
    pub fn cosignature_in(&self, body: &str, lines: &str) -> Option<Cosigned> {
        let prefix = format!("{SIGNATURE_PREFIX}{} ", self.name);
        lines
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .filter_map(|encoded| STANDARD.decode(encoded).ok())
            .find_map(|bytes| self.verify(body, &bytes))
    }

    fn verify(&self, body: &str, bytes: &[u8]) -> Option<Cosigned> {
        let (id, rest) = bytes.split_first_chunk::<4>()?;
        let (timestamp, signature) = rest.split_first_chunk::<8>()?;
        let timestamp = u64::from_be_bytes(*timestamp);
        let valid = id == &self.key_id
            && signature.len() == 64
            && timestamp <= i64::MAX as u64
            && UnparsedPublicKey::new(&ED25519, &self.public_key)
                .verify(&signed_message(timestamp, body), signature)
                .is_ok();
        valid.then_some(Cosigned { timestamp })
    }
}

/// The witness's own key: an Ed25519 PKCS#8 file.
pub struct WitnessSigner {
    pair: Ed25519KeyPair,
    key: WitnessKey,
}

impl std::fmt::Debug for WitnessSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessSigner")
            .field("key", &self.key.encode())
            .finish_non_exhaustive()
    }
}

impl WitnessSigner {
    /// Loads the key at `path`, or creates it (mode 0600, never over an existing file) when
    /// it is missing: a witness's key is its identity, made once.
    pub fn load_or_create(path: &Path, name: &str) -> Result<Self, CheckpointError> {
        let key_error = |message: String| CheckpointError::KeyFile {
            path: path.to_path_buf(),
            message,
        };
        let pkcs8 = if path.exists() {
            crate::files::read_key_file(path).map_err(|e| key_error(e.to_string()))?
        } else {
            if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::files::create_private_dir(dir).map_err(|e| key_error(e.to_string()))?;
            }
            let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| key_error("cannot generate a key".into()))?;
            crate::files::create_key_file(path, document.as_ref())
                .map_err(|e| key_error(e.to_string()))?;
            document.as_ref().to_vec()
        };
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|e| key_error(format!("not an Ed25519 PKCS#8 key: {e}")))?;
        let public_key: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| key_error("not an Ed25519 key".into()))?;
        Ok(Self {
            key: WitnessKey::new(name, public_key),
            pair,
        })
    }

    pub fn key(&self) -> &WitnessKey {
        &self.key
    }

    /// The cosignature line (with its newline) on the checkpoint `body`, made at
    /// `timestamp` (seconds since the epoch).
    pub fn cosign(&self, body: &str, timestamp: u64) -> String {
        let mut bytes = self.key.key_id.to_vec();
        bytes.extend_from_slice(&timestamp.to_be_bytes());
        bytes.extend_from_slice(self.pair.sign(&signed_message(timestamp, body)).as_ref());
        format!(
            "{SIGNATURE_PREFIX}{} {}\n",
            self.key.name,
            STANDARD.encode(bytes)
        )
    }
}

/// What a `cosignature/v1` signs: a header line, the time line and the checkpoint's body.
fn signed_message(timestamp: u64, body: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{body}").into_bytes()
}

/// How many of `witnesses` cosigned the checkpoint `body` among `lines`; each witness (by
/// name) counts once however many lines or keys it has.
pub fn count_cosigners(witnesses: &[WitnessKey], body: &str, lines: &str) -> usize {
    witnesses
        .iter()
        .filter(|witness| witness.cosignature_in(body, lines).is_some())
        .map(WitnessKey::name)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn signer(dir: &Path, name: &str) -> WitnessSigner {
        WitnessSigner::load_or_create(&dir.join(format!("{name}.pk8")), name).unwrap()
    }

    #[test]
    fn a_cosignature_verifies_with_the_witness_key_and_says_when() {
        let dir = tempfile::tempdir().unwrap();
        let witness = signer(dir.path(), "witness.example/w1");
        let line = witness.cosign(BODY, 1_679_315_147);
        assert!(line.starts_with("\u{2014} witness.example/w1 "));
        let key = WitnessKey::parse(&witness.key().encode()).unwrap();
        assert_eq!(
            key.cosignature_in(BODY, &line),
            Some(Cosigned {
                timestamp: 1_679_315_147
            })
        );
        // 4-byte id, 8-byte time, 64-byte signature.
        let encoded = line.trim_end().rsplit(' ').next().unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap().len(), 76);
    }

    #[test]
    fn another_body_another_time_or_another_key_does_not_verify() {
        let dir = tempfile::tempdir().unwrap();
        let witness = signer(dir.path(), "w1");
        let impostor = signer(dir.path(), "impostor");
        let line = witness.cosign(BODY, 100);
        let key = witness.key();

        let other_body = BODY.replace("20852163", "20852164");
        assert_eq!(key.cosignature_in(&other_body, &line), None);
        let bytes = STANDARD
            .decode(line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        let mut later = bytes.clone();
        later[11] ^= 1;
        let relined = format!("\u{2014} w1 {}\n", STANDARD.encode(later));
        assert_eq!(key.cosignature_in(BODY, &relined), None);
        // The impostor's signature under the witness's name.
        let forged = impostor.cosign(BODY, 100).replace("impostor", "w1");
        assert_eq!(key.cosignature_in(BODY, &forged), None);
    }

    #[test]
    fn a_quorum_counts_each_known_witness_once() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            signer(dir.path(), "a"),
            signer(dir.path(), "b"),
            signer(dir.path(), "c"),
        );
        let unknown = signer(dir.path(), "unknown");
        let lines = [
            a.cosign(BODY, 1),
            a.cosign(BODY, 2),
            c.cosign(BODY, 3),
            unknown.cosign(BODY, 4),
        ]
        .concat();
        let known = [
            a.key().clone(),
            b.key().clone(),
            c.key().clone(),
            a.key().clone(),
        ];
        assert_eq!(count_cosigners(&known, BODY, &lines), 2);
    }

    #[test]
    fn witness_keys_round_trip_and_checkpoint_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let witness = signer(dir.path(), "w1");
        let encoded = witness.key().encode();
        assert_eq!(&WitnessKey::parse(&encoded).unwrap(), witness.key());
        let log =
            crate::audit::checkpoint::CheckpointSigner::load_or_create(dir.path(), "log").unwrap();
        assert!(WitnessKey::parse(&log.verifier().encode()).is_err());
        let wrong_id = encoded.replacen('+', "+0", 1);
        assert!(WitnessKey::parse(&wrong_id).is_err());
    }

    #[test]
    fn the_key_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let first = signer(dir.path(), "w1");
        let second = signer(dir.path(), "w1");
        assert_eq!(first.key(), second.key());
    }
}
