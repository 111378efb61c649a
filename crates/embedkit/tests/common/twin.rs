//! The test family's oracle outputs (tests/expected/twin.json, from ONNX Runtime and
//! Hugging Face `tokenizers` in Python by scripts/oracle/gen_twin.py) and the checks every
//! front end's tests apply to them, on plain data: the library's tests use it as
//! `common::twin`, the CLI's include this file by path.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

pub struct Twin {
    pub texts: Vec<String>,
    pub dense: Vec<Vec<f32>>,
    pub sparse: Vec<BTreeMap<u32, f32>>,
    /// Tokens of each text, special tokens included, cut at the model's length.
    pub counts: Vec<usize>,
    pub tol: f32,
}

/// Reads the oracle from the repository at `root`.
pub fn expected(root: &Path) -> Twin {
    let p = root.join("tests/expected/twin.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let sparse = v["sparse"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| pairs(&s["indices"], &s["values"]))
        .collect();
    Twin {
        texts: serde_json::from_value(v["texts"].clone()).unwrap(),
        dense: serde_json::from_value(v["dense"].clone()).unwrap(),
        sparse,
        counts: serde_json::from_value(v["token_counts"].clone()).unwrap(),
        tol: v["tolerance"].as_f64().unwrap() as f32,
    }
}

/// A sparse vector given as parallel JSON arrays of indices and values.
pub fn pairs(indices: &Value, values: &Value) -> BTreeMap<u32, f32> {
    let i: Vec<u32> = serde_json::from_value(indices.clone()).unwrap();
    let w: Vec<f32> = serde_json::from_value(values.clone()).unwrap();
    i.into_iter().zip(w).collect()
}

impl Twin {
    /// The oracle of the texts at `keep` only.
    pub fn only(&self, keep: &[usize]) -> Twin {
        Twin {
            texts: keep.iter().map(|&i| self.texts[i].clone()).collect(),
            dense: keep.iter().map(|&i| self.dense[i].clone()).collect(),
            sparse: keep.iter().map(|&i| self.sparse[i].clone()).collect(),
            counts: keep.iter().map(|&i| self.counts[i]).collect(),
            tol: self.tol,
        }
    }

    /// Fails unless `got` holds one vector per text, each within the tolerance.
    pub fn check_dense(&self, what: &str, got: &[Vec<f32>]) {
        assert_eq!(got.len(), self.texts.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(&self.dense).enumerate() {
            assert_eq!(g.len(), w.len(), "{what} text {i}");
            let gap = g
                .iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(gap <= self.tol, "{what} text {i}: {gap:e}");
        }
    }

    /// As `check_dense` for sparse vectors; an index absent on one side counts as 0
    /// there.
    pub fn check_sparse(&self, what: &str, got: &[BTreeMap<u32, f32>]) {
        assert_eq!(got.len(), self.texts.len(), "{what}");
        for (i, (g, w)) in got.iter().zip(&self.sparse).enumerate() {
            let gap = g
                .keys()
                .chain(w.keys())
                .map(|k| (g.get(k).unwrap_or(&0.0) - w.get(k).unwrap_or(&0.0)).abs())
                .fold(0.0, f32::max);
            assert!(gap <= self.tol, "{what} text {i}: {gap:e}");
        }
    }
}
