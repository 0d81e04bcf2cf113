//! RFC 6962 / 9162 tree: known answers, byte equality with `ct-merkle`, mutation rejection,
//! proof size bounds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ordonis_core::vera::merkle::ceil_log2;
use ordonis_core::vera::{
    EMPTY_ROOT, Hash, MerkleTree, RootBuilder, leaf_hash, verify_consistency, verify_inclusion,
};
use sha2::Sha256;

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

// transparency-dev/merkle (RFC 6962) test vectors: leaf inputs and roots of sizes 1..=8.
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn kat_tree() -> MerkleTree {
    MerkleTree::from_leaves(LEAVES.iter().map(|l| leaf_hash(&hex::decode(l).unwrap())))
}

#[test]
fn rfc6962_known_answer_roots() {
    assert_eq!(
        EMPTY_ROOT,
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(MerkleTree::new().root(), EMPTY_ROOT);
    assert_eq!(RootBuilder::new().root(), EMPTY_ROOT);
    let t = kat_tree();
    let mut b = RootBuilder::new();
    for n in 1..=8u64 {
        b.push(t.leaf(n - 1).unwrap());
        assert_eq!(t.root_at(n).unwrap(), h(ROOTS[n as usize - 1]), "size {n}");
        assert_eq!(b.root(), h(ROOTS[n as usize - 1]), "streaming size {n}");
    }
}

#[test]
fn rfc6962_known_answer_proofs() {
    let t = kat_tree();
    let incl = t.inclusion_proof(5, 8).unwrap();
    assert_eq!(
        incl,
        vec![
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ]
    );
    verify_inclusion(t.leaf(5).unwrap(), 5, 8, &incl, &h(ROOTS[7])).unwrap();
    assert!(verify_inclusion(t.leaf(5).unwrap(), 4, 8, &incl, &h(ROOTS[7])).is_err());
    assert_eq!(t.inclusion_proof(2, 3).unwrap(), vec![h(ROOTS[1])]);
    let cons = t.consistency_proof(6, 8).unwrap();
    assert_eq!(
        cons,
        vec![
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ]
    );
    verify_consistency(6, 8, &h(ROOTS[5]), &h(ROOTS[7]), &cons).unwrap();
    assert!(verify_consistency(6, 8, &h(ROOTS[4]), &h(ROOTS[7]), &cons).is_err());
    assert_eq!(
        t.consistency_proof(2, 5).unwrap(),
        vec![
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ]
    );
    // Every proof of every size ≤ 8 verifies.
    for n in 1..=8 {
        let root = t.root_at(n).unwrap();
        for i in 0..n {
            let p = t.inclusion_proof(i, n).unwrap();
            verify_inclusion(t.leaf(i).unwrap(), i, n, &p, &root).unwrap();
        }
        for m in 0..=n {
            let p = t.consistency_proof(m, n).unwrap();
            verify_consistency(m, n, &t.root_at(m).unwrap(), &root, &p).unwrap();
        }
    }
}

fn item(i: u64) -> Vec<u8> {
    format!("entry {i}").into_bytes()
}

/// Every inclusion and consistency proof for every n ≤ 256 equals `ct-merkle`'s byte for
/// byte, and verifies.
#[test]
fn byte_equal_to_ct_merkle_up_to_256() {
    let mut oracle: MemoryBackedTree<Sha256, Vec<u8>> = MemoryBackedTree::new();
    let mut t = MerkleTree::new();
    let (mut incl, mut cons) = (0, 0);
    for n in 1..=256u64 {
        oracle.push(item(n - 1));
        t.push(leaf_hash(&item(n - 1)));
        let root = t.root();
        assert_eq!(
            oracle.root().as_bytes().as_slice(),
            root.as_slice(),
            "root {n}"
        );
        for i in 0..n {
            let mine = t.inclusion_proof(i, n).unwrap();
            let theirs = oracle.prove_inclusion(i as usize);
            assert_eq!(mine.concat(), theirs.as_bytes(), "inclusion {i} in {n}");
            verify_inclusion(t.leaf(i).unwrap(), i, n, &mine, &root).unwrap();
            incl += 1;
        }
        for m in 1..=n {
            let mine = t.consistency_proof(m, n).unwrap();
            let theirs = oracle.prove_consistency((n - m) as usize);
            assert_eq!(mine.concat(), theirs.as_bytes(), "consistency {m} -> {n}");
            verify_consistency(m, n, &t.root_at(m).unwrap(), &root, &mine).unwrap();
            cons += 1;
        }
    }
    assert_eq!((incl, cons), (32_896, 32_896));
}

fn flip(h: &Hash, byte: usize) -> Hash {
    let mut h = *h;
    h[byte % 32] ^= 1 << (byte % 8);
    h
}

/// Every mutation of every valid inclusion and consistency proof (all n ≤ 128, sampled n up
/// to 256) is rejected
/// (unless the mutated claim is itself true, which the test checks against the tree).
#[test]
fn every_mutation_of_a_valid_proof_is_rejected() {
    const N: u64 = 256;
    let t = MerkleTree::from_leaves((0..2 * N + 2).map(|i| leaf_hash(&item(i))));
    let roots: Vec<Hash> = (0..=2 * N + 2).map(|n| t.root_at(n).unwrap()).collect();
    let stranger = leaf_hash(b"not in the tree");
    let mut rejected = 0u64;
    // Every n ≤ 128, then every 8th n and the last ones up to 256 (debug-build time).
    for n in (1..=N).filter(|&n| n <= 128 || n % 8 == 0 || n > N - 3) {
        let root = roots[n as usize];
        for i in 0..n {
            let p = t.inclusion_proof(i, n).unwrap();
            let leaf = *t.leaf(i).unwrap();
            let mut bad: Vec<(Hash, u64, u64, Vec<Hash>, Hash)> = Vec::new();
            for k in 0..p.len() {
                let mut q = p.clone();
                q[k] = flip(&q[k], k * 7 + i as usize);
                bad.push((leaf, i, n, q.clone(), root));
                q.remove(k);
                bad.push((leaf, i, n, q, root));
            }
            let mut q = p.clone();
            q.push(leaf);
            bad.push((leaf, i, n, q, root));
            let mut q = p.clone();
            q.insert(0, leaf);
            bad.push((leaf, i, n, q, root));
            bad.push((leaf, i, n, p.clone(), flip(&root, i as usize)));
            bad.push((stranger, i, n, p.clone(), root));
            bad.push((flip(&leaf, 3), i, n, p.clone(), root));
            for j in [i.wrapping_sub(1), i + 1, i ^ 1, i ^ 2, n, u64::MAX] {
                if j != i {
                    bad.push((leaf, j, n, p.clone(), root));
                }
            }
            // Another size with that size's root (a proof presented against another
            // checkpoint), and the proofgen classes size × 2 and size ÷ 2 with this root. (A
            // size paired with another size's root is not a mutation a verifier can meet: both
            // come from one signed checkpoint.)
            for m in [n - 1, n + 1, 2 * n, n / 2] {
                if m != n && m <= 2 * N + 2 {
                    bad.push((leaf, i, m, p.clone(), roots[m as usize]));
                }
            }
            for m in [2 * n, n / 2] {
                if m != n {
                    bad.push((leaf, i, m, p.clone(), root));
                }
            }
            for (leaf2, i2, n2, q, r) in bad {
                if verify_inclusion(&leaf2, i2, n2, &q, &r).is_ok() {
                    // Only a true statement may verify.
                    assert!(
                        i2 < n2
                            && Some(&leaf2) == t.leaf(i2)
                            && r == roots[n2 as usize]
                            && q == t.inclusion_proof(i2, n2).unwrap(),
                        "forged inclusion accepted: leaf {i} size {n} -> {i2} {n2}"
                    );
                } else {
                    rejected += 1;
                }
            }
        }
        for m in 0..=n {
            let p = t.consistency_proof(m, n).unwrap();
            let (r1, r2) = (roots[m as usize], root);
            let mut bad: Vec<(u64, u64, Hash, Hash, Vec<Hash>)> = Vec::new();
            for k in 0..p.len() {
                let mut q = p.clone();
                q[k] = flip(&q[k], k * 5 + m as usize);
                bad.push((m, n, r1, r2, q.clone()));
                q.remove(k);
                bad.push((m, n, r1, r2, q));
            }
            let mut q = p.clone();
            q.push(r1);
            bad.push((m, n, r1, r2, q));
            let mut q = p.clone();
            q.insert(0, r1);
            bad.push((m, n, r1, r2, q));
            bad.push((m, n, flip(&r1, 1), r2, p.clone()));
            bad.push((m, n, r1, flip(&r2, 2), p.clone()));
            bad.push((m, n, r2, r1, p.clone()));
            bad.push((n, m, r2, r1, p.clone()));
            for (m2, n2) in [
                (m.wrapping_sub(1), n),
                (m + 1, n),
                (m, n - 1),
                (m, n + 1),
                (m * 2, n),
                (m, n * 2),
                (m / 2, n),
            ] {
                if (m2, n2) != (m, n) && m2 <= 2 * N + 2 && n2 <= 2 * N + 2 {
                    bad.push((m2, n2, roots[m2 as usize], roots[n2 as usize], p.clone()));
                }
            }
            for (m2, n2) in [(m * 2, n), (m, n * 2), (m / 2, n), (m, n / 2)] {
                if (m2, n2) != (m, n) {
                    bad.push((m2, n2, r1, r2, p.clone()));
                }
            }
            for (m2, n2, a, b, q) in bad {
                if verify_consistency(m2, n2, &a, &b, &q).is_ok() {
                    // From the empty tree every tree is consistent (empty proof).
                    let from_empty = m2 == 0 && a == EMPTY_ROOT && q.is_empty();
                    assert!(
                        from_empty
                            || m2 <= n2
                                && a == roots[m2 as usize]
                                && b == roots[n2 as usize]
                                && q == t.consistency_proof(m2, n2).unwrap(),
                        "forged consistency accepted: {m}->{n} mutated to {m2}->{n2}"
                    );
                } else {
                    rejected += 1;
                }
            }
        }
    }
    assert!(rejected > 300_000, "{rejected}");
}

#[test]
fn proof_sizes_are_bounded() {
    let big = 4096u64;
    let t = MerkleTree::from_leaves((0..big).map(|i| leaf_hash(&item(i))));
    for n in (1..=big).filter(|&n| n <= 256 || n % 61 == 0 || n.is_power_of_two() || n == big) {
        let step = if n <= 256 { 1 } else { n / 16 };
        let mut i = 0;
        while i < n {
            let p = t.inclusion_proof(i, n).unwrap();
            assert!(
                p.len() as u32 <= ceil_log2(n),
                "inclusion {i} in {n}: {}",
                p.len()
            );
            let c = t.consistency_proof(i + 1, n).unwrap();
            assert!(
                c.len() as u32 <= ceil_log2(n) + 1,
                "consistency {} -> {n}",
                i + 1
            );
            i += step;
        }
        let p = t.inclusion_proof(n - 1, n).unwrap();
        assert!(p.len() as u32 <= ceil_log2(n));
    }
    // A large, ragged tree: sampled indices.
    let n = (1u64 << 17) + 17;
    let t = MerkleTree::from_leaves((0..n).map(|i| {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&i.to_le_bytes());
        h
    }));
    let root = t.root();
    for k in 0..200u64 {
        let i = (k * 7919 * 104_729) % n;
        let p = t.inclusion_proof(i, n).unwrap();
        assert!(p.len() as u32 <= ceil_log2(n));
        verify_inclusion(t.leaf(i).unwrap(), i, n, &p, &root).unwrap();
        let c = t.consistency_proof(i + 1, n).unwrap();
        assert!(c.len() as u32 <= ceil_log2(n) + 1);
        verify_consistency(i + 1, n, &t.root_at(i + 1).unwrap(), &root, &c).unwrap();
    }
}

#[test]
fn proof_requests_out_of_range_are_errors() {
    let t = kat_tree();
    assert!(t.inclusion_proof(8, 8).is_err());
    assert!(t.inclusion_proof(0, 9).is_err());
    assert!(t.consistency_proof(5, 4).is_err());
    assert!(t.consistency_proof(1, 9).is_err());
    assert!(t.root_at(9).is_err());
    assert!(verify_inclusion(&EMPTY_ROOT, 0, 0, &[], &EMPTY_ROOT).is_err());
    assert!(verify_consistency(0, 0, &EMPTY_ROOT, &EMPTY_ROOT, &[]).is_ok());
    assert!(verify_consistency(0, 5, &t.root_at(5).unwrap(), &t.root_at(5).unwrap(), &[]).is_err());
}

/// RFC 6962's hashes, against SHA-256 of the prefixed bytes and a known answer.
#[test]
fn leaf_and_node_hashes_are_rfc_6962() {
    use ordonis_core::vera::node_hash;
    use sha2::{Digest, Sha256};
    // The leaf hash of the empty entry, as RFC 6962 test vectors give it.
    assert_eq!(
        hex::encode(leaf_hash(b"")),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
    let data: Vec<u8> = (0..300u32).map(|i| (i * 31 % 251) as u8).collect();
    for len in 0..=300 {
        let want: [u8; 32] = Sha256::digest([&[0u8][..], &data[..len]].concat()).into();
        assert_eq!(leaf_hash(&data[..len]), want, "len {len}");
    }
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    let want: [u8; 32] = Sha256::digest([&[1u8][..], &a, &b].concat()).into();
    assert_eq!(node_hash(&a, &b), want);
    assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
}

#[test]
fn ceil_log2_at_its_boundaries() {
    for (n, want) in [
        (0, 0),
        (1, 0),
        (2, 1),
        (3, 2),
        (4, 2),
        (5, 3),
        (8, 3),
        (9, 4),
        (1 << 40, 40),
        ((1 << 40) + 1, 41),
    ] {
        assert_eq!(ceil_log2(n), want, "{n}");
    }
}

/// `root` over a slice is the RFC 6962 root: the known answers, the empty tree included.
#[test]
fn root_of_a_slice_is_the_known_answer() {
    use ordonis_core::vera::merkle::root;
    assert_eq!(root(&[]), EMPTY_ROOT);
    let leaves: Vec<Hash> = LEAVES
        .iter()
        .map(|l| leaf_hash(&hex::decode(l).unwrap()))
        .collect();
    for (n, want) in ROOTS.iter().enumerate() {
        assert_eq!(root(&leaves[..=n]), h(want), "{} leaves", n + 1);
    }
}

/// The streaming builder and the tree count their leaves.
#[test]
fn sizes_and_emptiness_are_counted() {
    let mut b = RootBuilder::new();
    let mut t = MerkleTree::new();
    assert_eq!((b.size(), t.len(), t.is_empty()), (0, 0, true));
    for (i, l) in LEAVES.iter().enumerate() {
        let leaf = leaf_hash(&hex::decode(l).unwrap());
        b.push(&leaf);
        t.push(leaf);
        assert_eq!(b.size(), i as u64 + 1);
        assert_eq!(t.len(), i as u64 + 1);
        assert!(!t.is_empty());
        assert_eq!(b.root(), t.root());
    }
}
