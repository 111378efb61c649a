//! BGE-M3's oracle outputs (tests/expected/bge-m3.json, from FlagEmbedding 1.4.2 by
//! scripts/oracle/gen_m3.py) and the checks every front end's tests apply to them, on
//! plain data: the library's tests use it as `common::m3`, the CLI's and the server's
//! include this file by path.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// One text's multi-vector: its row count and the rows the oracle stored (index, values).
pub type Rows = (usize, Vec<(usize, Vec<f32>)>);

pub struct M3Expected {
    pub texts: Vec<String>,
    pub dense: Vec<Vec<f32>>,
    pub sparse: Vec<BTreeMap<u32, f32>>,
    pub multi: Vec<Rows>,
    /// Tokens of all texts, special tokens included.
    pub tokens: usize,
    pub tol: f32,
    /// sha256 of the seeded model's files the oracle ran (`bge-m3` folder).
    pub files: BTreeMap<String, String>,
}

/// Reads the oracle's outputs from the repository at `root`.
pub fn m3_expected(root: &Path) -> M3Expected {
    let dir = root.join("tests/expected");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("bge-m3.json")).unwrap()).unwrap();
    let dim = doc["dim"].as_u64().unwrap() as usize;
    let bytes = std::fs::read(dir.join(doc["colbert_file"].as_str().unwrap())).unwrap();
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut rows = floats.chunks(dim).map(<[f32]>::to_vec);
    let list = |k: &str| doc[k].as_array().unwrap().clone();
    M3Expected {
        texts: serde_json::from_value(doc["texts"].clone()).unwrap(),
        dense: serde_json::from_value(doc["dense"].clone()).unwrap(),
        sparse: list("sparse")
            .iter()
            .map(|s| {
                let ids: Vec<u32> = serde_json::from_value(s["indices"].clone()).unwrap();
                let vals: Vec<f32> = serde_json::from_value(s["values"].clone()).unwrap();
                ids.into_iter().zip(vals).collect()
            })
            .collect(),
        multi: list("colbert_rows")
            .iter()
            .zip(list("colbert_kept"))
            .map(|(n, kept)| {
                let kept: Vec<usize> = serde_json::from_value(kept).unwrap();
                let n = n.as_u64().unwrap() as usize;
                (n, kept.into_iter().zip(rows.by_ref()).collect())
            })
            .collect(),
        tokens: list("token_counts")
            .iter()
            .map(|n| n.as_u64().unwrap() as usize)
            .sum(),
        tol: doc["tolerance"].as_f64().unwrap() as f32,
        files: serde_json::from_value(doc["files"].clone()).unwrap(),
    }
}

/// Dense vectors within `tol` of the oracle's, value by value.
pub fn check_dense(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: texts");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what} text {i}: dimensions");
        for (j, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= tol,
                "{what} text {i} value {j}: {a} vs {b}"
            );
        }
    }
}

/// Sparse vectors (indices, values): indices ascending, weights positive, the oracle's
/// token ids with weights within `tol` (a weight within `tol` of zero may be on either
/// side of it).
pub fn check_sparse(
    what: &str,
    got: &[(Vec<u32>, Vec<f32>)],
    want: &[BTreeMap<u32, f32>],
    tol: f32,
) {
    assert_eq!(got.len(), want.len(), "{what}: texts");
    for (i, ((ids, vals), w)) in got.iter().zip(want).enumerate() {
        assert_eq!(ids.len(), vals.len(), "{what} text {i}");
        assert!(
            ids.windows(2).all(|p| p[0] < p[1]),
            "{what} text {i}: indices out of order"
        );
        assert!(
            vals.iter().all(|&v| v > 0.0),
            "{what} text {i}: a weight ≤ 0"
        );
        let g: BTreeMap<u32, f32> = ids.iter().copied().zip(vals.iter().copied()).collect();
        for id in g.keys().chain(w.keys()) {
            let (a, b) = (
                g.get(id).copied().unwrap_or(0.0),
                w.get(id).copied().unwrap_or(0.0),
            );
            assert!(
                (a - b).abs() <= tol,
                "{what} text {i} token {id}: {a} vs {b}"
            );
        }
    }
}

/// Multi-vectors (rows of each text): the oracle's row count, and its stored rows within
/// `tol`.
pub fn check_multi(what: &str, got: &[Vec<Vec<f32>>], want: &[Rows], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: texts");
    for (i, (g, (n, rows))) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), *n, "{what} text {i}: rows");
        for (r, w) in rows {
            for (j, (a, b)) in g[*r].iter().zip(w).enumerate() {
                assert!(
                    (a - b).abs() <= tol,
                    "{what} text {i} row {r} value {j}: {a} vs {b}"
                );
            }
        }
    }
}
