//! Signed notes and checkpoints: the C2SP / Go known answers, rotation, unknown keys, forged
//! signatures, every byte of a note.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use ordonis_core::vera::note::{VerifierKey, open_note, signature_line};
use ordonis_core::vera::{Checkpoint, CheckpointSigner, TrustedKeys, VeraError, check_consistency};

const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                          then you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const FOO_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const FOO_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

fn seed(n: u8) -> [u8; 32] {
    [n; 32]
}

#[test]
fn go_and_c2sp_known_answers() {
    let peter = VerifierKey::parse(PETER_VKEY).unwrap();
    assert_eq!(peter.to_string(), PETER_VKEY);
    let note = format!("{PETER_TEXT}\n{PETER_SIG}");
    let (text, by) = open_note(&note, std::slice::from_ref(&peter)).unwrap();
    assert_eq!(text, PETER_TEXT);
    assert_eq!(by.len(), 1);
    // Ed25519 is deterministic: signing the text with the Go test key reproduces the note.
    let raw = B64
        .decode(
            PETER_SKEY
                .strip_prefix("PRIVATE+KEY+PeterNeumann+c74f20a3+")
                .unwrap(),
        )
        .unwrap();
    let key = SigningKey::from_bytes(&raw[1..].try_into().unwrap());
    assert_eq!(signature_line("PeterNeumann", &key, PETER_TEXT), PETER_SIG);
    // One changed character fails.
    let edited = note.replace("cryptography", "cryptographY");
    assert!(matches!(
        open_note(&edited, std::slice::from_ref(&peter)),
        Err(VeraError::BadSignature { .. })
    ));
    let foo = VerifierKey::parse(FOO_VKEY).unwrap();
    let (text, _) = open_note(FOO_NOTE, std::slice::from_ref(&foo)).unwrap();
    assert_eq!(text, "This is an example message.\n");
    for i in 0..FOO_NOTE.len() {
        let mut b = FOO_NOTE.as_bytes().to_vec();
        b[i] ^= 0x01;
        if let Ok(s) = String::from_utf8(b) {
            assert!(
                open_note(&s, std::slice::from_ref(&foo)).is_err(),
                "byte {i}"
            );
        }
    }
    // Verifier keys with a wrong id or type are refused.
    assert!(VerifierKey::parse(&PETER_VKEY.replace("c74f20a3", "c74f20a4")).is_err());
    assert!(VerifierKey::parse("PeterNeumann+c74f20a3").is_err());
}

fn cp(size: u64, fill: u8) -> Checkpoint {
    Checkpoint {
        origin: "ordonis/ws/acme".into(),
        size,
        root: [fill; 32],
    }
}

#[test]
fn checkpoint_text_round_trips() {
    let c = cp(1_048_576, 7);
    let text = c.to_text();
    assert_eq!(
        text,
        format!("ordonis/ws/acme\n1048576\n{}\n", B64.encode([7u8; 32]))
    );
    assert_eq!(Checkpoint::parse_text(&text).unwrap(), c);
    for bad in [
        "ordonis/ws/acme\n01\nAAAA\n",
        "ordonis/ws/acme\n1\n",
        "\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        "ordonis/ws/acme\n-1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
        "ordonis/ws/acme\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
    ] {
        assert!(Checkpoint::parse_text(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn sign_and_verify_with_rotation_overlap() {
    let origin = "ordonis/ws/acme";
    let k1 = CheckpointSigner::from_seed(&seed(1));
    let k2 = CheckpointSigner::from_seed(&seed(2));
    let both = CheckpointSigner::from_seed(&seed(1)).with_seed(&seed(2));
    let c = cp(10, 3);
    let note = both.sign(&c).unwrap();
    assert_eq!(note.matches('\u{2014}').count(), 2);
    // Either key alone verifies the overlap checkpoints.
    assert_eq!(k1.trusted_keys(origin).unwrap().verify(&note).unwrap(), c);
    assert_eq!(k2.trusted_keys(origin).unwrap().verify(&note).unwrap(), c);
    assert_eq!(both.trusted_keys(origin).unwrap().verify(&note).unwrap(), c);
    // After retiring K1 a verifier that only trusts K1 no longer accepts new checkpoints.
    let mut rotated = CheckpointSigner::from_seed(&seed(1)).with_seed(&seed(2));
    assert!(rotated.retire(0));
    assert!(!rotated.retire(0), "the last key stays");
    let only_k2 = rotated.sign(&c).unwrap();
    assert!(matches!(
        k1.trusted_keys(origin).unwrap().verify(&only_k2),
        Err(VeraError::Untrusted { .. })
    ));
    assert!(k2.trusted_keys(origin).unwrap().verify(&only_k2).is_ok());
    // Trusted-keys files parse with comments.
    let file = format!(
        "# vera keys\n\n{}\n{}\n",
        k1.verifier_keys(origin).unwrap()[0],
        k2.verifier_keys(origin).unwrap()[0]
    );
    let t = TrustedKeys::parse(&file).unwrap();
    assert_eq!(t.keys().len(), 2);
    assert!(t.verify(&only_k2).is_ok());
}

#[test]
fn unknown_keys_are_ignored_and_failing_known_keys_reject() {
    let origin = "ordonis/ws/acme";
    let k1 = CheckpointSigner::from_seed(&seed(1));
    let c = cp(5, 9);
    let note = k1.sign(&c).unwrap();
    // A witness line from an unknown key is ignored.
    let stranger = SigningKey::from_bytes(&seed(9));
    let with_witness = note.clone() + &signature_line("witness.example", &stranger, &c.to_text());
    assert!(
        k1.trusted_keys(origin)
            .unwrap()
            .verify(&with_witness)
            .is_ok()
    );
    // A trusted key's signature that does not verify rejects the note even though another
    // trusted signature verifies.
    let k2 = SigningKey::from_bytes(&seed(2));
    let forged = signature_line(origin, &k2, "something else\n");
    let mut t = k1.trusted_keys(origin).unwrap();
    t.push(VerifierKey::new(origin, k2.verifying_key()).unwrap());
    assert!(t.verify(&note).is_ok());
    assert!(matches!(
        t.verify(&(note.clone() + &forged)),
        Err(VeraError::BadSignature { .. })
    ));
    // A duplicated trusted signature line rejects too.
    let line = note.lines().last().unwrap().to_owned() + "\n";
    assert!(t.verify(&(note.clone() + &line)).is_err());
    // A key is bound to its name: the same key under another log's name is not trusted.
    let other = k1.trusted_keys("ordonis/ws/other").unwrap();
    assert!(matches!(
        other.verify(&note),
        Err(VeraError::Untrusted { .. })
    ));
    // A checkpoint re-labelled for another workspace fails.
    let moved = note.replacen("ordonis/ws/acme\n", "ordonis/ws/evil\n", 1);
    let evil = k1.trusted_keys("ordonis/ws/evil").unwrap();
    assert!(evil.verify(&moved).is_err());
}

#[test]
fn every_byte_of_a_signed_checkpoint_is_covered() {
    let origin = "ordonis/ws/acme";
    // One key: every byte. Two keys (rotation overlap): every byte of the signed text (a
    // mutated signature line may turn into an unknown key's line, which is ignored while the
    // other key's signature still verifies).
    for both in [false, true] {
        let mut signer = CheckpointSigner::from_seed(&seed(1));
        if both {
            signer = signer.with_seed(&seed(2));
        }
        let trusted = signer.trusted_keys(origin).unwrap();
        let note = signer.sign(&cp(64, 5)).unwrap();
        let text_len = cp(64, 5).to_text().len() + 1;
        let mut checked = 0;
        for i in 0..if both { text_len } else { note.len() } {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut b = note.as_bytes().to_vec();
                b[i] ^= mask;
                let Ok(s) = String::from_utf8(b) else {
                    continue; // the `vera` command reports non-UTF-8 notes as malformed (exit 3)
                };
                let err = trusted.verify(&s).expect_err("mutated note accepted");
                assert_eq!(err.exit_code(), 3, "byte {i} mask {mask:#x}: {err}");
                checked += 1;
            }
        }
        assert!(checked >= text_len);
    }
}

#[test]
fn consistency_of_two_checkpoints() {
    let a = cp(8, 1);
    let b = cp(8, 2);
    assert!(matches!(
        check_consistency(&a, &b, &[]),
        Err(VeraError::Fork { .. })
    ));
    assert!(check_consistency(&a, &a, &[]).is_ok());
    let mut other = cp(8, 1);
    other.origin = "ordonis/ws/other".into();
    assert!(matches!(
        check_consistency(&a, &other, &[]),
        Err(VeraError::InvalidSizes(_))
    ));
    assert!(matches!(
        check_consistency(&cp(4, 1), &a, &[[0; 32]]),
        Err(VeraError::Fork { .. })
    ));
}
