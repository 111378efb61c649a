//! The test family (feature `test-family`) against its oracle (tests/expected/twin.json,
//! `scripts/oracle/gen_twin.py`: ONNX Runtime and Hugging Face `tokenizers` in Python,
//! one text at a time): each output alone and both from one pass, in batches of several
//! sizes, through the capability handle only.

use crate::common;

use std::collections::BTreeMap;

use embedkit::{CacheOptions, CallOptions, Capability, EmbeddingModel, LoadOptions, ModelKind};
use serde_json::Value;

use common::*;

struct Twin {
    texts: Vec<String>,
    dense: Vec<Vec<f32>>,
    sparse: Vec<BTreeMap<u32, f32>>,
    counts: Vec<usize>,
    tol: f32,
}

fn expected() -> Twin {
    let p = repo_root().join("tests/expected/twin.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let sparse = v["sparse"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let i: Vec<u32> = serde_json::from_value(s["indices"].clone()).unwrap();
            let w: Vec<f32> = serde_json::from_value(s["values"].clone()).unwrap();
            i.into_iter().zip(w).collect()
        })
        .collect();
    Twin {
        texts: serde_json::from_value(v["texts"].clone()).unwrap(),
        dense: serde_json::from_value(v["dense"].clone()).unwrap(),
        sparse,
        counts: serde_json::from_value(v["token_counts"].clone()).unwrap(),
        tol: v["tolerance"].as_f64().unwrap() as f32,
    }
}

/// Largest difference, an index absent on one side counting as 0 there.
fn sparse_gap(got: &embedkit::SparseEmbedding, want: &BTreeMap<u32, f32>) -> f32 {
    let got = got.as_dict();
    got.keys()
        .chain(want.keys())
        .map(|k| (got.get(k).copied().unwrap_or(0.0) - want.get(k).copied().unwrap_or(0.0)).abs())
        .fold(0.0, f32::max)
}

#[test]
fn the_test_family_matches_its_oracle_through_the_handle() {
    let want = expected();
    let load = LoadOptions {
        cache: CacheOptions {
            specific_model_path: Some(model_dir("tiny:twin-64")),
            ..Default::default()
        },
        ..Default::default()
    };
    let model = EmbeddingModel::load("embedkit/test-twin", load).unwrap();
    assert_eq!(model.kind(), ModelKind::Twin);
    assert_eq!(
        model.capabilities(),
        [
            Capability::DenseText,
            Capability::SparseText,
            Capability::Tokens
        ]
    );
    assert_eq!(model.dim(), Some(64));
    let texts: Vec<&str> = want.texts.iter().map(String::as_str).collect();
    for batch in [None, Some(3)] {
        let o = CallOptions::new().batch_size(batch);
        let dense = model.embed_dense(&texts, &o).unwrap();
        let sparse = model.embed_sparse(&texts, &o).unwrap();
        let both = model
            .embed_all(&texts, &[Capability::DenseText, Capability::SparseText], &o)
            .unwrap();
        let both_dense = both.dense.unwrap();
        let both_sparse = both.sparse.unwrap();
        assert!(both.multi.is_none());
        for i in 0..texts.len() {
            for (what, got) in [("dense", &dense[i]), ("both", &both_dense[i])] {
                let gap = got
                    .iter()
                    .zip(&want.dense[i])
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert_eq!(got.len(), 64);
                assert!(gap <= want.tol, "{what} text {i} batch {batch:?}: {gap:e}");
            }
            for (what, got) in [("sparse", &sparse[i]), ("both", &both_sparse[i])] {
                let gap = sparse_gap(got, &want.sparse[i]);
                assert!(gap <= want.tol, "{what} text {i} batch {batch:?}: {gap:e}");
            }
        }
    }
    // Tokens as the oracle counted them (cut at the model's 128).
    let counted = model
        .token_count(&texts, embedkit::Purpose::Document, false)
        .unwrap();
    assert_eq!(counted, want.counts.iter().sum::<usize>());
    // What it lacks is refused by name.
    let e = model.embed_multi(&["a"], &CallOptions::new()).unwrap_err();
    assert_eq!(e.kind(), embedkit::ErrorKind::Unsupported, "{e}");
}
