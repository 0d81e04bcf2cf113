//! VERA for witnesses: a workspace's log served as C2SP tlog-tiles over real HTTP, checked by
//! a small reader written here from the spec text (c2sp.org/tlog-tiles, RFC 6962 §2.1), not
//! by Ordonis's own Merkle code; `vera tiles`'s check on it and on tampered copies; and witness
//! cosignatures (c2sp.org/tlog-cosignature) made here by hand, accepted, served and refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Api, TOKEN};
use ed25519_dalek::{Signer as _, SigningKey};
use ordonis_core::vera::tile_client::{TileCheck, check_log};
use ordonis_core::vera::{TrustedKeys, VeraError, WitnessKey, verify_cosignatures};
use serde_json::json;
use sha2::{Digest, Sha256};

// ---- the independent reader, from the spec text ----

type H = [u8; 32];

fn sha(parts: &[&[u8]]) -> H {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// RFC 6962 §2.1 MTH, by its definition: split at the largest power of two below n.
fn mth(d: &[H]) -> H {
    match d.len() {
        0 => sha(&[]),
        1 => d[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            sha(&[&[1], &mth(&d[..k]), &mth(&d[k..])])
        }
    }
}

/// tlog-tiles: "zero-padded 3-digit path elements. All but the last path element MUST begin
/// with an x": 1234067 → x001/x234/067.
fn encode(n: u64) -> String {
    let s = format!("{n}");
    let pad = s.len().div_ceil(3) * 3;
    let s = format!("{s:0>pad$}");
    let groups: Vec<&str> = (0..s.len() / 3).map(|i| &s[i * 3..i * 3 + 3]).collect();
    let last = groups.len() - 1;
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            if i < last {
                format!("x{g}")
            } else {
                (*g).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn hashes(bytes: &[u8]) -> Vec<H> {
    assert_eq!(bytes.len() % 32, 0);
    bytes.chunks(32).map(|c| c.try_into().unwrap()).collect()
}

/// "sequences of big-endian uint16 length-prefixed log entries".
fn bundle(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let len = usize::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
        out.push(bytes[i + 2..i + 2 + len].to_vec());
        i += 2 + len;
    }
    out
}

// ---- helpers ----

async fn fill(api: &Api, ws: &str, at_least: u64) -> u64 {
    let mut size = 0;
    let mut i = 0;
    while size < at_least {
        let (s, v) = api
            .post(
                "/api/tasks",
                &json!({"workspace_id": ws, "actor": {"kind": "human", "id": "usr_1"},
                        "fields": {"title": format!("task {i} of {ws}")}}),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        size += v["ledger_entries"].as_u64().unwrap();
        i += 1;
    }
    size
}

async fn public(
    api: &Api,
    path: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut r = api.http.get(api.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.bytes().await.unwrap().to_vec())
}

fn header<'h>(h: &'h reqwest::header::HeaderMap, name: &str) -> &'h str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Serves fixed files over HTTP: a copy of a tiled log that the test tampers with.
async fn static_log(files: HashMap<String, Vec<u8>>) -> String {
    let files = Arc::new(files);
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let files = files.clone();
        async move {
            match files.get(uri.path()) {
                Some(b) => (axum::http::StatusCode::OK, b.clone()),
                None => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/log")
}

#[tokio::test]
async fn a_log_of_300_entries_is_served_as_tlog_tiles() {
    served_as_tiles(common::start_on("tiles", |_| {}).await).await;
}

#[tokio::test]
async fn a_log_of_300_entries_is_served_as_tlog_tiles_on_memory() {
    served_as_tiles(common::start_on("memory", |_| {}).await).await;
}

#[tokio::test]
async fn a_log_of_300_entries_is_served_as_tlog_tiles_on_postgres() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let server = ordonis_server::Server::start(&ordonis_server::Config::for_tests(url))
        .await
        .unwrap();
    served_as_tiles(server).await;
    common::drop_pg(&name).await;
}

/// A log of more than 256 entries (one full level-0 tile, a partial one, level 1) and
/// another workspace's, over real HTTP: (a) the tiles the spec names, and only those; (b) the
/// root from the tiles by the RFC's definition; (c) entry bundles against level 0; (d) who
/// reads entries; (e) `vera tiles`'s check, and its refusal of tampered copies.
async fn served_as_tiles(server: ordonis_server::Server) {
    let api = Api::new(&server);
    fill(&api, "acme", 300).await;
    fill(&api, "other", 3).await;
    let (_, keys) = api.get_text("/api/ledger/acme/keys").await;
    let trusted = TrustedKeys::parse(&keys).unwrap();

    // The checkpoint: public, text, cached a few seconds at most.
    let (s, h, note) = public(&api, "/vera/acme/checkpoint", None).await;
    assert_eq!(s, 200);
    assert_eq!(header(&h, "content-type"), "text/plain; charset=utf-8");
    assert!(!header(&h, "cache-control").contains("immutable"));
    let note = String::from_utf8(note).unwrap();
    let cp = trusted.verify(&note).unwrap();
    let size = cp.size;
    assert!(size > 256 && size < 512, "{size}");
    let w0 = size - 256;

    // (a) The tiles the spec says a tree of this size has, and nothing else: one full
    // level-0 tile, a partial one of floor(s) mod 256, a partial level 1 of width 1.
    let expected = [
        (format!("tile/0/{}", encode(0)), 256),
        (format!("tile/0/{}.p/{w0}", encode(1)), w0),
        (format!("tile/1/{}.p/1", encode(0)), 1),
    ];
    let mut tiles = HashMap::new();
    for (path, width) in &expected {
        let (s, h, body) = public(&api, &format!("/vera/acme/{path}"), None).await;
        assert_eq!(s, 200, "{path}");
        assert_eq!(header(&h, "content-type"), "application/octet-stream");
        assert!(header(&h, "cache-control").contains("immutable"), "{path}");
        assert_eq!(body.len() as u64, 32 * width, "{path}");
        tiles.insert(path.clone(), body);
    }
    for path in [
        "tile/0/001".to_owned(),            // the full tile does not exist yet
        format!("tile/0/001.p/{}", w0 + 1), // wider than the tree
        "tile/1/000".to_owned(),
        "tile/2/000.p/1".to_owned(), // no level 2 below 65,536 entries
        "tile/0/002.p/1".to_owned(),
        "tile/0/x000/001.p/1".to_owned(), // not the canonical encoding of 1
        "tile/0/1.p/1".to_owned(),
        "tile/0/000.p/0".to_owned(), // widths are 1..255
        "tile/0/000.p/256".to_owned(),
        "tile/00/000".to_owned(), // levels have no leading zeros
        "tile/64/000.p/1".to_owned(),
        format!("tile/0/{}", encode(1_234_067)),
    ] {
        let (s, _, _) = public(&api, &format!("/vera/acme/{path}"), None).await;
        assert_eq!(s, 404, "{path}");
    }
    // A partial tile of a smaller tree is the prefix of the larger one's.
    let (s, _, small) = public(&api, "/vera/acme/tile/0/001.p/1", None).await;
    assert_eq!(s, 200);
    assert_eq!(small, tiles[&expected[1].0][..32]);

    // The listing of the served log (for the closing note).
    for path in ["checkpoint".to_owned()]
        .into_iter()
        .chain(expected.iter().map(|(p, _)| p.clone()))
        .chain([
            "tile/entries/000".to_owned(),
            format!("tile/entries/001.p/{w0}"),
        ])
    {
        println!("served: /vera/acme/{path}");
    }

    // (b) The root from the tiles, by the RFC's definition.
    let level0: Vec<H> = [
        hashes(&tiles[&expected[0].0]),
        hashes(&tiles[&expected[1].0]),
    ]
    .concat();
    assert_eq!(level0.len() as u64, size);
    assert_eq!(
        mth(&level0),
        cp.root,
        "the tiles do not hash to the checkpoint"
    );
    let level1 = hashes(&tiles[&expected[2].0]);
    assert_eq!(level1, [mth(&level0[..256])]);
    // The upper level came from the store's cache of subtree roots, filled by that read.
    let cached = server
        .state
        .store
        .tile_hashes(&ordonis_core::WorkspaceId::new("acme").unwrap(), 1, 0, 10)
        .await
        .unwrap();
    assert_eq!(cached, [(0, level1[0])]);

    // (c) Entry bundles: each entry hashes (RFC 6962 leaf) to its level-0 hash.
    let (_, acme_token) = api.get_text("/api/ledger/acme/read-token").await;
    let acme_token = acme_token.trim().to_owned();
    let mut bundles = HashMap::new();
    for (path, width) in [
        (format!("tile/entries/{}", encode(0)), 256),
        (format!("tile/entries/{}.p/{w0}", encode(1)), w0),
    ] {
        let (s, h, body) = public(&api, &format!("/vera/acme/{path}"), Some(&acme_token)).await;
        assert_eq!(s, 200, "{path}");
        assert!(header(&h, "cache-control").starts_with("private"), "{path}");
        let entries = bundle(&body);
        assert_eq!(entries.len() as u64, width, "{path}");
        bundles.insert(path, body);
        let base = if width == 256 { 0 } else { 256 };
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(sha(&[&[0], e]), level0[base + i], "entry {}", base + i);
            let v: serde_json::Value = serde_json::from_slice(e).unwrap();
            assert_eq!(v["idx"], base + i);
            assert_eq!(v["log"], "ordonis/ws/acme");
        }
    }

    // (d) Entries need this workspace's read token (or the admin's); another workspace's
    // token reads its own entries and never these, and hash tiles need none.
    let (_, other_token) = api.get_text("/api/ledger/other/read-token").await;
    let other_token = other_token.trim().to_owned();
    assert_ne!(other_token, acme_token);
    let e0 = format!("/vera/acme/tile/entries/{}", encode(0));
    assert_eq!(public(&api, &e0, None).await.0, 401);
    assert_eq!(public(&api, &e0, Some(&other_token)).await.0, 401);
    assert_eq!(public(&api, &e0, Some(TOKEN)).await.0, 200);
    let (_, _, other_note) = public(&api, "/vera/other/checkpoint", None).await;
    let other_size =
        ordonis_core::vera::Checkpoint::parse_unverified(&String::from_utf8(other_note).unwrap())
            .unwrap()
            .size;
    let other_entries = format!("/vera/other/tile/entries/000.p/{other_size}");
    assert_eq!(public(&api, &other_entries, Some(&acme_token)).await.0, 401);
    let (s, _, theirs) = public(&api, &other_entries, Some(&other_token)).await;
    assert_eq!(s, 200);
    assert!(bundle(&theirs).iter().all(|e| {
        serde_json::from_slice::<serde_json::Value>(e).unwrap()["log"] == "ordonis/ws/other"
    }));
    assert_eq!(public(&api, "/vera/nobody/checkpoint", None).await.0, 404);

    // (e) `vera tiles`'s check accepts the served log, with and without its entries...
    let http = reqwest::Client::new();
    let prefix = api.url("/vera/acme");
    let all = TileCheck {
        entries: true,
        token: Some(acme_token.clone()),
        ..TileCheck::default()
    };
    let report = check_log(&http, &prefix, &trusted, &all).await.unwrap();
    assert_eq!((report.tiles, report.entries), (3, Some(size)));
    let no_token = TileCheck {
        entries: true,
        ..TileCheck::default()
    };
    assert!(matches!(
        check_log(&http, &prefix, &trusted, &no_token).await,
        Err(VeraError::Fetch(_))
    ));
    // ... and rejects a copy with one byte changed in any tile or bundle.
    let mut files: HashMap<String, Vec<u8>> = tiles
        .iter()
        .chain(bundles.iter())
        .map(|(p, b)| (format!("/log/{p}"), b.clone()))
        .collect();
    files.insert("/log/checkpoint".into(), note.clone().into_bytes());
    let copy = static_log(files.clone()).await;
    check_log(&http, &copy, &trusted, &all).await.unwrap();
    let hashes_only = TileCheck::default();
    for (path, at, check) in [
        (expected[0].0.clone(), 100, &hashes_only),
        (expected[1].0.clone(), 5, &hashes_only),
        (expected[2].0.clone(), 31, &hashes_only),
        (format!("tile/entries/{}", encode(0)), 40, &all),
    ] {
        let mut bad = files.clone();
        bad.get_mut(&format!("/log/{path}")).unwrap()[at] ^= 1;
        let url = static_log(bad).await;
        let err = check_log(&http, &url, &trusted, check).await.unwrap_err();
        assert!(
            matches!(
                err,
                VeraError::BadTile { .. }
                    | VeraError::RootMismatch { .. }
                    | VeraError::Tampered { .. }
            ),
            "{path}: {err}"
        );
    }
    server.shutdown().await;
}

// ---- witnesses ----

/// A witness's Ed25519 cosigning key, its name and vkey, per tlog-cosignature.
struct Witness {
    name: String,
    key: SigningKey,
}

impl Witness {
    fn new(name: &str, seed: u8) -> Self {
        Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&[seed; 32]),
        }
    }

    /// "SHA-256(<name> || "\n" || 0x04 || 32-byte Ed25519 cosigner public key)[:4]"
    fn key_id(&self) -> [u8; 4] {
        let pk = self.key.verifying_key().to_bytes();
        sha(&[self.name.as_bytes(), b"\n", &[4], &pk])[..4]
            .try_into()
            .unwrap()
    }

    fn vkey(&self) -> String {
        let pk = self.key.verifying_key().to_bytes();
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id()),
            B64.encode([&[4u8][..], &pk].concat())
        )
    }

    /// The signature line over a checkpoint's note text: "cosignature/v1", the time line,
    /// then the note body; key id ‖ big-endian u64 timestamp ‖ signature.
    fn cosign(&self, text: &str, time: u64) -> String {
        let msg = format!("cosignature/v1\ntime {time}\n{text}");
        let sig = self.key.sign(msg.as_bytes()).to_bytes();
        let raw = [&self.key_id()[..], &time.to_be_bytes(), &sig].concat();
        format!("\u{2014} {} {}\n", self.name, B64.encode(raw))
    }
}

fn text_of(note: &str) -> &str {
    &note[..=note.find("\n\n").unwrap()]
}

#[tokio::test]
async fn witness_cosignatures_are_checked_stored_and_served() {
    let witness = Witness::new("witness.example.org/w1", 42);
    let stranger = Witness::new("witness.example.org/w2", 43);
    let vkey = witness.vkey();
    let server = common::start_on("cosign", |c| c.witnesses = vec![vkey.clone()]).await;
    let api = Api::new(&server);
    fill(&api, "acme", 3).await;
    let (_, keys) = api.get_text("/api/ledger/acme/keys").await;
    let trusted = TrustedKeys::parse(&keys).unwrap();
    let (_, _, note) = public(&api, "/vera/acme/checkpoint", None).await;
    let note = String::from_utf8(note).unwrap();
    let cp = trusted.verify(&note).unwrap();
    let text = text_of(&note);
    let time = 1_765_000_000;
    let line = witness.cosign(text, time);
    let post = |body: String, token: Option<&'static str>| {
        let api = &api;
        async move {
            let mut r = api
                .http
                .post(api.url("/api/ledger/acme/cosignatures"))
                .body(body);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };

    // Refused: no token, a stranger, a wrong key under the witness's name, a cosignature of
    // another checkpoint, a note this log did not sign.
    assert_eq!(post(format!("{note}{line}"), None).await.0, 401);
    let (s, v) = post(
        format!("{note}{}", stranger.cosign(text, time)),
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("unknown_witness")),
        "{v}"
    );
    let forged = Witness {
        name: witness.name.clone(),
        key: SigningKey::from_bytes(&[44; 32]),
    };
    let mut forged_line = forged.cosign(text, time);
    // The forger claims the witness's key id, so the line is the witness's to check.
    let raw = B64
        .decode(forged_line.trim_end().rsplit(' ').next().unwrap())
        .unwrap();
    let raw = [&witness.key_id()[..], &raw[4..]].concat();
    forged_line = format!("\u{2014} {} {}\n", witness.name, B64.encode(raw));
    let (s, v) = post(format!("{note}{forged_line}"), Some(TOKEN)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("bad_cosignature")),
        "{v}"
    );
    let other_text = text.replacen(
        &format!("\n{}\n", cp.size),
        &format!("\n{}\n", cp.size + 1),
        1,
    );
    let (s, v) = post(
        format!("{note}{}", witness.cosign(&other_text, time)),
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("bad_cosignature")),
        "{v}"
    );
    let unsigned = note.replacen(
        &format!("\n{}\n", cp.size),
        &format!("\n{}\n", cp.size + 1),
        1,
    );
    let (s, v) = post(
        format!("{unsigned}{}", witness.cosign(&other_text, time)),
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("checkpoint_mismatch")),
        "{v}"
    );
    let future = witness.cosign(text, 4_000_000_000);
    let (s, v) = post(format!("{note}{future}"), Some(TOKEN)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("bad_cosignature")),
        "{v}"
    );
    // Nothing refused was kept.
    let (_, _, served) = public(&api, "/vera/acme/checkpoint", None).await;
    assert_eq!(String::from_utf8(served).unwrap(), note);

    // Accepted, then served after the log's own signature on both checkpoint routes.
    let (s, v) = post(format!("{note}{line}"), Some(TOKEN)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["size"], cp.size);
    assert_eq!(v["witnesses"], json!([vkey]));
    let (_, _, served) = public(&api, "/vera/acme/checkpoint", None).await;
    let served = String::from_utf8(served).unwrap();
    assert_eq!(served, format!("{note}{line}"));
    let (_, api_note) = api.get_text("/api/ledger/acme/checkpoint").await;
    assert_eq!(api_note, served);
    assert_eq!(trusted.verify(&served).unwrap(), cp);

    // `vera --witness` accepts it; a witness that did not cosign is missing.
    let required = [WitnessKey::parse(&vkey).unwrap()];
    assert_eq!(verify_cosignatures(&served, &required).unwrap(), [time]);
    let http = reqwest::Client::new();
    let check = TileCheck {
        witnesses: required.to_vec(),
        ..TileCheck::default()
    };
    let report = check_log(&http, &api.url("/vera/acme"), &trusted, &check)
        .await
        .unwrap();
    assert_eq!(report.cosigned_at, [time]);
    let missing = TileCheck {
        witnesses: vec![WitnessKey::parse(&stranger.vkey()).unwrap()],
        ..TileCheck::default()
    };
    assert!(matches!(
        check_log(&http, &api.url("/vera/acme"), &trusted, &missing).await,
        Err(VeraError::MissingCosignature { .. })
    ));
    assert!(verify_cosignatures(&format!("{note}{forged_line}"), &required).is_err());

    // A cosignature belongs to its checkpoint: a grown log's checkpoint carries none yet.
    fill(&api, "acme", 1).await;
    let (_, _, later) = public(&api, "/vera/acme/checkpoint", None).await;
    let later = String::from_utf8(later).unwrap();
    assert!(trusted.verify(&later).unwrap().size > cp.size);
    assert!(matches!(
        verify_cosignatures(&later, &required),
        Err(VeraError::MissingCosignature { .. })
    ));
    server.shutdown().await;
}
