//! The VERA endpoints the offline `vera` verifier reads:
//!
//! - `GET /api/ledger/{ws}/checkpoint`: the signed checkpoint note (`text/plain`), the
//!   `checkpoint` file of an export, with the witnesses' cosignatures of its size;
//! - `GET /api/ledger/{ws}/export`: `{checkpoint, entries, verifier_keys}`, where `entries` is
//!   the `vera-export/v1` file and `checkpoint` the note it verifies against (write them to
//!   `<dir>/entries` and `<dir>/checkpoint`, the keys to a trust file, and run `vera verify`);
//! - `GET /api/ledger/{ws}/proof/{index}`: `{index, entry, receipt}`, the entry's bytes and
//!   its c2sp.org/tlog-proof receipt (`vera verify-receipt`);
//! - `GET /api/ledger/{ws}/keys`: the verifier keys (a `--trust` file);
//! - `GET /api/ledger/{ws}/consistency?from=N&to=M`: the RFC 9162 consistency proof between
//!   the log's first `N` and first `M` entries (`text/plain`, one base64 hash per line), the
//!   `--proof` file of `vera consistency <note of size N> <note of size M>`: a witness that
//!   pinned an earlier checkpoint checks that a later one extends it.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ordonis_core::WorkspaceId;
use ordonis_core::vera::{ExportWriter, Notary, VeraError, log_name};
use serde_json::json;

use crate::errors::ApiError;
use crate::state::AppState;

/// A workspace that exists (has an integration or ledger entries); 404 otherwise, so that
/// asking about an unknown workspace writes no checkpoint.
pub async fn workspace(s: &AppState, ws: &str) -> Result<WorkspaceId, ApiError> {
    let not_found = || ApiError::not_found(format!("workspace {ws}"));
    let ws = WorkspaceId::new(ws.to_owned()).map_err(|_| not_found())?;
    if s.store.ledger_size(&ws).await? == 0 && s.store.integrations(&ws).await?.is_empty() {
        return Err(not_found());
    }
    Ok(ws)
}

fn vera_err(e: VeraError) -> ApiError {
    match e {
        VeraError::IndexOutOfRange { .. } => ApiError::not_found(e.to_string()),
        other => ApiError::internal(other),
    }
}

/// The trust file for a workspace's log.
pub fn trust_file(s: &AppState, ws: &WorkspaceId) -> Result<String, ApiError> {
    let keys = s
        .signer
        .verifier_keys(&log_name(ws))
        .map_err(ApiError::internal)?;
    Ok(keys.iter().map(|k| format!("{k}\n")).collect())
}

fn text(body: String) -> Response {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// The latest signed checkpoint (signing a new one when the log grew).
pub async fn checkpoint(
    State(s): State<AppState>,
    Path(ws): Path<String>,
) -> Result<Response, ApiError> {
    let ws = workspace(&s, &ws).await?;
    Ok(text(super::vera::cosigned_checkpoint(&s, &ws).await?))
}

/// Entries per read of the streamed export.
const EXPORT_PAGE: usize = 1000;

/// The whole log with the checkpoint it verifies against, streamed: the checkpoint is signed
/// over a bounded pass of the log ([`Notary::checkpoint`]), then the entries of exactly
/// that size are read and sent a page at a time. The bytes are those of the JSON object
/// `{checkpoint, entries, log, size, verifier_keys}` as one `Json` answer would write them,
/// with no request holding the log in memory.
pub async fn export(
    State(s): State<AppState>,
    Path(ws): Path<String>,
) -> Result<Response, ApiError> {
    let ws = workspace(&s, &ws).await?;
    let cp = Notary::new(s.store.as_ref(), &s.signer)
        .checkpoint(&ws)
        .await
        .map_err(vera_err)?;
    let size = cp.checkpoint.size;
    // The envelope as serde_json writes it, with a marker where the entries string goes,
    // so the streamed bytes keep its key order and escaping exactly.
    let marker = format!("entries-{}", uuid::Uuid::now_v7().simple());
    let envelope = serde_json::to_string(&json!({
        "log": log_name(&ws),
        "size": size,
        "checkpoint": cp.note,
        "entries": marker,
        "verifier_keys": trust_file(&s, &ws)?,
    }))
    .map_err(ApiError::internal)?;
    let (head, tail) = envelope
        .split_once(&marker)
        .ok_or_else(|| ApiError::internal("export envelope without its marker"))?;
    let header = ExportWriter::new(Vec::new())
        .and_then(ExportWriter::finish)
        .map_err(ApiError::internal)?;
    let first = format!(
        "{head}{}",
        json_chars(std::str::from_utf8(&header).map_err(ApiError::internal)?)
            .map_err(ApiError::internal)?
    );
    let tail = tail.to_owned();
    let store = s.store.clone();
    enum Step {
        Head,
        From(u64),
        End,
    }
    let body = futures::stream::try_unfold(Step::Head, move |step| {
        let store = store.clone();
        let ws = ws.clone();
        let first = first.clone();
        let tail = tail.clone();
        async move {
            Ok::<_, std::io::Error>(match step {
                Step::Head => Some((Bytes::from(first), Step::From(0))),
                Step::From(from) if from >= size => Some((Bytes::from(tail), Step::End)),
                Step::From(from) => {
                    let want = usize::try_from(size - from)
                        .unwrap_or(EXPORT_PAGE)
                        .min(EXPORT_PAGE);
                    let page = store
                        .ledger_entries(&ws, from, want)
                        .await
                        .map_err(std::io::Error::other)?;
                    let chunk = export_lines(&page, from, want)?;
                    Some((Bytes::from(chunk), Step::From(from + want as u64)))
                }
                Step::End => None,
            })
        }
    });
    Ok((
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

/// The `entries` lines of a page that must hold entries `from..from+want`, JSON-escaped (the
/// inside of the `entries` string).
fn export_lines(
    page: &[ordonis_core::LedgerEntry],
    from: u64,
    want: usize,
) -> std::io::Result<String> {
    if page.len() != want {
        return Err(std::io::Error::other(format!(
            "the log returned {} entries from {from}, not {want}",
            page.len()
        )));
    }
    let mut w = ExportWriter::new(Vec::new())?;
    for (i, e) in page.iter().enumerate() {
        if e.idx != from + i as u64 {
            return Err(std::io::Error::other(format!(
                "entry {} is stored with index {}",
                from + i as u64,
                e.idx
            )));
        }
        w.push(&e.bytes)?;
    }
    let bytes = w.finish()?;
    // Without the header line the writer starts with (it went out once, first).
    let start = bytes.iter().position(|b| *b == b'\n').map_or(0, |n| n + 1);
    let lines = bytes.get(start..).unwrap_or_default();
    json_chars(std::str::from_utf8(lines).map_err(std::io::Error::other)?)
}

/// `s` as the characters of a JSON string, without the quotes: escaping is per character,
/// so the pieces of a string escaped one by one join into the whole string escaped.
fn json_chars(s: &str) -> std::io::Result<String> {
    let quoted = serde_json::to_string(s).map_err(std::io::Error::other)?;
    Ok(quoted
        .get(1..quoted.len().saturating_sub(1))
        .unwrap_or_default()
        .to_owned())
}

/// One entry and its inclusion receipt.
pub async fn proof(
    State(s): State<AppState>,
    Path((ws, index)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ws = workspace(&s, &ws).await?;
    let index: u64 = index
        .parse()
        .map_err(|_| ApiError::bad_request("index must be a non-negative integer"))?;
    if index >= s.store.ledger_size(&ws).await? {
        return Err(ApiError::not_found(format!("ledger entry {index}")));
    }
    let (entry, receipt) = Notary::new(s.store.as_ref(), &s.signer)
        .receipt(&ws, index)
        .await
        .map_err(vera_err)?;
    let entry = String::from_utf8(entry).map_err(ApiError::internal)?;
    Ok(Json(json!({
        "index": index,
        "entry": entry,
        "receipt": receipt.to_text(),
    })))
}

/// `?from=N&to=M`.
#[derive(Debug, serde::Deserialize)]
pub struct ConsistencyQuery {
    from: u64,
    to: u64,
}

/// The consistency proof between two sizes of the log (`1 ≤ from ≤ to ≤ size`).
pub async fn consistency(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    crate::errors::ApiQuery(q): crate::errors::ApiQuery<ConsistencyQuery>,
) -> Result<Response, ApiError> {
    let ws = workspace(&s, &ws).await?;
    let size = s.store.ledger_size(&ws).await?;
    if q.from == 0 || q.from > q.to || q.to > size {
        return Err(ApiError::bad_request(format!(
            "from and to must satisfy 1 <= from <= to <= {size} (the log's size)"
        )));
    }
    let proof = Notary::new(s.store.as_ref(), &s.signer)
        .consistency_proof(&ws, q.from, q.to)
        .await
        .map_err(vera_err)?;
    Ok(text(ordonis_core::vera::export::format_proof(&proof)))
}

/// The verifier keys.
pub async fn keys(State(s): State<AppState>, Path(ws): Path<String>) -> Result<Response, ApiError> {
    let ws = workspace(&s, &ws).await?;
    Ok(text(trust_file(&s, &ws)?))
}

/// `?after=&limit=&wait=`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    after: Option<u64>,
    limit: Option<usize>,
    wait: Option<String>,
}

/// The longest long-poll.
pub const MAX_FEED_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// How often a long-poll looks at the log: the store is the only thing every server of a
/// deployment shares, so a commit made by another process is seen within this.
const FEED_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// `wait=30s`, `wait=500ms`, `wait=30` (seconds); at most [`MAX_FEED_WAIT`].
fn parse_wait(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let d = if let Some(ms) = s.strip_suffix("ms") {
        std::time::Duration::from_millis(ms.parse().ok()?)
    } else {
        std::time::Duration::from_secs(s.strip_suffix('s').unwrap_or(s).parse().ok()?)
    };
    Some(d.min(MAX_FEED_WAIT))
}

/// The workspace's ledger as a change feed: `{entries, last_index}`, the entries after
/// `after` (from the first without it), at most `limit` (default 100, at most 1000). With
/// `wait`, an empty answer waits up to that long for the next commit.
pub async fn entries(
    State(s): State<AppState>,
    Path(ws): Path<String>,
    crate::errors::ApiQuery(q): crate::errors::ApiQuery<FeedQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ws = workspace(&s, &ws).await?;
    let wait = match q.wait.as_deref() {
        None => std::time::Duration::ZERO,
        Some(w) => parse_wait(w)
            .ok_or_else(|| ApiError::bad_request("wait must be like 30s, 500ms or 30"))?,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let deadline = tokio::time::Instant::now() + wait;
    let found = loop {
        let found = s.engine.feed(&ws, q.after, limit).await?;
        if !found.is_empty() || tokio::time::Instant::now() >= deadline {
            break found;
        }
        tokio::time::sleep(FEED_POLL).await;
    };
    Ok(Json(json!({
        "workspace_id": ws.as_str(),
        "entries": found.iter().map(super::json::entry).collect::<Vec<_>>(),
        "last_index": found.last().map(|e| e.idx).or(q.after),
    })))
}
