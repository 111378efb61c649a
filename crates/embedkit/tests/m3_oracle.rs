//! BGE-M3 against FlagEmbedding 1.4.2's `BGEM3FlagModel` (tests/expected/bge-m3.json,
//! written by scripts/oracle/gen_m3.py) on the seeded small models make_m3.py writes, in
//! both layouts: the hidden-state graph with torch-checkpoint heads (`BAAI/bge-m3`) and
//! one graph with the three outputs (`gpahal/bge-m3-onnx-int8`). The texts include
//! repeated tokens, pieces the vocabulary lacks, literal special tokens, eight languages
//! and one text of 743 tokens.

use std::collections::BTreeMap;

use crate::common;

use embedkit::registry::{BgeM3ModelDescription, BGE_M3};
use embedkit::{
    BgeM3Embedding, CallOptions, Capability, EmbeddingModel, LoadOptions, ModelKind, MultiVector,
    Purpose, SparseEmbedding,
};
use serde_json::Value;

use common::*;

struct Expected {
    texts: Vec<String>,
    dense: Vec<Vec<f32>>,
    sparse: Vec<BTreeMap<u32, f32>>,
    multi: Vec<Vec<Vec<f32>>>,
    tokens: usize,
    tol: f32,
}

fn expected() -> Expected {
    let root = repo_root().join("tests/expected");
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("bge-m3.json")).unwrap()).unwrap();
    let dim = doc["dim"].as_u64().unwrap() as usize;
    let bytes = std::fs::read(root.join(doc["colbert_file"].as_str().unwrap())).unwrap();
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut rows = floats.chunks(dim).map(<[f32]>::to_vec);
    let list = |k: &str| doc[k].as_array().unwrap().clone();
    Expected {
        texts: list("texts")
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect(),
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
            .map(|n| rows.by_ref().take(n.as_u64().unwrap() as usize).collect())
            .collect(),
        tokens: list("token_counts")
            .iter()
            .map(|n| n.as_u64().unwrap() as usize)
            .sum(),
        tol: tolerance(doc["tolerance"].as_f64().unwrap() as f32),
    }
}

/// The two layouts: (registered name, test-model folder, built-in it copies).
const LAYOUTS: [(&str, &str, &str); 2] = [
    ("test/bge-m3-tiny", "bge-m3", "BAAI/bge-m3"),
    (
        "test/bge-m3-int8-tiny",
        "bge-m3-int8",
        "gpahal/bge-m3-onnx-int8",
    ),
];

/// Registers the tiny models under test names (the built-ins' descriptions, 32 wide),
/// after checking that the folder holds the files the oracle ran.
fn register() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/expected/bge-m3.json")).unwrap(),
    )
    .unwrap();
    let dir = model_dir("tiny:bge-m3");
    for (file, sha) in doc["files"].as_object().unwrap() {
        assert_eq!(
            &sha256_file(&dir.join(file)),
            sha.as_str().unwrap(),
            "{file} is not the file the oracle ran: `make test-models`, or `make oracle-m3`"
        );
    }
    for (name, _, builtin) in LAYOUTS {
        if BGE_M3.contains(name) {
            continue;
        }
        let mut desc: BgeM3ModelDescription = BGE_M3.get(builtin).unwrap();
        desc.core.model = name.to_string();
        desc.core
            .additional_files
            .retain(|f| f.ends_with("model.onnx_data"));
        desc.dim = doc["dim"].as_u64().unwrap() as usize;
        BgeM3Embedding::register_model(desc).unwrap();
    }
}

fn options(folder: &str) -> LoadOptions {
    let mut load = LoadOptions::default();
    load.cache.specific_model_path = Some(model_dir(&format!("tiny:{folder}")));
    load.runtime.threads = Some(2);
    load.runtime.device = device();
    load
}

fn check_dense(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}");
    let (d, i, j) = max_abs_diff(got, want);
    assert!(d <= tol, "{what}: dense text {i} value {j} differs by {d}");
}

/// Same token ids (a weight within tolerance of zero may be on either side of it) and
/// weights within tolerance; indices ascending.
fn check_sparse(what: &str, got: &[SparseEmbedding], want: &[BTreeMap<u32, f32>], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.indices.windows(2).all(|p| p[0] < p[1]),
            "{what} {i}: order"
        );
        assert!(
            g.values.iter().all(|&v| v > 0.0),
            "{what} {i}: a weight ≤ 0"
        );
        let g = g.as_dict();
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

fn check_multi(what: &str, got: &[MultiVector], want: &[Vec<Vec<f32>>], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.nrows(), w.len(), "{what} text {i}: rows");
        let g: Vec<Vec<f32>> = g.outer_iter().map(|r| r.to_vec()).collect();
        let (d, r, _) = max_abs_diff(&g, w);
        assert!(d <= tol, "{what} text {i} row {r}: differs by {d}");
    }
}

#[test]
fn both_layouts_match_flagembedding_batched_and_alone() {
    register();
    let want = expected();
    for (name, folder, _) in LAYOUTS {
        let model = BgeM3Embedding::builder(name)
            .load_options(options(folder))
            .build()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for batch in [8, 1] {
            let out = model.embed(&want.texts, Some(batch)).unwrap();
            let what = format!("{name} batch {batch}");
            let dense: Vec<Vec<f32>> = out.iter().map(|o| o.dense.clone()).collect();
            let sparse: Vec<SparseEmbedding> = out.iter().map(|o| o.sparse.clone()).collect();
            let multi: Vec<MultiVector> = out.iter().map(|o| o.multi.clone()).collect();
            check_dense(&what, &dense, &want.dense, want.tol);
            check_sparse(&what, &sparse, &want.sparse, want.tol);
            check_multi(&what, &multi, &want.multi, want.tol);
        }
        assert_eq!(
            model.token_count(&want.texts).unwrap(),
            want.tokens,
            "{name}"
        );
    }
}

#[test]
fn the_handle_offers_three_outputs_and_queries_embed_as_documents() {
    register();
    let want = expected();
    let texts: Vec<&str> = want.texts.iter().map(String::as_str).collect();
    for (name, folder, _) in LAYOUTS {
        let model = EmbeddingModel::load(name, options(folder)).unwrap();
        assert_eq!(model.kind(), ModelKind::BgeM3);
        for c in [
            Capability::DenseText,
            Capability::SparseText,
            Capability::MultiVectorText,
            Capability::Tokens,
        ] {
            assert!(model.capabilities().contains(&c), "{name} lacks {c}");
        }
        assert!(model.embed_images(&[], &CallOptions::default()).is_err());
        let all = model
            .embed_all(
                &texts,
                &[
                    Capability::DenseText,
                    Capability::SparseText,
                    Capability::MultiVectorText,
                ],
                &CallOptions::default().batch_size(Some(5)),
            )
            .unwrap();
        check_dense(name, all.dense.as_ref().unwrap(), &want.dense, want.tol);
        check_sparse(name, all.sparse.as_ref().unwrap(), &want.sparse, want.tol);
        check_multi(name, all.multi.as_ref().unwrap(), &want.multi, want.tol);
        let sparse_only = model
            .embed_all(&texts, &[Capability::SparseText], &CallOptions::default())
            .unwrap();
        assert!(sparse_only.dense.is_none() && sparse_only.multi.is_none());
        let query = CallOptions::default().purpose(Purpose::Query);
        let dense = model.embed_dense(&texts, &query).unwrap();
        check_dense(name, &dense, &want.dense, want.tol);
        let sparse = model.embed_sparse(&texts, &query).unwrap();
        check_sparse(name, &sparse, &want.sparse, want.tol);
        let multi = model.embed_multi(&texts, &query).unwrap();
        check_multi(name, &multi, &want.multi, want.tol);
        // Not a Matryoshka model: only its own size.
        let short = CallOptions::default().dimensions(Some(16));
        assert!(model.embed_dense(&texts[..1], &short).is_err());
    }
}

#[test]
fn a_missing_or_wrong_head_is_a_clear_error() {
    register();
    let src = model_dir("tiny:bge-m3");
    let dir = tmp_dir("m3-heads");
    copy_dir(&src, &dir);
    std::fs::remove_file(dir.join("sparse_linear.pt")).unwrap();
    let mut load = options("bge-m3");
    load.cache.specific_model_path = Some(dir.clone());
    let err = load_err(load.clone(), "a missing head must fail");
    assert!(err.contains("sparse_linear.pt"), "{err}");
    // A head of the wrong width: the ColBERT checkpoint where the sparse one belongs.
    std::fs::copy(dir.join("colbert_linear.pt"), dir.join("sparse_linear.pt")).unwrap();
    let err = load_err(load.clone(), "a wrong head must fail");
    assert!(err.contains("sparse_linear.pt"), "{err}");
    // Not a checkpoint at all.
    std::fs::write(dir.join("sparse_linear.pt"), b"not a zip").unwrap();
    let err = load_err(load, "garbage must fail");
    assert!(err.contains("sparse_linear.pt"), "{err}");
}

fn load_err(load: LoadOptions, why: &str) -> String {
    match EmbeddingModel::load("test/bge-m3-tiny", load) {
        Ok(_) => panic!("{why}"),
        Err(e) => e.to_string(),
    }
}

fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}
