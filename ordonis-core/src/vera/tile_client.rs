//! The client side of c2sp.org/tlog-tiles over HTTP: what `vera tiles` runs against a log's
//! prefix (`https://host/vera/<workspace>`). It reads the checkpoint, checks the log's
//! signature and the required witnesses' cosignatures, fetches every hash tile of the
//! checkpoint's size, recomputes the root from them ([`verify_hash_tiles`]) and, when asked,
//! fetches every entry bundle and checks each entry's leaf hash against level 0
//! ([`verify_bundles`]).

use std::collections::HashMap;

use super::checkpoint::{Checkpoint, TrustedKeys};
use super::cosignature::{WitnessKey, verify_cosignatures};
use super::error::VeraError;
use super::tiles::{TileId, entry_bundles, hash_tiles, verify_bundles, verify_hash_tiles};

/// What to check beyond the log's signature and its hash tiles.
#[derive(Clone, Debug, Default)]
pub struct TileCheck {
    /// Also fetch the entry bundles and check every entry against level 0.
    pub entries: bool,
    /// Witnesses that must have cosigned the checkpoint.
    pub witnesses: Vec<WitnessKey>,
    /// The bearer token that reads entry bundles (the workspace's read token).
    pub token: Option<String>,
}

/// What a tile check verified.
#[derive(Clone, Debug)]
pub struct TileReport {
    /// The verified checkpoint.
    pub checkpoint: Checkpoint,
    /// Hash tiles fetched and checked.
    pub tiles: usize,
    /// Entries checked against level 0 (with [`TileCheck::entries`]).
    pub entries: Option<u64>,
    /// The required witnesses' cosignature timestamps, in order.
    pub cosigned_at: Vec<u64>,
}

async fn get(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> Result<Vec<u8>, VeraError> {
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| VeraError::Fetch(format!("GET {url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(VeraError::Fetch(format!("GET {url}: {}", resp.status())));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| VeraError::Fetch(format!("GET {url}: {e}")))?;
    Ok(body.to_vec())
}

/// Checks the log served under `prefix` (no trailing slash needed) against the trusted keys.
pub async fn check_log(
    client: &reqwest::Client,
    prefix: &str,
    keys: &TrustedKeys,
    check: &TileCheck,
) -> Result<TileReport, VeraError> {
    let prefix = prefix.trim_end_matches('/');
    let note = get(client, &format!("{prefix}/checkpoint"), None).await?;
    let note = String::from_utf8(note)
        .map_err(|_| VeraError::MalformedNote("the checkpoint is not UTF-8".into()))?;
    let checkpoint = keys.verify(&note)?;
    let cosigned_at = verify_cosignatures(&note, &check.witnesses)?;
    let mut tiles: HashMap<TileId, Vec<u8>> = HashMap::new();
    for t in hash_tiles(checkpoint.size) {
        let bytes = get(client, &format!("{prefix}/{}", t.path()), None).await?;
        tiles.insert(t, bytes);
    }
    let leaves = verify_hash_tiles(checkpoint.size, &checkpoint.root, &tiles)?;
    let entries = if check.entries {
        let mut bundles = HashMap::new();
        for t in entry_bundles(checkpoint.size) {
            let url = format!("{prefix}/{}", t.path());
            bundles.insert(t, get(client, &url, check.token.as_deref()).await?);
        }
        Some(verify_bundles(&leaves, &bundles)?)
    } else {
        None
    };
    Ok(TileReport {
        checkpoint,
        tiles: tiles.len(),
        entries,
        cosigned_at,
    })
}
