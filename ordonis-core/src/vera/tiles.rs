//! A workspace's log as C2SP tlog-tiles (c2sp.org/tlog-tiles): the tile arithmetic and paths,
//! the tiles and entry bundles a server reads from the [`Ledger`], and the checks a client runs
//! on what it fetched.
//!
//! Tiles have height 8: a full tile holds 256 hashes (8,192 bytes). Level 0 holds leaf
//! hashes; a hash at level `L ≥ 1` is the root of a full level `L − 1` tile, i.e. of `256^L`
//! leaves. A tile is served at `tile/<L>/<N>[.p/<W>]` and an entry bundle (each entry a
//! big-endian `u16` length, then the entry's canonical bytes, whose RFC 6962 leaf hash is the
//! level-0 hash) at `tile/entries/<N>[.p/<W>]`; `N` is written in 3-digit path elements, all
//! but the last prefixed with `x` (`1234067` → `x001/x234/067`).
//!
//! No published crate does this arithmetic at current dependency versions (see the VERA
//! research notes), hence by hand.

use std::collections::HashMap;

use super::error::VeraError;
use super::merkle::{Hash, leaf_hash, node_hash};
use crate::ids::WorkspaceId;
use crate::ledger::Ledger;

/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 256;

/// Bytes of a hash.
const HASH_LEN: usize = 32;

/// The highest tile level the spec allows.
pub const MAX_LEVEL: u8 = 63;

/// What a tile path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// A hash tile at a level.
    Hashes(u8),
    /// An entry bundle.
    Entries,
}

/// One tile or entry bundle: its kind, its index within the level and its width (256 for a
/// full one, 1..=255 for a partial one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileId {
    /// Hash tile (and level) or entry bundle.
    pub kind: TileKind,
    /// Index of the tile within its level.
    pub index: u64,
    /// Number of hashes (or entries) it holds.
    pub width: u16,
}

impl TileId {
    /// Whether the tile is full (256 wide).
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// The path below the log's prefix: `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        let level = match self.kind {
            TileKind::Hashes(l) => l.to_string(),
            TileKind::Entries => "entries".to_owned(),
        };
        let mut p = format!("tile/{level}/{}", encode_index(self.index));
        if !self.is_full() {
            p.push_str(&format!(".p/{}", self.width));
        }
        p
    }

    /// Parses the part of a path after `tile/`; `None` unless it is the canonical form
    /// (levels 0..=63 and widths 1..=255 without leading zeros, the shortest index encoding).
    pub fn parse(path: &str) -> Option<Self> {
        let (level, rest) = path.split_once('/')?;
        let kind = if level == "entries" {
            TileKind::Entries
        } else {
            let l: u8 = canonical_decimal(level)?.try_into().ok()?;
            if l > MAX_LEVEL {
                return None;
            }
            TileKind::Hashes(l)
        };
        let (index, width) = match rest.split_once(".p/") {
            Some((index, w)) => {
                let w = canonical_decimal(w)?;
                if w == 0 || w >= TILE_WIDTH {
                    return None;
                }
                (index, w as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let mut n: u64 = 0;
        let parts: Vec<&str> = index.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let digits = if i + 1 < parts.len() {
                part.strip_prefix('x')?
            } else {
                part
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let d: u64 = digits.parse().ok()?;
            n = n.checked_mul(1000)?.checked_add(d)?;
        }
        let id = Self {
            kind,
            index: n,
            width,
        };
        // One path per tile: `x000/005` is not `005`.
        (encode_index(n) == index).then_some(id)
    }
}

/// A decimal without leading zeros.
fn canonical_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// A tile index as path elements: `1234067` → `x001/x234/067`, `5` → `005`.
pub fn encode_index(n: u64) -> String {
    let mut groups = vec![n % 1000];
    let mut rest = n / 1000;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    let last = groups.len() - 1;
    groups
        .iter()
        .rev()
        .enumerate()
        .map(|(i, g)| {
            if i < last {
                format!("x{g:03}")
            } else {
                format!("{g:03}")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// How many hashes level `level` has in a tree of `size` leaves: `floor(size / 256^level)`.
pub fn hashes_at(size: u64, level: u8) -> u64 {
    if u32::from(level) * 8 >= 64 {
        0
    } else {
        size >> (8 * u32::from(level))
    }
}

/// Every hash tile a tree of `size` leaves has, level by level, full ones first and then
/// the level's partial tile (`floor(size / 256^L) mod 256` wide, when not 0).
pub fn hash_tiles(size: u64) -> Vec<TileId> {
    let mut out = Vec::new();
    for level in 0..=MAX_LEVEL {
        let n = hashes_at(size, level);
        if n == 0 {
            break;
        }
        push_tiles(&mut out, TileKind::Hashes(level), n);
    }
    out
}

/// Every entry bundle of a tree of `size` leaves.
pub fn entry_bundles(size: u64) -> Vec<TileId> {
    let mut out = Vec::new();
    push_tiles(&mut out, TileKind::Entries, size);
    out
}

fn push_tiles(out: &mut Vec<TileId>, kind: TileKind, count: u64) {
    for index in 0..count / TILE_WIDTH {
        out.push(TileId {
            kind,
            index,
            width: TILE_WIDTH as u16,
        });
    }
    let w = count % TILE_WIDTH;
    if w > 0 {
        out.push(TileId {
            kind,
            index: count / TILE_WIDTH,
            width: w as u16,
        });
    }
}

/// The root of `2^k` consecutive hashes (a perfect subtree).
fn perfect_root(hashes: &[Hash]) -> Hash {
    let mut row = hashes.to_vec();
    while row.len() > 1 {
        row = row.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    row.first().copied().unwrap_or(super::merkle::EMPTY_ROOT)
}

/// Splits tile bytes into hashes; `None` when the length is not `32 × width`.
fn split_hashes(bytes: &[u8], width: u16) -> Option<Vec<Hash>> {
    if bytes.len() != HASH_LEN * usize::from(width) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(HASH_LEN)
            .filter_map(|c| c.try_into().ok())
            .collect(),
    )
}

fn bad_tile(t: &TileId, why: &str) -> VeraError {
    VeraError::BadTile {
        path: t.path(),
        reason: why.to_owned(),
    }
}

/// Checks a tree's hash tiles (all of [`hash_tiles`] for `size`, fetched by path) against
/// the checkpoint's root: every hash of a level `L ≥ 1` tile must be the root of the full
/// level `L − 1` tile below it, and the root computed from each level's partial tile (the
/// tree's right edge) must be `root`. Returns the level-0 hashes, in leaf order, for
/// checking entry bundles.
pub fn verify_hash_tiles(
    size: u64,
    root: &Hash,
    tiles: &HashMap<TileId, Vec<u8>>,
) -> Result<Vec<Hash>, VeraError> {
    let wanted = hash_tiles(size);
    let mut levels: Vec<Vec<Hash>> = Vec::new();
    for t in &wanted {
        let TileKind::Hashes(level) = t.kind else {
            continue;
        };
        let bytes = tiles
            .get(t)
            .ok_or_else(|| bad_tile(t, "the tile was not fetched"))?;
        let hashes = split_hashes(bytes, t.width).ok_or_else(|| {
            bad_tile(
                t,
                &format!(
                    "{} bytes, expected {}",
                    bytes.len(),
                    HASH_LEN * usize::from(t.width)
                ),
            )
        })?;
        let level = usize::from(level);
        if levels.len() <= level {
            levels.resize(level + 1, Vec::new());
        }
        levels[level].extend(hashes);
    }
    // Each hash above level 0 is the root of the 256 hashes below it.
    for level in 1..levels.len() {
        let (below, here) = levels.split_at(level);
        let below = &below[level - 1];
        for (i, h) in here[0].iter().enumerate() {
            let from = i * TILE_WIDTH as usize;
            let Some(chunk) = below.get(from..from + TILE_WIDTH as usize) else {
                return Err(VeraError::RootMismatch { size });
            };
            if perfect_root(chunk) != *h {
                let t = TileId {
                    kind: TileKind::Hashes(level as u8 - 1),
                    index: i as u64,
                    width: TILE_WIDTH as u16,
                };
                return Err(bad_tile(
                    &t,
                    &format!("its root is not hash {i} of level {level}"),
                ));
            }
        }
    }
    // The root from the right edge: each level's partial run of hashes, split into the perfect
    // subtrees of the binary decomposition of the size, largest (leftmost) first.
    let mut subtrees: Vec<Hash> = Vec::new();
    for level in (0..levels.len()).rev() {
        let run = &levels[level];
        let full = run.len() - run.len() % TILE_WIDTH as usize;
        let mut at = full;
        let w = run.len() % TILE_WIDTH as usize;
        for bit in (0..8).rev() {
            let n = 1usize << bit;
            if w & n != 0 {
                subtrees.push(perfect_root(&run[at..at + n]));
                at += n;
            }
        }
    }
    let computed = match subtrees.split_last() {
        None => super::merkle::EMPTY_ROOT,
        Some((last, rest)) => rest
            .iter()
            .rev()
            .fold(*last, |acc, left| node_hash(left, &acc)),
    };
    if computed != *root {
        return Err(VeraError::RootMismatch { size });
    }
    Ok(levels.into_iter().next().unwrap_or_default())
}

/// Splits an entry bundle into its entries (each a big-endian `u16` length, then the bytes).
pub fn split_bundle(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return None;
        }
        let (entry, tail) = tail.split_at(len);
        out.push(entry);
        rest = tail;
    }
    Some(out)
}

/// Checks entry bundles (all of [`entry_bundles`] for the size) against the level-0 hashes
/// [`verify_hash_tiles`] returned: each bundle holds exactly its width of entries, and each
/// entry's leaf hash is its level-0 hash. Returns the number of entries checked.
pub fn verify_bundles(
    leaves: &[Hash],
    bundles: &HashMap<TileId, Vec<u8>>,
) -> Result<u64, VeraError> {
    let mut checked = 0u64;
    for t in entry_bundles(leaves.len() as u64) {
        let bytes = bundles
            .get(&t)
            .ok_or_else(|| bad_tile(&t, "the bundle was not fetched"))?;
        let entries = split_bundle(bytes).ok_or_else(|| bad_tile(&t, "truncated entry"))?;
        if entries.len() != usize::from(t.width) {
            return Err(bad_tile(
                &t,
                &format!("{} entries, expected {}", entries.len(), t.width),
            ));
        }
        for (i, e) in entries.iter().enumerate() {
            let index = t.index * TILE_WIDTH + i as u64;
            if Some(&leaf_hash(e)) != leaves.get(index as usize) {
                return Err(VeraError::Tampered {
                    index,
                    reason: "its leaf hash is not the level-0 tile's".to_owned(),
                });
            }
            checked += 1;
        }
    }
    Ok(checked)
}

/// Reads a workspace's tiles and entry bundles from a [`Ledger`].
///
/// A level-0 tile reads its (at most 256) entries; a hash at level `L ≥ 1` is read from the
/// store's cache of full-subtree roots ([`Ledger::tile_hashes`]) and, when missing, computed
/// once from the level below and saved. These hashes depend only on the immutable leaves, so
/// the cache never goes stale: after the first read a tile costs one range read per level.
pub struct TileReader<'a> {
    ledger: &'a dyn Ledger,
    ws: &'a WorkspaceId,
}

impl std::fmt::Debug for TileReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileReader")
            .field("ws", &self.ws)
            .finish_non_exhaustive()
    }
}

impl<'a> TileReader<'a> {
    /// A reader of a workspace's log.
    pub fn new(ledger: &'a dyn Ledger, ws: &'a WorkspaceId) -> Self {
        Self { ledger, ws }
    }

    /// The tile's bytes, or `None` when the log (of `size` entries) does not have it yet.
    pub async fn read(&self, t: &TileId, size: u64) -> Result<Option<Vec<u8>>, VeraError> {
        let count = match t.kind {
            TileKind::Hashes(l) => hashes_at(size, l),
            TileKind::Entries => size,
        };
        let from = t.index.checked_mul(TILE_WIDTH);
        let width = u64::from(t.width);
        match from.and_then(|f| f.checked_add(width)) {
            Some(end) if end <= count => {}
            _ => return Ok(None),
        }
        let from = t.index * TILE_WIDTH;
        Ok(Some(match t.kind {
            TileKind::Entries => self.bundle(from, t.width).await?,
            TileKind::Hashes(level) => self.hashes(level, from, width).await?.concat(),
        }))
    }

    async fn bundle(&self, from: u64, width: u16) -> Result<Vec<u8>, VeraError> {
        let entries = self
            .ledger
            .ledger_entries(self.ws, from, usize::from(width))
            .await?;
        if entries.len() != usize::from(width) {
            return Err(VeraError::Integrity(format!(
                "the store returned {} entries from {from}, expected {width}",
                entries.len()
            )));
        }
        let mut out = Vec::new();
        for e in entries {
            let len = u16::try_from(e.bytes.len()).map_err(|_| VeraError::EntryTooLarge {
                index: e.idx,
                len: e.bytes.len(),
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&e.bytes);
        }
        Ok(out)
    }

    /// Hashes `from..from + count` of a level.
    fn hashes(
        &self,
        level: u8,
        from: u64,
        count: u64,
    ) -> futures::future::BoxFuture<'_, Result<Vec<Hash>, VeraError>> {
        Box::pin(async move {
            let n = usize::try_from(count).unwrap_or(usize::MAX);
            if level == 0 {
                let entries = self.ledger.ledger_entries(self.ws, from, n).await?;
                if entries.len() != n {
                    return Err(VeraError::Integrity(format!(
                        "the store returned {} entries from {from}, expected {count}",
                        entries.len()
                    )));
                }
                return Ok(entries.into_iter().map(|e| e.leaf_hash).collect());
            }
            let stored = self.ledger.tile_hashes(self.ws, level, from, n).await?;
            let mut out = Vec::with_capacity(n);
            let mut computed_from = None;
            for (k, i) in (from..from + count).enumerate() {
                if let Some((_, h)) = stored.iter().find(|(j, _)| *j == i) {
                    out.push(*h);
                    continue;
                }
                let below = self.hashes(level - 1, i * TILE_WIDTH, TILE_WIDTH).await?;
                let h = perfect_root(&below);
                out.push(h);
                computed_from.get_or_insert(k);
            }
            // Saved from the first computed one on (the store ignores those it has).
            if let Some(k) = computed_from {
                self.ledger
                    .save_tile_hashes(self.ws, level, from + k as u64, &out[k..])
                    .await?;
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_written_as_the_spec_shows() {
        for (n, path) in [
            (0, "000"),
            (5, "005"),
            (999, "999"),
            (1000, "x001/000"),
            (1_234_067, "x001/x234/067"),
        ] {
            assert_eq!(encode_index(n), path);
            let t = TileId::parse(&format!("3/{path}.p/7")).unwrap();
            assert_eq!((t.kind, t.index, t.width), (TileKind::Hashes(3), n, 7));
        }
        let t = TileId::parse("entries/x001/x234/067").unwrap();
        assert_eq!(t.path(), "tile/entries/x001/x234/067");
        for bad in [
            "0/x000/005",
            "0/x1/005",
            "0/001/005",
            "0/5",
            "0/005.p/",
            "0/005.p/07",
        ] {
            assert_eq!(TileId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_specs_example_sizes_have_its_tiles() {
        // "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial
        // level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of width
        // 17, and one partial level 2 tile of width 1."
        let tiles = hash_tiles(70_000);
        let at = |l: u8| -> Vec<u16> {
            tiles
                .iter()
                .filter(|t| t.kind == TileKind::Hashes(l))
                .map(|t| t.width)
                .collect()
        };
        assert_eq!(at(0).len(), 274);
        assert_eq!(at(0).iter().filter(|w| **w == 256).count(), 273);
        assert_eq!(at(0).last(), Some(&112));
        assert_eq!(at(1), [256, 17]);
        assert_eq!(at(2), [1]);
        assert_eq!(tiles.len(), 277);
        // "a tree of size 256 will be represented by a full level 0 tile and a partial level
        // 1 tile of width 1."
        let t: Vec<String> = hash_tiles(256).iter().map(TileId::path).collect();
        assert_eq!(t, ["tile/0/000", "tile/1/000.p/1"]);
    }
}
