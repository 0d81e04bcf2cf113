//! What the VERA log's witnesses read beside the entries: the cache of full-subtree roots the
//! tile server fills (`vera_tile_hashes`, derived from the immutable leaves, so never stale)
//! and the witnesses' cosignature lines per checkpoint size (`vera_cosignatures`).

use ordonis_core::{StoreError, WorkspaceId};

use crate::dialect::{Arg, Dialect, SqlRow};
use crate::render::{params, sql, sql_with};
use crate::tables::{backend, i64_of, limit_of};

const TILE_HASHES: &str = "SELECT idx, hash FROM {p}vera_tile_hashes
  WHERE workspace_id = $1 AND level = $2 AND idx >= $3 AND idx < $3 + $4 ORDER BY idx";
const SAVE_TILE_HASHES: &str =
    "INSERT INTO {p}vera_tile_hashes (workspace_id, level, idx, hash) VALUES ";
const ADD_COSIGNATURE: &str = "INSERT INTO {p}vera_cosignatures (workspace_id, size, witness, line)
  VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, size, witness) DO NOTHING";
const COSIGNATURES: &str = "SELECT line FROM {p}vera_cosignatures
  WHERE workspace_id = $1 AND size = $2 ORDER BY witness";

/// Rows per insert of tile hashes (a tile's worth).
const SAVE_CHUNK: usize = 256;

pub(crate) async fn tile_hashes<D: Dialect>(
    d: &D,
    ws: &WorkspaceId,
    level: u8,
    from: u64,
    limit: usize,
) -> Result<Vec<(u64, [u8; 32])>, StoreError> {
    let args = vec![
        Arg::text(ws.as_str()),
        Arg::Int(i64::from(level)),
        Arg::Int(i64_of(from)?),
        Arg::Int(limit_of(limit)),
    ];
    d.read(sql::<D>(TILE_HASHES), args)
        .await?
        .iter()
        .map(|r| {
            let idx = u64::try_from(r.int("idx")?).map_err(|e| backend("tile hash index", e))?;
            let hash: [u8; 32] = r
                .bytes("hash")?
                .try_into()
                .map_err(|_| StoreError::backend("a stored tile hash is not 32 bytes"))?;
            Ok((idx, hash))
        })
        .collect()
}

pub(crate) async fn save_tile_hashes<D: Dialect>(
    d: &D,
    ws: &WorkspaceId,
    level: u8,
    from: u64,
    hashes: &[[u8; 32]],
) -> Result<(), StoreError> {
    for (k, chunk) in hashes.chunks(SAVE_CHUNK).enumerate() {
        let start = from + (k * SAVE_CHUNK) as u64;
        let mut args = vec![Arg::text(ws.as_str()), Arg::Int(i64::from(level))];
        let mut rows = Vec::with_capacity(chunk.len());
        let mut next = 3;
        for (i, h) in chunk.iter().enumerate() {
            let (p, n) = params(next, 2);
            next = n;
            // `($1, $2, $k, $k+1)`: the workspace and level are shared by every row.
            rows.push(format!("($1, $2, {}", &p[1..]));
            args.push(Arg::Int(i64_of(start + i as u64)?));
            args.push(Arg::Bytes(h.to_vec()));
        }
        let rest = format!("{} ON CONFLICT DO NOTHING", rows.join(", "));
        d.write_count(sql_with::<D>(SAVE_TILE_HASHES, &rest), args)
            .await?;
    }
    Ok(())
}

pub(crate) async fn add_cosignature<D: Dialect>(
    d: &D,
    ws: &WorkspaceId,
    size: u64,
    witness: &str,
    line: &str,
) -> Result<(), StoreError> {
    let args = vec![
        Arg::text(ws.as_str()),
        Arg::Int(i64_of(size)?),
        Arg::text(witness),
        Arg::text(line),
    ];
    d.write_count(sql::<D>(ADD_COSIGNATURE), args).await?;
    Ok(())
}

pub(crate) async fn cosignatures<D: Dialect>(
    d: &D,
    ws: &WorkspaceId,
    size: u64,
) -> Result<Vec<String>, StoreError> {
    let args = vec![Arg::text(ws.as_str()), Arg::Int(i64_of(size)?)];
    d.read(sql::<D>(COSIGNATURES), args)
        .await?
        .iter()
        .map(|r| r.text("line"))
        .collect()
}
