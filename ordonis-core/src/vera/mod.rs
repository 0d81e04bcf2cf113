//! VERA, the verifiable attribution ledger: canonical entry encoding, RFC 6962 Merkle
//! hashing and proofs, C2SP signed checkpoints, exports, receipts and their verification.
//!
//! Every workspace has one append-only log. Each entry is encoded canonically (VERA-JCS/1,
//! below), hashed into an RFC 6962 Merkle tree ([`merkle`]), and the tree heads are signed as
//! C2SP checkpoints ([`checkpoint`]) whose origin is the log's name. The [`Notary`] signs and
//! stores checkpoints through the [`Ledger`](crate::ledger::Ledger) contract and produces
//! exports and receipts ([`export`]) that the offline `vera` command verifies. [`tiles`] serves
//! and checks the log as c2sp.org/tlog-tiles, and [`cosignature`] reads and checks witness
//! cosignatures (c2sp.org/tlog-cosignature) on its checkpoints.
//!
//! # Log names
//!
//! A workspace's log is named `ordonis/ws/<workspace id>` with the id percent-encoded (every
//! byte outside `A-Z a-z 0-9 - . _ ~` becomes `%XX`, upper-case): [`log_name`]. The name is
//! the checkpoint origin, the signing key's name, and the `log` field of every entry, so an
//! entry or checkpoint cannot be moved to another workspace's log.
//!
//! # VERA-JCS/1: the canonical entry encoding
//!
//! The bytes of an entry are its RFC 8785 (JCS) serialization under a restricted profile, so
//! any JCS implementation reproduces them from the entry's JSON value:
//!
//! 1. JSON with no whitespace; object keys sorted (all keys are ASCII `[a-z_]`, so UTF-16
//!    order is byte order); no duplicate keys.
//! 2. Values are objects, arrays, strings and non-negative integers ≤ 2^53 − 1 (only `idx`).
//!    No floats, no `null`, no booleans. Absence is key omission.
//! 3. Strings are the UTF-8 given, byte for byte (no Unicode normalization); only `"` and `\`
//!    and the C0 controls are escaped: `\b \t \n \f \r` for U+0008/09/0A/0C/0D, `\u00xx`
//!    (lower-case hex) for the other controls. DEL, U+2028/2029 and all non-ASCII are raw.
//! 4. Times are UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ` (exactly six fractional digits, truncated
//!    to microseconds); dates are `YYYY-MM-DD`; a year before 1 is written with a leading `-`.
//! 5. Ids (task, integration) are lower-case hyphenated UUIDs.
//! 6. The stored bytes are authoritative: verifiers hash the bytes; [`decode_entry`] accepts
//!    only bytes equal to the re-encoding of what they hold.
//!
//! Leaf hash: `SHA-256(0x00 ‖ bytes)`.
//!
//! ## Entry schema (`type` = `vera.change/v1`)
//!
//! Keys in canonical order; `?` marks a key that is omitted when absent.
//!
//! | key | value |
//! |---|---|
//! | `actor` | `{account?, id, kind, on_behalf_of?, provider}`: `kind` ∈ `human agent service system`; `provider` is `internal` or the provider whose account `id` is, or, with `account`, the provider where the principal `id` of the people directory acted through that mapped account; `on_behalf_of` (omitted when empty) is the delegation chain, immediate principal first, each `{grant?, id, kind}`. **No display name or e-mail.** |
//! | `after`? | the value after (for a rejected change: the value asked for), a typed value |
//! | `before`? | the value before, a typed value |
//! | `cause` | `{delivery_id?, evidence?: {auth, body_sha256}, id, kind, parent_action?}`: `kind` ∈ `inbound_event internal_action push sync_echo backfill reconcile`; `id` is our inbox event, action or outbox id; `delivery_id` the provider's; `parent_action` links a sync echo or push to the internal action that started it |
//! | `comment`? | for the `comment_*` ops only, and always for them: `{body?, external_id?, id}`: CollabHub's comment UUID, the provider's comment id once known, the Markdown body as of the entry (none for a deletion). The author is the entry's `actor`. |
//! | `field`? | `title description status assignee priority due_date` |
//! | `idx` | the entry's 0-based position in the log |
//! | `integration`? | the integration's UUID |
//! | `log` | the log name |
//! | `logged_at` | when the store logged it |
//! | `observed_at` | when Ordonis received the change |
//! | `occurred_at`? | the provider's time of the change |
//! | `op` | `create set delete restore configure leave_scope enter_scope comment_add comment_edit comment_delete session_start session_activity session_state session_artifact link unlink`: `link` and `unlink` name the provider object in `subject.external` |
//! | `outcome` | `applied requested confirmed rejected reverted conflict` |
//! | `rule` | the field-policy rule that decided it |
//! | `session`? | for the `session_*` ops only, and always for them: `{activity?: {action?, body?, id, parameter?, result?, type}, artifact?: {id, kind?, title, url}, id, state?}`: the session's UUID; the activity appended (its client id and content, `type` ∈ `thought action elicitation response error prompt`), the artifact added, or the state after the entry (`active awaiting_input complete error stale`). The agent (with whom it acted for) is the entry's `actor`. |
//! | `subject` | `{external?: {id, integration, object_type, provider, url?}, task}`: the task's UUID and its external reference |
//! | `type` | `vera.change/v1` |
//!
//! Typed values are `{field, t, v?}` where `field` names the field the value belongs to and
//! `t` its type:
//!
//! | `t` | `v` | fields |
//! |---|---|---|
//! | `str` | the string | title, description |
//! | `status` | `{category, name}`, `category` ∈ `todo in_progress done` | status |
//! | `user` | the account id (no display name or e-mail) | assignee |
//! | `priority` | `{level, name}`, `level` ∈ `lowest low medium high highest` | priority |
//! | `date` | `YYYY-MM-DD` | due_date |
//! | `none` | — (no `v`) | assignee, priority, due_date when unset |
//!
//! Example (one line in reality):
//!
//! ```text
//! {"actor":{"id":"agt_7","kind":"agent","on_behalf_of":[{"grant":"asg_1","id":"usr_1","kind":"human"}],"provider":"internal"},
//!  "after":{"field":"status","t":"status","v":{"category":"done","name":"Done"}},
//!  "before":{"field":"status","t":"status","v":{"category":"in_progress","name":"In Progress"}},
//!  "cause":{"id":"0191…","kind":"internal_action"},"field":"status","idx":41,
//!  "log":"ordonis/ws/acme","logged_at":"2026-11-26T14:03:07.123456Z",
//!  "observed_at":"2026-11-26T14:03:07.101201Z","op":"set","outcome":"requested",
//!  "rule":"owner=provider;direction=both","subject":{"task":"0191…"},"type":"vera.change/v1"}
//! ```

pub mod checkpoint;
pub mod cosignature;
mod encode;
mod error;
pub mod export;
pub mod merkle;
mod notary;
pub mod note;
#[cfg(feature = "http-client")]
pub mod tile_client;
pub mod tiles;

pub use checkpoint::{Checkpoint, CheckpointSigner, TrustedKeys, check_consistency};
pub use cosignature::{WitnessKey, verify_cosignatures};
pub use encode::{
    ENTRY_TYPE, LOG_PREFIX, MAX_ENTRY_BYTES, MAX_SAFE_INTEGER, decode_entry, encode_entry,
    log_name, scan_idx_log, workspace_of_log,
};
pub use error::VeraError;
pub use export::{
    ExportCheck, ExportReport, ExportWriter, Receipt, verify_export, verify_export_dir,
};
pub use merkle::{
    EMPTY_ROOT, Hash, MerkleTree, RootBuilder, leaf_hash, node_hash, verify_consistency,
    verify_inclusion,
};
pub use notary::{Export, LogSnapshot, Notary, SignedCheckpoint};
pub use tiles::{TileId, TileKind, TileReader};
