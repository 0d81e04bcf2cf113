//! RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification.
//!
//! * leaf hash `SHA-256(0x00 || entry)`, node hash `SHA-256(0x01 || left || right)`;
//! * the root of `n > 1` leaves splits at `k`, the largest power of two smaller than `n`;
//!   the root of the empty tree is `SHA-256("")`;
//! * proofs are generated with the RFC 6962 §2.1.1/§2.1.2 `PATH` and `PROOF` algorithms and
//!   verified with the RFC 9162 §2.1.3.2/§2.1.4.2 algorithms.

use sha2::{Digest, Sha256};

use super::error::VeraError;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: `SHA-256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Longest proof accepted by the verifiers (a tree of 2^63 leaves needs 64 hashes).
const MAX_PROOF_LEN: usize = 65;

/// `SHA-256(prefix || data)`. (The `sha2` crate is built optimized in every profile, see the
/// workspace's `Cargo.toml`: tests hash at release speed.)
fn sha256_prefixed(prefix: u8, data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([prefix])
        .chain_update(data)
        .finalize()
        .into()
}

/// RFC 6962 leaf hash: `SHA-256(0x00 || bytes)`.
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    sha256_prefixed(0, bytes)
}

/// RFC 6962 interior node hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// ⌈log₂ n⌉ (0 for n ≤ 1): the most hashes an inclusion proof in a tree of `n` leaves holds.
pub fn ceil_log2(n: u64) -> u32 {
    if n <= 1 {
        0
    } else {
        64 - (n - 1).leading_zeros()
    }
}

/// The root of a list of leaf hashes (RFC 6962 `MTH`).
pub fn root(leaves: &[Hash]) -> Hash {
    let mut b = RootBuilder::new();
    for l in leaves {
        b.push(l);
    }
    b.root()
}

/// Computes a tree root from leaf hashes pushed one at a time, in O(log n) memory: the
/// streaming verifier's accumulator.
#[derive(Clone, Debug, Default)]
pub struct RootBuilder {
    /// Roots of the perfect subtrees the leaves so far form, largest (leftmost) first.
    stack: Vec<Hash>,
    size: u64,
}

impl RootBuilder {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: &Hash) {
        let mut h = *leaf;
        let mut n = self.size;
        // Each trailing 1 bit of the old size is a perfect subtree the new leaf completes.
        while n & 1 == 1 {
            if let Some(left) = self.stack.pop() {
                h = node_hash(&left, &h);
            }
            n >>= 1;
        }
        self.stack.push(h);
        self.size += 1;
    }

    /// Number of leaves pushed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some(last) = it.next() else {
            return EMPTY_ROOT;
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// An in-memory Merkle tree over leaf hashes that answers roots and proofs for any size up to
/// its length (so proofs against older checkpoints work). Keeps every perfect subtree hash:
/// about 2 × 32 bytes per leaf; proofs cost O(log² n) hashes.
#[derive(Clone, Debug, Default)]
pub struct MerkleTree {
    /// `levels[h][i]` is the root of leaves `i·2^h .. (i+1)·2^h`.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree over the given leaf hashes.
    pub fn from_leaves(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let mut t = Self::new();
        for l in leaves {
            t.push(l);
        }
        t
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(h);
            let len = row.len();
            if len % 2 == 1 {
                break;
            }
            h = node_hash(&row[len - 2], &row[len - 1]);
            level += 1;
        }
    }

    /// Number of leaves.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// True when the tree has no leaf.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hash of leaf `index`.
    pub fn leaf(&self, index: u64) -> Option<&Hash> {
        self.levels.first()?.get(usize::try_from(index).ok()?)
    }

    fn check_size(&self, size: u64) -> Result<(), VeraError> {
        if size > self.len() {
            return Err(VeraError::InvalidSizes(format!(
                "size {size} is larger than the tree ({})",
                self.len()
            )));
        }
        Ok(())
    }

    /// `MTH(D[start..start+n])`, for a range inside the tree.
    fn subtree(&self, start: u64, n: u64) -> Hash {
        if n == 0 {
            return EMPTY_ROOT;
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let h = n.trailing_zeros() as usize;
            return self.levels[h][(start >> h) as usize];
        }
        let k = split(n);
        node_hash(&self.subtree(start, k), &self.subtree(start + k, n - k))
    }

    /// The root of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, VeraError> {
        self.check_size(size)?;
        Ok(self.subtree(0, size))
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.subtree(0, self.len())
    }

    /// The inclusion proof (RFC 6962 `PATH`) of leaf `index` in the tree of the first `size`
    /// leaves: at most ⌈log₂ size⌉ hashes, leaf side first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, VeraError> {
        self.check_size(size)?;
        if index >= size {
            return Err(VeraError::IndexOutOfRange { index, size });
        }
        let mut proof = Vec::with_capacity(ceil_log2(size) as usize);
        self.path(index, 0, size, &mut proof);
        Ok(proof)
    }

    fn path(&self, m: u64, start: u64, n: u64, out: &mut Vec<Hash>) {
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, k, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, out);
            out.push(self.subtree(start, k));
        }
    }

    /// The consistency proof (RFC 6962 `PROOF`) between the trees of the first `old` and the
    /// first `new` leaves: at most ⌈log₂ new⌉ + 1 hashes; empty when `old` is 0 or `old == new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, VeraError> {
        self.check_size(new)?;
        if old > new {
            return Err(VeraError::InvalidSizes(format!(
                "old size {old} is larger than new size {new}"
            )));
        }
        let mut proof = Vec::new();
        if old > 0 {
            self.subproof(old, 0, new, true, &mut proof);
        }
        Ok(proof)
    }

    fn subproof(&self, m: u64, start: u64, n: u64, complete: bool, out: &mut Vec<Hash>) {
        if m == n {
            if !complete {
                out.push(self.subtree(start, n));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, k, complete, out);
            out.push(self.subtree(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.subtree(start, k));
        }
    }
}

fn fail(why: &str) -> VeraError {
    VeraError::InvalidProof(why.to_owned())
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2): that `leaf` is leaf `index` of the tree
/// of `size` leaves whose root is `root`. `size` and `root` must come from a verified
/// checkpoint, never from the proof's sender.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VeraError> {
    if index >= size {
        return Err(fail("index is not smaller than the tree size"));
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(fail("proof too long"));
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(fail("proof longer than the tree is deep"));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(fail("proof shorter than the tree is deep"));
    }
    if r != *root {
        return Err(fail("computed root does not match"));
    }
    Ok(())
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2): that the tree of `old_size` leaves with
/// root `old_root` is a prefix of the tree of `new_size` leaves with root `new_root`. Sizes
/// and roots must come from verified checkpoints.
///
/// `old_size == new_size` needs an empty proof and equal roots; `old_size == 0` needs an empty
/// proof and `old_root` equal to [`EMPTY_ROOT`].
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), VeraError> {
    if old_size > new_size {
        return Err(fail("old size is larger than new size"));
    }
    if proof.len() > MAX_PROOF_LEN {
        return Err(fail("proof too long"));
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(fail("proof between equal sizes must be empty"));
        }
        if old_root != new_root {
            return Err(fail("roots of equal sizes differ"));
        }
        return Ok(());
    }
    if old_size == 0 {
        if !proof.is_empty() {
            return Err(fail("proof from the empty tree must be empty"));
        }
        if *old_root != EMPTY_ROOT {
            return Err(fail("root of the empty tree is wrong"));
        }
        return Ok(());
    }
    let Some((&first, rest)) = proof.split_first() else {
        return Err(fail("empty proof"));
    };
    // Step 1: when the old size is a power of two, the old root is the first node.
    let (start, path): (Hash, &[Hash]) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        (first, rest)
    };
    let mut fnode = old_size - 1;
    let mut snode = new_size - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (start, start);
    for c in path {
        if snode == 0 {
            return Err(fail("proof longer than the tree is deep"));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(fail("proof shorter than the tree is deep"));
    }
    if fr != *old_root {
        return Err(fail("old root does not match"));
    }
    if sr != *new_root {
        return Err(fail("new root does not match"));
    }
    Ok(())
}
