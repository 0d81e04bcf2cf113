//! Each workspace's VERA log as a c2sp.org/tlog-tiles log under the read-only prefix
//! `/vera/{ws}/`, and the witnesses' cosignatures on its checkpoints.
//!
//! - `GET /vera/{ws}/checkpoint`: the latest signed checkpoint, with the stored witness
//!   cosignature lines after the log's own signature;
//! - `GET /vera/{ws}/tile/<L>/<N>[.p/<W>]`: hash tiles (height 8);
//! - `GET /vera/{ws}/tile/entries/<N>[.p/<W>]`: entry bundles (each entry a big-endian `u16`
//!   length, then its canonical bytes, whose RFC 6962 leaf hash is the level-0 hash).
//!
//! Who may read what, on a multi-tenant server: the checkpoint and the hash tiles are public.
//! They are what a witness or monitor that holds no credential of ours must read, and they
//! reveal no tenant data: hashes of entries that each hold random ids and microsecond times
//! (not invertible by guessing), the log's size and its signature (the size does show how
//! many entries the workspace's log has, and a 404 that a workspace does not exist). Entry bundles
//! hold the entries themselves (who changed which task, the values), so they need either the
//! admin token or the workspace's own read token (`GET /api/ledger/{ws}/read-token`, an HMAC
//! of the workspace id under a key derived from the secret key): a token of one workspace
//! never opens another's bundles, and bundles are `Cache-Control: private`.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use ordonis_core::WorkspaceId;
use ordonis_core::vera::note::split_note;
use ordonis_core::vera::{Notary, TileId, TileKind, TileReader, VeraError, log_name};

use super::ledger::workspace;
use crate::errors::ApiError;
use crate::state::AppState;

/// Tiles never change once served (a partial tile is a fixed prefix too).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Entry bundles are as immutable, but only for the reader that was let in.
const PRIVATE_IMMUTABLE: &str = "private, max-age=31536000, immutable";
/// How far in the future a cosignature's timestamp may be (clock skew), in seconds.
const MAX_CLOCK_SKEW_S: i64 = 600;
/// The checkpoint moves: a few seconds at most (tlog-tiles).
const CHECKPOINT_CACHE: &str = "public, max-age=5";

fn vera_err(e: VeraError) -> ApiError {
    match e {
        VeraError::EntryTooLarge { .. } => ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "entry_too_large",
            format!("{e}; read it with GET /api/ledger/{{ws}}/proof/{{index}}"),
        ),
        VeraError::Store(s) => s.into(),
        other => ApiError::internal(other),
    }
}

/// The latest checkpoint note, signing one when the log grew, with the witnesses'
/// cosignature lines of its size appended.
pub async fn cosigned_checkpoint(s: &AppState, ws: &WorkspaceId) -> Result<String, ApiError> {
    // The note already covering the log is served without reading the log (this route is
    // public; only growth costs a read of the log and a signature).
    let size = s.store.ledger_size(ws).await?;
    let mut note = match s.store.latest_checkpoint(ws).await? {
        Some(cp) if cp.size == size => cp.note,
        _ => {
            Notary::new(s.store.as_ref(), &s.signer)
                .checkpoint(ws)
                .await
                .map_err(vera_err)?
                .note
        }
    };
    let size = ordonis_core::vera::Checkpoint::parse_unverified(&note)
        .map_err(ApiError::internal)?
        .size;
    for line in s.store.cosignatures(ws, size).await? {
        note.push_str(&line);
    }
    Ok(note)
}

/// `GET /vera/{ws}/checkpoint`.
pub async fn checkpoint(
    State(s): State<AppState>,
    Path(ws): Path<String>,
) -> Result<Response, ApiError> {
    let ws = workspace(&s, &ws).await?;
    let note = cosigned_checkpoint(&s, &ws).await?;
    Ok((
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            (CACHE_CONTROL, CHECKPOINT_CACHE),
        ],
        note,
    )
        .into_response())
}

/// `GET /vera/{ws}/tile/{*path}`: a hash tile or an entry bundle; 404 for a path that is not
/// a tile's canonical path or a tile the log does not have (yet).
pub async fn tile(
    State(s): State<AppState>,
    Path((ws, path)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let id = TileId::parse(&path).ok_or_else(|| ApiError::not_found(format!("tile {path}")))?;
    let cache = if id.kind == TileKind::Entries {
        // Before the workspace lookup: without the right token, an unknown workspace and a
        // known one answer alike.
        let ok = |t: &str| s.token_ok(t) || s.vera_read_ok(&ws, t);
        if let Some(refused) = super::refusal(&s, &req, ok) {
            return Ok(refused);
        }
        PRIVATE_IMMUTABLE
    } else {
        IMMUTABLE
    };
    let ws = workspace(&s, &ws).await?;
    let size = s.store.ledger_size(&ws).await?;
    let bytes = TileReader::new(s.store.as_ref(), &ws)
        .read(&id, size)
        .await
        .map_err(vera_err)?
        .ok_or_else(|| ApiError::not_found(format!("tile {path}: the log has {size} entries")))?;
    Ok((
        [
            (CONTENT_TYPE, "application/octet-stream"),
            (CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /api/ledger/{ws}/read-token` (admin): the token that reads this workspace's entry
/// bundles and nothing else, to hand to the workspace's own auditor.
pub async fn read_token(
    State(s): State<AppState>,
    Path(ws): Path<String>,
) -> Result<Response, ApiError> {
    let ws = workspace(&s, &ws).await?;
    Ok((
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}\n", s.vera_read_token(ws.as_str())),
    )
        .into_response())
}

/// `POST /api/ledger/{ws}/cosignatures` (admin): the body is a checkpoint note this log
/// signed, with one or more witnesses' cosignature lines among its signatures (what a
/// witness's c2sp.org/tlog-witness `add-checkpoint` answers, appended). Each line of a
/// configured witness is verified (`cosignature/v1`, key id with type 0x04) and stored with
/// that checkpoint; the served checkpoint then carries it.
///
/// `400 bad_cosignature` for a line that does not verify (another key, another checkpoint) or
/// is dated more than ten minutes ahead,
/// `403 unknown_witness` for a line of a key that is neither the log's nor a configured
/// witness's, `409 checkpoint_mismatch` for a note this log did not sign.
pub async fn add_cosignatures(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    body: String,
) -> Result<Response, ApiError> {
    let ws = workspace(&s, &ws).await?;
    let origin = log_name(&ws);
    let keys = s.signer.trusted_keys(&origin).map_err(ApiError::internal)?;
    let cp = keys.verify(&body).map_err(|e| match e {
        VeraError::MalformedNote(_) | VeraError::MalformedCheckpoint(_) => {
            ApiError::bad_request(e.to_string())
        }
        e => ApiError::new(
            StatusCode::CONFLICT,
            "checkpoint_mismatch",
            format!("not a checkpoint this log signed: {e}"),
        ),
    })?;
    let (text, sigs) = split_note(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let ours = keys.keys();
    let mut accepted = Vec::new();
    for sig in &sigs {
        if ours
            .iter()
            .any(|k| k.name() == sig.name && k.id() == sig.key_id)
        {
            continue;
        }
        let Some(w) = s.witnesses.iter().find(|w| w.signed(sig)) else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "unknown_witness",
                format!(
                    "{}+{:08x} is not a configured witness (--witness)",
                    sig.name, sig.key_id
                ),
            ));
        };
        let time = w.verify(text, sig).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_cosignature",
                format!("{e}: not a cosignature/v1 of this checkpoint"),
            )
        })?;
        // tlog-cosignature lets verifiers refuse future timestamps: a cosignature dated
        // later than now (give or take clock skew) is refused before it is served to them.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if i64::try_from(time).map_or(true, |t| t > now + MAX_CLOCK_SKEW_S) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_cosignature",
                format!(
                    "the cosignature of {} is dated in the future ({time})",
                    w.name()
                ),
            ));
        }
        let line = ordonis_core::vera::note::signature_line_of(sig);
        accepted.push((w.to_string(), line));
    }
    if accepted.is_empty() {
        return Err(ApiError::bad_request(
            "the note carries no witness cosignature",
        ));
    }
    for (witness, line) in &accepted {
        s.store.add_cosignature(&ws, cp.size, witness, line).await?;
    }
    Ok(axum::Json(serde_json::json!({
        "size": cp.size,
        "witnesses": accepted.iter().map(|(w, _)| w).collect::<Vec<_>>(),
    }))
    .into_response())
}
