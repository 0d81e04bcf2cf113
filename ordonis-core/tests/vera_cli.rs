//! The notary and the offline `vera` command: a 64-entry log exported, then tampered with
//! every way the issue lists.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "data/vera/support.rs"]
mod support;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use ordonis_core::WorkspaceId;
use ordonis_core::ledger::LedgerEntry;
use ordonis_core::vera::export::{ExportWriter, format_proof};
use ordonis_core::vera::{
    CheckpointSigner, ExportCheck, Notary, TrustedKeys, VeraError, log_name, verify_export,
};
use support::{MemLedger, Rng, at, draft, ws};

const N: usize = 64;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vera-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[11; 32])
}

fn write_trust(dir: &Path, w: &WorkspaceId) -> PathBuf {
    let path = dir.join("trusted.vkeys");
    let keys: Vec<String> = signer()
        .verifier_keys(&log_name(w))
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    std::fs::write(&path, keys.join("\n") + "\n").unwrap();
    path
}

/// A ledger holding a log of `n` entries of workspace `acme`, built from seed `seed`.
fn ledger(n: usize, seed: u64) -> (MemLedger, WorkspaceId) {
    let w = ws("acme");
    let l = MemLedger::default();
    let mut rng = Rng(seed);
    for _ in 0..n {
        l.append(draft(&mut rng, &w));
    }
    (l, w)
}

fn vera(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vera"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap(), text)
}

/// Line byte ranges of the entries (excluding the header line and newlines).
fn entry_ranges(entries: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in entries.iter().enumerate() {
        if b == b'\n' {
            out.push((start, i));
            start = i + 1;
        }
    }
    out.remove(0); // header
    out
}

#[test]
fn export_verifies_and_every_single_byte_mutation_names_its_entry() {
    let (l, w) = ledger(N, 1);
    let signer = signer();
    let export = block_on(Notary::new(&l, &signer).export(&w)).unwrap();
    assert_eq!(export.checkpoint.checkpoint.size, N as u64);
    let dir = scratch("mutations");
    export.write_dir(&dir).unwrap();
    let trust = write_trust(&dir, &w);
    let (code, out) = vera(&[&"verify", &dir, &"--trust", &trust]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = vera(&[&"verify", &dir, &"--trust", &trust, &"--strict"]);
    assert_eq!(code, 0, "{out}");

    let entries = std::fs::read(dir.join("entries")).unwrap();
    let cp = TrustedKeys::parse(&std::fs::read_to_string(&trust).unwrap())
        .unwrap()
        .verify(&export.checkpoint.note)
        .unwrap();
    let ranges = entry_ranges(&entries);
    assert_eq!(ranges.len(), N);
    // Every byte of every entry line (leaf hash, separator and entry bytes) flipped with
    // mask 0x01, and with masks 0x80 and 0xff at every 16th byte: through the library
    // function the command runs. Two threads (debug builds hash slowly).
    let sweep = |part: usize| {
        let mut mutated = entries.clone();
        let mut count = 0u64;
        for (idx, &(start, end)) in ranges.iter().enumerate().filter(|(i, _)| i % 2 == part) {
            for pos in start..end {
                let masks: &[u8] = if pos % 16 == 0 {
                    &[0x01, 0x80, 0xff]
                } else {
                    &[0x01]
                };
                for &mask in masks {
                    mutated[pos] ^= mask;
                    let r = verify_export(Cursor::new(&mutated), &cp, &ExportCheck::default());
                    match r {
                        Err(VeraError::Tampered { index, .. }) => {
                            assert_eq!(index, idx as u64, "byte {pos} mask {mask:#x}");
                        }
                        other => panic!("byte {pos} of entry {idx} mask {mask:#x}: {other:?}"),
                    }
                    mutated[pos] ^= mask;
                    count += 1;
                }
            }
        }
        count
    };
    let count = std::thread::scope(|s| {
        let a = s.spawn(|| sweep(0));
        let b = s.spawn(|| sweep(1));
        a.join().unwrap() + b.join().unwrap()
    });
    let bytes: usize = ranges.iter().map(|(s, e)| e - s).sum();
    assert!(count as usize >= bytes, "{count}");
    // And through the binary: one mutated byte per entry, at varying offsets.
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::copy(dir.join("checkpoint"), bad.join("checkpoint")).unwrap();
    for (idx, &(start, end)) in ranges.iter().enumerate() {
        let pos = start + 45 + (idx * 37) % (end - start - 45);
        let mut m = entries.clone();
        m[pos] ^= 0x20;
        std::fs::write(bad.join("entries"), &m).unwrap();
        let (code, out) = vera(&[&"verify", &bad, &"--trust", &trust]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&format!("index={idx}\n")), "{out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes an `entries` file from lines (leaf hash recomputed, as a careful forger would).
fn entries_file(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut w = ExportWriter::new(Vec::new()).unwrap();
    for l in lines {
        w.push(l).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn structural_tampering_is_detected() {
    let (l, w) = ledger(N, 2);
    let signer = signer();
    let export = block_on(Notary::new(&l, &signer).export(&w)).unwrap();
    let cp = export.checkpoint.checkpoint.clone();
    let e = &export.entries;
    let check = |lines: Vec<Vec<u8>>| {
        verify_export(
            Cursor::new(entries_file(&lines)),
            &cp,
            &ExportCheck::default(),
        )
    };
    assert!(check(e.clone()).is_ok());
    let forged = LedgerEntry::seal(draft(&mut Rng(77), &w), 0, at(0));
    let mut kinds = 0;
    for i in 0..N {
        let tampered_at = |r: Result<_, VeraError>| match r {
            Err(VeraError::Tampered { index, .. }) => Some(index),
            Err(VeraError::RootMismatch { .. }) => None,
            other => panic!("{other:?}"),
        };
        // Delete entry i.
        let mut d = e.clone();
        d.remove(i);
        assert_eq!(tampered_at(check(d)), Some(i as u64), "delete {i}");
        // Swap i and i+1.
        if i + 1 < N {
            let mut d = e.clone();
            d.swap(i, i + 1);
            assert_eq!(tampered_at(check(d)), Some(i as u64), "swap {i}");
        }
        // Truncate to i.
        let d = e[..i].to_vec();
        assert_eq!(tampered_at(check(d)), Some(i as u64), "truncate {i}");
        // Duplicate entry i right after itself.
        let mut d = e.clone();
        d.insert(i + 1, e[i].clone());
        assert_eq!(tampered_at(check(d)), Some(i as u64 + 1), "duplicate {i}");
        // Insert a forged entry at i, with the right idx for its position.
        let mut f = forged.record.clone();
        f.rule = format!("forged {i}");
        let f = LedgerEntry::seal(f, i as u64, at(0));
        let mut d = e.clone();
        d.insert(i, f.bytes.clone());
        assert!(check(d).is_err(), "insert {i}");
        // Replace entry i with a validly hashed different entry (same idx): only the root
        // can tell.
        let mut d = e.clone();
        d[i] = f.bytes;
        assert!(
            matches!(check(d), Err(VeraError::RootMismatch { .. })),
            "replace {i}"
        );
        kinds += 6;
    }
    // Append past the checkpoint.
    let mut d = e.clone();
    d.push(LedgerEntry::seal(forged.record.clone(), N as u64, at(0)).bytes);
    assert!(matches!(check(d), Err(VeraError::Tampered { index, .. }) if index == N as u64));
    // An entry of another workspace's log.
    let other = LedgerEntry::seal(draft(&mut Rng(5), &ws("other")), 3, at(0));
    let mut d = e.clone();
    d[3] = other.bytes;
    assert!(matches!(
        check(d),
        Err(VeraError::Tampered { index: 3, .. })
    ));
    assert!(kinds >= 6 * 63);

    // The same classes through the binary, at a few positions.
    let dir = scratch("structural");
    export.write_dir(&dir).unwrap();
    let trust = write_trust(&dir, &w);
    for (name, lines, idx) in [
        ("delete", [&e[..10], &e[11..]].concat(), "10"),
        (
            "swap",
            [&e[..20], &e[21..22], &e[20..21], &e[22..]].concat(),
            "20",
        ),
        ("truncate", e[..50].to_vec(), "50"),
        ("duplicate", [&e[..33], &e[32..]].concat(), "33"),
        ("append", [&e[..], &e[63..]].concat(), "64"),
    ] {
        std::fs::write(dir.join("entries"), entries_file(&lines)).unwrap();
        let (code, out) = vera(&[&"verify", &dir, &"--trust", &trust]);
        assert_eq!(code, 1, "{name}: {out}");
        assert!(out.contains(&format!("index={idx}\n")), "{name}: {out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn forks_rollbacks_and_consistency() {
    let signer = signer();
    // The real log: a checkpoint at 32, then one at 64.
    let (l, w) = ledger(32, 3);
    let notary = Notary::new(&l, &signer);
    let cp32 = block_on(notary.checkpoint(&w)).unwrap();
    let mut rng = Rng(33);
    for _ in 32..N {
        l.append(draft(&mut rng, &w));
    }
    let real = block_on(notary.export(&w)).unwrap();
    let proof = block_on(notary.consistency_proof(&w, 32, 64)).unwrap();
    assert_eq!(l.checkpoints(&w).len(), 2);
    // A fork: the same first 31 entries, then a different history, signed by the same key.
    let (fl, _) = ledger(31, 3);
    let mut rng = Rng(999);
    for _ in 31..N {
        fl.append(draft(&mut rng, &w));
    }
    let fork_notary = Notary::new(&fl, &signer);
    let fork = block_on(fork_notary.export(&w)).unwrap();
    let fork_proof = block_on(fork_notary.consistency_proof(&w, 32, 64)).unwrap();
    // A rollback: the log cut back to 40 entries and re-signed.
    let (rl, _) = ledger(32, 3);
    let mut rng = Rng(33);
    for _ in 32..40 {
        rl.append(draft(&mut rng, &w));
    }
    let rollback = block_on(Notary::new(&rl, &signer).export(&w)).unwrap();

    let dir = scratch("forks");
    let trust = write_trust(&dir, &w);
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cp32 = file("cp32.note", &cp32.note);
    let cp64 = file("cp64.note", &real.checkpoint.note);
    let fork64 = file("fork64.note", &fork.checkpoint.note);
    let proof_ok = file("proof.txt", &format_proof(&proof));
    let proof_fork = file("fork-proof.txt", &format_proof(&fork_proof));
    real.write_dir(&dir.join("real")).unwrap();
    fork.write_dir(&dir.join("fork")).unwrap();
    rollback.write_dir(&dir.join("rollback")).unwrap();

    let run = |args: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut a: Vec<&dyn AsRef<std::ffi::OsStr>> = args.to_vec();
        a.push(&"--trust");
        a.push(&trust);
        vera(&a)
    };
    // Consistent.
    assert_eq!(
        run(&[&"consistency", &cp32, &cp64, &"--proof", &proof_ok]).0,
        0
    );
    assert_eq!(
        run(&[&"consistency", &cp64, &cp32, &"--proof", &proof_ok]).0,
        0
    );
    assert_eq!(run(&[&"consistency", &cp64, &cp64]).0, 0);
    assert_eq!(run(&[&"verify", &dir.join("real"), &"--since", &cp32]).0, 0);
    // The fork verifies on its own (it is validly signed) ...
    assert_eq!(run(&[&"verify", &dir.join("fork")]).0, 0);
    // ... but not against an older checkpoint of the real log, nor with it.
    let (code, out) = run(&[&"verify", &dir.join("fork"), &"--since", &cp32]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = run(&[&"consistency", &cp32, &fork64, &"--proof", &proof_fork]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = run(&[&"consistency", &cp32, &fork64, &"--proof", &proof_ok]);
    assert_eq!(code, 2, "{out}");
    let (code, out) = run(&[&"consistency", &cp64, &fork64]);
    assert_eq!(code, 2, "same size, different roots: {out}");
    // Rolled back and re-signed: caught by whoever holds the size-64 checkpoint.
    assert_eq!(run(&[&"verify", &dir.join("rollback")]).0, 0);
    let (code, out) = run(&[&"verify", &dir.join("rollback"), &"--since", &cp64]);
    assert_eq!(code, 2, "{out}");
    // Sizes differ and no proof: a usage error.
    assert_eq!(run(&[&"consistency", &cp32, &cp64]).0, 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_signatures_exit_3() {
    let (l, w) = ledger(16, 4);
    let signer = signer();
    let export = block_on(Notary::new(&l, &signer).export(&w)).unwrap();
    let dir = scratch("signatures");
    export.write_dir(&dir).unwrap();
    let trust = write_trust(&dir, &w);
    let note = export.checkpoint.note.clone();
    // A changed root, size or origin line; a changed signature byte.
    let root_line = note.lines().nth(2).unwrap();
    let sig_at = note.rfind(' ').unwrap() + 10;
    let mut sig_mut = note.clone().into_bytes();
    sig_mut[sig_at] = if sig_mut[sig_at] == b'A' { b'B' } else { b'A' };
    for (name, bad) in [
        (
            "root",
            note.replacen(root_line, &root_line.replace(&root_line[..2], "AA"), 1),
        ),
        ("size", note.replacen("\n16\n", "\n17\n", 1)),
        (
            "origin",
            note.replacen("ordonis/ws/acme", "ordonis/ws/acm3", 1),
        ),
        ("signature", String::from_utf8(sig_mut).unwrap()),
        (
            "unsigned",
            note[..note.find("\n\n").unwrap() + 2].to_owned(),
        ),
    ] {
        assert_ne!(bad, note, "{name}");
        std::fs::write(dir.join("checkpoint"), &bad).unwrap();
        let (code, out) = vera(&[&"verify", &dir, &"--trust", &trust]);
        assert_eq!(code, 3, "{name}: {out}");
    }
    // Not UTF-8.
    std::fs::write(dir.join("checkpoint"), b"ordonis/ws/acme\n\xff\n").unwrap();
    assert_eq!(vera(&[&"verify", &dir, &"--trust", &trust]).0, 3);
    // A checkpoint signed by a key nobody trusts.
    std::fs::write(
        dir.join("checkpoint"),
        CheckpointSigner::from_seed(&[99; 32])
            .sign(&export.checkpoint.checkpoint)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(vera(&[&"verify", &dir, &"--trust", &trust]).0, 3);
    // Usage errors.
    assert_eq!(vera(&[]).0, 4);
    assert_eq!(vera(&[&"verify", &dir]).0, 4);
    assert_eq!(
        vera(&[&"verify", &dir.join("missing"), &"--trust", &trust]).0,
        4
    );
    assert_eq!(vera(&[&"frobnicate"]).0, 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn receipts_verify_offline() {
    let (l, w) = ledger(N, 5);
    let signer = signer();
    let notary = Notary::new(&l, &signer);
    let dir = scratch("receipts");
    let trust = write_trust(&dir, &w);
    for idx in [0u64, 1, 31, 32, 63] {
        let (entry, receipt) = block_on(notary.receipt(&w, idx)).unwrap();
        assert!(receipt.proof.len() <= 6);
        let e = dir.join(format!("entry-{idx}.json"));
        let r = dir.join(format!("entry-{idx}.tlog-proof"));
        std::fs::write(&e, &entry).unwrap();
        let text = receipt.to_text();
        std::fs::write(&r, &text).unwrap();
        let (code, out) = vera(&[&"verify-receipt", &e, &r, &"--trust", &trust]);
        assert_eq!(code, 0, "{out}");
        // A changed entry byte.
        let mut m = entry.clone();
        m[entry.len() / 2] ^= 1;
        std::fs::write(&e, &m).unwrap();
        let (code, out) = vera(&[&"verify-receipt", &e, &r, &"--trust", &trust]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&format!("index={idx}\n")), "{out}");
        std::fs::write(&e, &entry).unwrap();
        // A changed proof hash, a changed index: 1. A changed checkpoint: 3.
        let hash_line = text.lines().nth(2).unwrap();
        let flipped = if hash_line.starts_with('A') { "B" } else { "A" };
        for (bad, want) in [
            (
                text.replacen(hash_line, &(flipped.to_owned() + &hash_line[1..]), 1),
                1,
            ),
            (
                text.replacen(
                    &format!("index {idx}\n"),
                    &format!("index {}\n", idx + 1),
                    1,
                ),
                1,
            ),
            (text.replacen("\n64\n", "\n65\n", 1), 3),
        ] {
            std::fs::write(&r, &bad).unwrap();
            let (code, out) = vera(&[&"verify-receipt", &e, &r, &"--trust", &trust]);
            assert_eq!(code, want, "{out}");
        }
    }
    // Library-level: every byte of one receipt.
    let (entry, receipt) = block_on(notary.receipt(&w, 17)).unwrap();
    let keys = TrustedKeys::parse(&std::fs::read_to_string(&trust).unwrap()).unwrap();
    let text = receipt.to_text();
    for i in 0..text.len() {
        let mut b = text.clone().into_bytes();
        b[i] ^= 1;
        let Ok(s) = String::from_utf8(b) else {
            continue;
        };
        let r = ordonis_core::vera::Receipt::parse(&s).and_then(|r| r.verify(&entry, &keys));
        let err = r.expect_err("mutated receipt accepted");
        assert!(matches!(err.exit_code(), 1 | 3), "byte {i}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn notary_refuses_to_sign_a_rewritten_or_shrunk_log() {
    let (l, w) = ledger(20, 6);
    let signer = signer();
    let notary = Notary::new(&l, &signer);
    let first = block_on(notary.checkpoint(&w)).unwrap();
    // No growth: the same checkpoint, nothing new stored.
    assert_eq!(block_on(notary.checkpoint(&w)).unwrap(), first);
    assert_eq!(l.checkpoints(&w).len(), 1);
    // An entry rewritten in the store (validly sealed, same index).
    let mut d = draft(&mut Rng(1234), &w);
    d.rule = "rewritten".into();
    l.overwrite(&w, 7, LedgerEntry::seal(d, 7, at(0)));
    let err = block_on(notary.checkpoint(&w)).unwrap_err();
    assert!(matches!(err, VeraError::Integrity(_)), "{err}");
    // A stored entry whose bytes no longer match its leaf hash.
    let (l, w) = ledger(20, 6);
    let notary = Notary::new(&l, &signer);
    let mut e = block_on(ordonis_core::Ledger::ledger_entries(&l, &w, 3, 1)).unwrap()[0].clone();
    e.bytes[40] ^= 1;
    l.overwrite(&w, 3, e);
    assert!(matches!(
        block_on(notary.checkpoint(&w)),
        Err(VeraError::Integrity(_))
    ));
    // Entries lost after a checkpoint.
    let (l, w) = ledger(20, 6);
    let notary = Notary::new(&l, &signer);
    block_on(notary.checkpoint(&w)).unwrap();
    l.truncate(&w, 15);
    assert!(matches!(
        block_on(notary.checkpoint(&w)),
        Err(VeraError::Integrity(_))
    ));
    // Empty log: a checkpoint of size 0 with the empty root.
    let empty = ws("empty");
    let cp = block_on(notary.checkpoint(&empty)).unwrap();
    assert_eq!(cp.checkpoint.size, 0);
    assert_eq!(cp.checkpoint.root, ordonis_core::vera::EMPTY_ROOT);
}

#[test]
fn help_and_version_succeed_and_usage_errors_exit_4() {
    let (code, out) = vera(&[&"--version"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(&format!("vera {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    let (code, out) = vera(&[&"--help"]);
    assert_eq!(code, 0, "{out}");
    for sub in ["verify", "verify-receipt", "consistency", "exit codes:"] {
        assert!(out.contains(sub), "{sub}: {out}");
    }
    let (code, out) = vera(&[&"verify", &"--help"]);
    assert_eq!(code, 0, "{out}");
    for flag in ["--trust", "--checkpoint", "--since", "--strict"] {
        assert!(out.contains(flag), "{flag}: {out}");
    }
    let (code, out) = vera(&[&"help", &"consistency"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("--proof"), "{out}");
    // Usage errors: an unknown flag, a missing value, a missing or extra positional.
    for args in [
        &[
            &"verify" as &dyn AsRef<std::ffi::OsStr>,
            &"dir",
            &"--trust",
            &"k",
            &"--frob",
        ][..],
        &[&"verify", &"dir", &"--trust"],
        &[&"verify-receipt", &"entry", &"--trust", &"k"],
        &[&"consistency", &"a", &"b", &"c", &"--trust", &"k"],
        &[&"verify", &"--help-me"],
    ] {
        let (code, out) = vera(args);
        assert_eq!(code, 4, "{out}");
        assert!(out.starts_with("error: "), "{out}");
    }
}

/// `vera verify` reads the server's export JSON (`GET /api/ledger/{ws}/export`) as saved,
/// checking it against keys pinned separately; the keys inside the export are not trusted.
#[test]
fn the_servers_export_json_verifies_directly() {
    let (l, w) = ledger(8, 3);
    let signer = signer();
    let export = block_on(Notary::new(&l, &signer).export(&w)).unwrap();
    let dir = scratch("json");
    export.write_dir(&dir).unwrap();
    let trust = write_trust(&dir, &w);
    let entries = std::fs::read_to_string(dir.join("entries")).unwrap();
    let json = |entries: &str, keys: &str| {
        serde_json::json!({
            "log": log_name(&w),
            "size": 8,
            "checkpoint": export.checkpoint.note,
            "entries": entries,
            "verifier_keys": keys,
        })
        .to_string()
    };
    let file = dir.join("export.json");
    std::fs::write(&file, json(&entries, "")).unwrap();
    let (code, out) = vera(&[&"verify", &file, &"--trust", &trust]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok: 8 entries verified"), "{out}");
    // A tampered entry inside the JSON is found.
    let ranges = entry_ranges(entries.as_bytes());
    let (start, _) = ranges[5];
    let mut bad = entries.clone().into_bytes();
    bad[start + 50] ^= 0x01;
    std::fs::write(&file, json(&String::from_utf8(bad).unwrap(), "")).unwrap();
    let (code, out) = vera(&[&"verify", &file, &"--trust", &trust]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("index=5"), "{out}");
    // Keys inside the export do not make an untrusted checkpoint pass: only --trust counts.
    let other = CheckpointSigner::from_seed(&[12; 32]);
    let (copy, _) = ledger(8, 3);
    let forged = block_on(Notary::new(&copy, &other).export(&w)).unwrap();
    let forged_keys: Vec<String> = other
        .verifier_keys(&log_name(&w))
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    let doc = serde_json::json!({
        "checkpoint": forged.checkpoint.note,
        "entries": entries,
        "verifier_keys": forged_keys.join("\n"),
    });
    std::fs::write(&file, doc.to_string()).unwrap();
    let (code, out) = vera(&[&"verify", &file, &"--trust", &trust]);
    assert_eq!(code, 3, "{out}");
    // Not JSON at all: a usage error naming the endpoint.
    std::fs::write(&file, "not json").unwrap();
    let (code, out) = vera(&[&"verify", &file, &"--trust", &trust]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("/api/ledger/"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Serves fixed files over HTTP/1.1 (one request per connection) on a thread: a tiled log
/// as static files, which is what tlog-tiles is.
fn serve_files(files: std::collections::HashMap<String, Vec<u8>>) -> String {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let path = line.split(' ').nth(1).unwrap_or("").to_owned();
            // The headers, up to the empty line.
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let (status, body) = match files.get(&path) {
                Some(b) => ("200 OK", b.clone()),
                None => ("404 Not Found", Vec::new()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}/log")
}

#[test]
fn tiles_checks_a_tiled_log_over_http_and_names_a_changed_tile() {
    use ordonis_core::vera::TileReader;
    use ordonis_core::vera::tiles::{entry_bundles, hash_tiles};
    let (l, w) = ledger(300, 7);
    let signer = signer();
    let cp = block_on(Notary::new(&l, &signer).checkpoint(&w)).unwrap();
    let mut files = std::collections::HashMap::new();
    files.insert("/log/checkpoint".to_owned(), cp.note.clone().into_bytes());
    let reader = TileReader::new(&l, &w);
    for t in hash_tiles(300).into_iter().chain(entry_bundles(300)) {
        let bytes = block_on(reader.read(&t, 300)).unwrap().unwrap();
        files.insert(format!("/log/{}", t.path()), bytes);
    }
    let dir = scratch("tiles");
    let trust = write_trust(&dir, &w);
    let url = serve_files(files.clone());
    let (code, out) = vera(&[&"tiles", &"--url", &url, &"--trust", &trust, &"--entries"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("3 hash tiles") && out.contains("300 entries"),
        "{out}"
    );

    // One bit of the full level-0 tile: its root is no longer level 1's hash.
    let mut bad = files.clone();
    bad.get_mut("/log/tile/0/000").unwrap()[7] ^= 1;
    let (code, out) = vera(&[&"tiles", &"--url", &serve_files(bad), &"--trust", &trust]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED tile=tile/0/000"), "{out}");
    // One bit of an entry: its leaf hash is not level 0's.
    let mut bad = files.clone();
    bad.get_mut("/log/tile/entries/001.p/44").unwrap()[30] ^= 1;
    let url = serve_files(bad);
    let (code, out) = vera(&[&"tiles", &"--url", &url, &"--trust", &trust, &"--entries"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED index=256"), "{out}");
    // A witness the checkpoint was not cosigned by.
    let witness = ordonis_core::vera::WitnessKey::new(
        "witness.example.org/w1",
        ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key(),
    )
    .unwrap()
    .to_string();
    let url = serve_files(files);
    let (code, out) = vera(&[
        &"tiles",
        &"--url",
        &url,
        &"--trust",
        &trust,
        &"--witness",
        &witness,
    ]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("no cosignature by witness"), "{out}");
}
