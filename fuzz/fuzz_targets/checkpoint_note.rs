//! What `concordat audit verify` reads as text: the verifier key file
//! (`VerifierKey::parse`, `<name>+<8 hex key id>+<base64 key>`) and signed checkpoint
//! notes (`VerifierKey::verify`, the C2SP signed-note format), with a fixed test signing
//! key loaded through `CheckpointSigner::load` as the gateway loads its own.
//!
//! Holds: an accepted verifier key prints back as exactly the text it was read from; a
//! note the fixed key verifies commits to a checkpoint whose body starts the signed text;
//! any checkpoint with a one-line origin, signed by `CheckpointSigner::sign`, verifies to
//! itself (also beside another key's signature line), and to nothing once its body is
//! changed or under another key.

#![no_main]

use std::{path::PathBuf, sync::OnceLock};

use concordat::audit::checkpoint::{Checkpoint, CheckpointSigner, VerifierKey};
use libfuzzer_sys::fuzz_target;
use ring::signature::{Ed25519KeyPair, KeyPair};

const KEY_NAME: &str = "concordat.fuzz/log";
/// A fixed, public test seed: reproducers must sign the same way every run.
const SEED: [u8; 32] = *b"concordat fuzz checkpoint key 01";

/// The PKCS#8 v2 document of an Ed25519 key (RFC 8410 with the public key), the form the
/// gateway writes and `CheckpointSigner::load` reads.
fn pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let pair = Ed25519KeyPair::from_seed_unchecked(seed).expect("a 32-byte seed");
    let mut der = vec![
        0x30, 0x53, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der.extend_from_slice(&[0xa1, 0x23, 0x03, 0x21, 0x00]);
    der.extend_from_slice(pair.public_key().as_ref());
    der
}

fn signer_in(name: &str, seed: &[u8; 32]) -> CheckpointSigner {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "concordat-fuzz-{}-{}",
        std::process::id(),
        seed[seed.len() - 1]
    ));
    let _ = std::fs::remove_dir_all(&dir);
    concordat::files::create_private_dir(&dir).expect("a private temporary directory");
    concordat::files::create_key_file(&dir.join("audit-checkpoint.pk8"), &pkcs8(seed))
        .expect("the test key file");
    let signer = CheckpointSigner::load(&dir, name).expect("the test key loads");
    let _ = std::fs::remove_dir_all(&dir);
    signer
}

fn signer() -> &'static CheckpointSigner {
    static SIGNER: OnceLock<CheckpointSigner> = OnceLock::new();
    SIGNER.get_or_init(|| signer_in(KEY_NAME, &SEED))
}

/// Another key under the same name.
fn impostor() -> &'static CheckpointSigner {
    static SIGNER: OnceLock<CheckpointSigner> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let mut seed = SEED;
        seed[31] ^= 0xff;
        signer_in(KEY_NAME, &seed)
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    verifier_key(&text);
    note(&text);
    round_trip(data, &text);
});

fn verifier_key(text: &str) {
    let Ok(key) = VerifierKey::parse(text) else {
        return;
    };
    let encoded = key.encode();
    assert_eq!(encoded, text.trim(), "a verifier key prints as read");
    assert_eq!(VerifierKey::parse(&encoded).ok(), Some(key));
}

fn note(text: &str) {
    let Ok(checkpoint) = signer().verifier().verify(text) else {
        return;
    };
    let (body, _) = text
        .split_once("\n\n")
        .expect("a verified note has a blank line");
    let body = format!("{body}\n");
    // The size may be written `+5` or `05` in a signed body: only origin and root are exact.
    assert!(body.starts_with(&format!("{}\n", checkpoint.origin)));
    assert!(body
        .split('\n')
        .nth(2)
        .is_some_and(|root| Some(root) == checkpoint.body().split('\n').nth(2)));
}

fn round_trip(data: &[u8], text: &str) {
    let origin = text.split('\n').next().filter(|o| !o.is_empty());
    let origin = origin.unwrap_or("concordat.fuzz/log").to_owned();
    let mut size = [0u8; 8];
    let mut root = [0u8; 32];
    for (slot, byte) in size.iter_mut().chain(root.iter_mut()).zip(data) {
        *slot = *byte;
    }
    let checkpoint = Checkpoint {
        origin,
        size: u64::from_le_bytes(size),
        root,
    };
    let verifier = signer().verifier();
    let signed = signer().sign(&checkpoint);
    assert_eq!(verifier.verify(&signed).ok().as_ref(), Some(&checkpoint));

    // A witness may add its own signature line, before or after ours.
    let other = format!("\u{2014} witness.example AAAA{}\n", "A".repeat(84));
    let (body, ours) = signed.split_once("\n\n").expect("a blank line");
    let cosigned = format!("{body}\n\n{other}{ours}");
    assert_eq!(verifier.verify(&cosigned).ok().as_ref(), Some(&checkpoint));
    assert_eq!(
        verifier.verify(&format!("{signed}{other}")).ok().as_ref(),
        Some(&checkpoint)
    );

    let changed = Checkpoint {
        size: checkpoint.size.wrapping_add(1),
        ..checkpoint.clone()
    };
    let forged = signed.replacen(&checkpoint.body(), &changed.body(), 1);
    assert!(verifier.verify(&forged).is_err(), "a changed size verifies");
    assert!(impostor().verifier().verify(&signed).is_err());
    assert!(verifier.verify(&impostor().sign(&checkpoint)).is_err());
}
