//! The notary: reads a workspace's log through the [`Ledger`] contract, signs and stores
//! checkpoints, and produces exports, receipts and consistency proofs.

use std::path::Path;

use super::checkpoint::{Checkpoint, CheckpointSigner};
use super::encode::{log_name, scan_idx_log};
use super::error::VeraError;
use super::export::{ExportWriter, Receipt};
use super::merkle::{Hash, MerkleTree, RootBuilder, leaf_hash};
use crate::ids::WorkspaceId;
use crate::ledger::{Ledger, LedgerEntry, StoredCheckpoint};

/// Entries read per [`Ledger::ledger_entries`] call.
const PAGE: usize = 4096;

/// Checks that a stored entry is entry `at` of log `origin`: its index, its leaf hash and
/// the index and log its bytes name.
pub(crate) fn check_entry(e: &LedgerEntry, at: u64, origin: &str) -> Result<(), VeraError> {
    if e.idx != at {
        return Err(VeraError::Integrity(format!(
            "entry {at} is stored with index {}: the log has a gap",
            e.idx
        )));
    }
    if leaf_hash(&e.bytes) != e.leaf_hash {
        return Err(VeraError::Integrity(format!(
            "entry {at}: stored leaf hash does not match its bytes"
        )));
    }
    match scan_idx_log(&e.bytes) {
        Some((i, log)) if i == at && log == origin => Ok(()),
        _ => Err(VeraError::Integrity(format!(
            "entry {at}: its bytes do not name index {at} of log {origin}"
        ))),
    }
}

/// A checkpoint with its signed note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The body.
    pub checkpoint: Checkpoint,
    /// The signed note text (what is stored and handed out).
    pub note: String,
}

/// A workspace's log as read from the store and checked: entry bytes and the tree.
#[derive(Clone, Debug)]
pub struct LogSnapshot {
    /// The log's name (checkpoint origin).
    pub origin: String,
    /// Every entry's canonical bytes, in index order.
    pub entries: Vec<Vec<u8>>,
    /// The Merkle tree over their leaf hashes.
    pub tree: MerkleTree,
}

/// A log export: the entries and the checkpoint covering exactly them.
#[derive(Clone, Debug)]
pub struct Export {
    /// The checkpoint.
    pub checkpoint: SignedCheckpoint,
    /// The entries' canonical bytes, in index order.
    pub entries: Vec<Vec<u8>>,
}

impl Export {
    /// Writes the export directory (`checkpoint` and `entries`, see
    /// [the export format](super::export)), creating the directory if needed.
    pub fn write_dir(&self, dir: &Path) -> Result<(), VeraError> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("checkpoint"), &self.checkpoint.note)?;
        let file = std::fs::File::create(dir.join("entries"))?;
        let mut w = ExportWriter::new(std::io::BufWriter::new(file))?;
        for e in &self.entries {
            w.push(e)?;
        }
        w.finish()?;
        Ok(())
    }
}

/// Signs checkpoints of workspace logs and produces exports, receipts and proofs.
///
/// Each call reads the whole log (O(n) time, about 100 bytes of memory per entry); it checks
/// on the way that indexes are gapless, that every stored leaf hash matches its bytes and that
/// every entry names the workspace's log.
pub struct Notary<'a> {
    ledger: &'a dyn Ledger,
    signer: &'a CheckpointSigner,
}

impl std::fmt::Debug for Notary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notary")
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl<'a> Notary<'a> {
    /// A notary over a ledger, signing with `signer`.
    pub fn new(ledger: &'a dyn Ledger, signer: &'a CheckpointSigner) -> Self {
        Self { ledger, signer }
    }

    /// Reads and checks a workspace's whole log.
    pub async fn snapshot(&self, ws: &WorkspaceId) -> Result<LogSnapshot, VeraError> {
        let origin = log_name(ws);
        let size = self.ledger.ledger_size(ws).await?;
        let mut entries = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        let mut tree = MerkleTree::new();
        while (entries.len() as u64) < size {
            let from = entries.len() as u64;
            let want = usize::try_from(size - from).unwrap_or(PAGE).min(PAGE);
            let page = self.ledger.ledger_entries(ws, from, want).await?;
            if page.is_empty() {
                return Err(VeraError::Integrity(format!(
                    "the store reports {size} entries but returns none from {from}"
                )));
            }
            for e in page.into_iter().take(want) {
                check_entry(&e, entries.len() as u64, &origin)?;
                tree.push(e.leaf_hash);
                entries.push(e.bytes);
            }
        }
        Ok(LogSnapshot {
            origin,
            entries,
            tree,
        })
    }

    /// The latest stored checkpoint, parsed, with its note; refused when it does not describe
    /// log `origin` at its stored size.
    async fn stored_checkpoint(
        &self,
        ws: &WorkspaceId,
        origin: &str,
    ) -> Result<Option<(Checkpoint, String)>, VeraError> {
        let Some(prev) = self.ledger.latest_checkpoint(ws).await? else {
            return Ok(None);
        };
        let cp = Checkpoint::parse_unverified(&prev.note)?;
        if cp.origin != origin || cp.size != prev.size {
            return Err(VeraError::Integrity(format!(
                "the stored checkpoint of size {} does not describe log {origin}",
                prev.size
            )));
        }
        Ok(Some((cp, prev.note)))
    }

    /// The checkpoint of a log of `size` entries with root `root`: the latest stored one
    /// (`prev`) when it already covers the log, otherwise a new signed and stored one.
    /// `prev_root` is the log's root at `prev`'s size (`None` when the log is shorter).
    /// Refuses to sign a tree the stored checkpoint is not a prefix of.
    async fn sign_or_reuse(
        &self,
        ws: &WorkspaceId,
        checkpoint: Checkpoint,
        prev: Option<(Checkpoint, String)>,
        prev_root: Option<Hash>,
    ) -> Result<SignedCheckpoint, VeraError> {
        let size = checkpoint.size;
        if let Some((cp, note)) = prev {
            if cp.size > size {
                return Err(VeraError::Integrity(format!(
                    "the log has {size} entries but a checkpoint of size {} exists: \
                     entries were lost",
                    cp.size
                )));
            }
            if prev_root != Some(cp.root) {
                return Err(VeraError::Integrity(format!(
                    "refusing to sign: the log's first {} entries no longer match the \
                     stored checkpoint",
                    cp.size
                )));
            }
            if cp.size == size {
                return Ok(SignedCheckpoint {
                    checkpoint: cp,
                    note,
                });
            }
        }
        let note = self.signer.sign(&checkpoint)?;
        self.ledger
            .save_checkpoint(
                ws,
                &StoredCheckpoint {
                    size,
                    note: note.clone(),
                },
            )
            .await?;
        Ok(SignedCheckpoint { checkpoint, note })
    }

    /// The checkpoint for a snapshot (see [`Notary::sign_or_reuse`]).
    async fn checkpoint_of(
        &self,
        ws: &WorkspaceId,
        snap: &LogSnapshot,
    ) -> Result<SignedCheckpoint, VeraError> {
        let size = snap.tree.len();
        let prev = self.stored_checkpoint(ws, &snap.origin).await?;
        let prev_root = match &prev {
            Some((cp, _)) if cp.size <= size => Some(snap.tree.root_at(cp.size)?),
            _ => None,
        };
        let checkpoint = Checkpoint {
            origin: snap.origin.clone(),
            size,
            root: snap.tree.root(),
        };
        self.sign_or_reuse(ws, checkpoint, prev, prev_root).await
    }

    /// Signs and stores a checkpoint of the workspace's log as it is now (or returns the
    /// latest stored one when the log has not grown since).
    ///
    /// Reads the log page by page into a [`RootBuilder`]: O(log n) memory, whatever the
    /// log's size (the streamed export signs through it before streaming the entries).
    pub async fn checkpoint(&self, ws: &WorkspaceId) -> Result<SignedCheckpoint, VeraError> {
        let origin = log_name(ws);
        let prev = self.stored_checkpoint(ws, &origin).await?;
        let size = self.ledger.ledger_size(ws).await?;
        let mut roots = RootBuilder::new();
        let mut prev_root = None;
        let mut check_prev = |roots: &RootBuilder| {
            if let Some((cp, _)) = &prev
                && roots.size() == cp.size
            {
                prev_root = Some(roots.root());
            }
        };
        check_prev(&roots);
        while roots.size() < size {
            let from = roots.size();
            let want = usize::try_from(size - from).unwrap_or(PAGE).min(PAGE);
            let page = self.ledger.ledger_entries(ws, from, want).await?;
            if page.is_empty() {
                return Err(VeraError::Integrity(format!(
                    "the store reports {size} entries but returns none from {from}"
                )));
            }
            for e in page.into_iter().take(want) {
                check_entry(&e, roots.size(), &origin)?;
                roots.push(&e.leaf_hash);
                check_prev(&roots);
            }
        }
        let checkpoint = Checkpoint {
            origin,
            size,
            root: roots.root(),
        };
        self.sign_or_reuse(ws, checkpoint, prev, prev_root).await
    }

    /// An export of the whole log with a checkpoint covering it.
    pub async fn export(&self, ws: &WorkspaceId) -> Result<Export, VeraError> {
        let snap = self.snapshot(ws).await?;
        let checkpoint = self.checkpoint_of(ws, &snap).await?;
        Ok(Export {
            checkpoint,
            entries: snap.entries,
        })
    }

    /// One entry's bytes and its receipt against a checkpoint covering the whole log.
    pub async fn receipt(
        &self,
        ws: &WorkspaceId,
        index: u64,
    ) -> Result<(Vec<u8>, Receipt), VeraError> {
        let mut snap = self.snapshot(ws).await?;
        let cp = self.checkpoint_of(ws, &snap).await?;
        let proof = snap.tree.inclusion_proof(index, cp.checkpoint.size)?;
        let at = usize::try_from(index).map_err(|_| VeraError::IndexOutOfRange {
            index,
            size: cp.checkpoint.size,
        })?;
        let entry = std::mem::take(&mut snap.entries[at]);
        Ok((
            entry,
            Receipt {
                index,
                proof,
                checkpoint: cp.note,
            },
        ))
    }

    /// The consistency proof between the log's first `old` and first `new` entries.
    pub async fn consistency_proof(
        &self,
        ws: &WorkspaceId,
        old: u64,
        new: u64,
    ) -> Result<Vec<Hash>, VeraError> {
        let snap = self.snapshot(ws).await?;
        snap.tree.consistency_proof(old, new)
    }
}
