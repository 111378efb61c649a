//! The capability handle: one `EmbeddingModel` for a model of any family, loaded by name
//! (the registry picks the family), gives fastembed's outputs for every capability the
//! model offers, refuses the ones it lacks before any work, and applies the per-call
//! options (`dimensions`, `normalize`).

use crate::common;

use embedkit::{
    CallOptions, Capability, EmbeddingModel, Error, ImageInput, LoadOptions, ModelKind, Operations,
    Purpose,
};
use serde_json::Value;

use common::*;

fn cases(file: &str) -> Value {
    let p = repo_root().join("tests/expected").join(file);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn case(file: &str, name: &str) -> Value {
    cases(file)["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name} in {file}"))
        .clone()
}

/// The case's model through the handle, from the files the oracle ran.
fn load(case: &Value) -> EmbeddingModel {
    let mut load = LoadOptions::default();
    load.cache.specific_model_path = Some(checked_model_dir(case));
    load.runtime.threads = Some(2);
    load.runtime.device = device();
    let name = case["model"].as_str().unwrap();
    EmbeddingModel::load(name, load).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn floats(file: &str) -> Vec<f32> {
    let bytes = std::fs::read(repo_root().join("tests/expected").join(file)).unwrap();
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The oracle's matrices of a multi-vector case, as rows.
fn matrices(case: &Value) -> Vec<Vec<Vec<f32>>> {
    let dim = case["dim"].as_u64().unwrap() as usize;
    let all = floats(case["data_file"].as_str().unwrap());
    let mut rows = all.chunks(dim).map(<[f32]>::to_vec);
    case["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| rows.by_ref().take(n.as_u64().unwrap() as usize).collect())
        .collect()
}

fn assert_matrices(name: &str, got: &[embedkit::MultiVector], want: &[Vec<Vec<f32>>], tol: f32) {
    assert_eq!(got.len(), want.len(), "{name}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let g: Vec<Vec<f32>> = g.outer_iter().map(|r| r.to_vec()).collect();
        let (d, _, _) = max_abs_diff(&g, w);
        assert!(d <= tol, "{name} input {i}: max difference {d}");
    }
}

fn images(case: &Value) -> Vec<ImageInput> {
    case["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            ImageInput::from(
                repo_root()
                    .join("tests/data/images")
                    .join(i.as_str().unwrap()),
            )
        })
        .collect()
}

fn unsupported(r: embedkit::Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(Error::Unsupported(m)) => m,
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn every_family_through_one_handle_matches_fastembed() {
    let o = CallOptions::new();
    let q = CallOptions::new().purpose(Purpose::Query);

    // Dense texts, and the same texts as the token ids the model gives.
    let c = case("cases.json", "minilm-fp32-edge");
    let tol = tolerance(cases("cases.json")["tolerance"].as_f64().unwrap() as f32);
    let m = load(&c);
    assert_eq!(m.kind(), ModelKind::Dense);
    let texts = inputs("edge");
    let want = expected(&c);
    let (d, _, _) = max_abs_diff(&m.embed_dense(&texts, &o).unwrap(), &want);
    assert!(d <= tol, "dense: {d}");
    let ids = m.tokenize(&texts).unwrap();
    let (d, _, _) = max_abs_diff(&m.embed_token_ids(&ids, &o).unwrap(), &want);
    assert!(d <= tol, "dense by token ids: {d}");
    let all = m.embed_all(&texts, &[Capability::DenseText], &o).unwrap();
    assert!(all.sparse.is_none() && all.multi.is_none());
    let (d, _, _) = max_abs_diff(&all.dense.unwrap(), &want);
    assert!(d <= tol, "dense by embed_all: {d}");

    // Sparse documents and queries.
    let all_sparse = cases("sparse_cases.json");
    let tol = tolerance(all_sparse["tolerance"].as_f64().unwrap() as f32);
    for (name, opts) in [("splade-tiny-edge", &o), ("splade-tiny-query", &q)] {
        let c = case("sparse_cases.json", name);
        let m = load(&c);
        let got = m.embed_sparse(&inputs("edge"), opts).unwrap();
        let want = c["results"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let idx: Vec<u32> = serde_json::from_value(w["indices"].clone()).unwrap();
            let val: Vec<f32> = serde_json::from_value(w["values"].clone()).unwrap();
            assert_eq!(g.indices, idx, "{name} input {i}");
            for (a, b) in g.values.iter().zip(&val) {
                assert!((a - b).abs() <= tol, "{name} input {i}: {a} vs {b}");
            }
        }
    }

    // Multi-vectors: ColBERT documents and (expanded) queries.
    let tol = tolerance(cases("late_cases.json")["tolerance"].as_f64().unwrap() as f32);
    for (name, opts) in [("colbert-docs", &o), ("colbert-queries", &q)] {
        let c = case("late_cases.json", name);
        let got = load(&c).embed_multi(&inputs("edge"), opts).unwrap();
        assert_matrices(name, &got, &matrices(&c), tol);
    }

    // Pair scores.
    let c = case("rerank_cases.json", "rerank-msmarco-edge");
    let tol = tolerance(cases("rerank_cases.json")["tolerance"].as_f64().unwrap() as f32);
    let query = c["query"].as_str().unwrap();
    let pairs: Vec<(&str, String)> = inputs("edge").into_iter().map(|d| (query, d)).collect();
    let got = load(&c).score_pairs(&pairs, &o).unwrap();
    let want: Vec<f32> = serde_json::from_value(c["scores"].clone()).unwrap();
    let (d, _, _) = max_abs_diff(&[got], &[want]);
    assert!(d <= tol, "scores: {d}");

    // Dense images.
    let c = case("image_cases.json", "image-clip");
    let tol = tolerance(cases("image_cases.json")["tolerance"].as_f64().unwrap() as f32);
    let got = load(&c).embed_images(&images(&c), &o).unwrap();
    let (d, _, _) = max_abs_diff(&got, &expected(&c));
    assert!(d <= tol, "images: {d}");

    // Multi-vectors of texts and of images from one multimodal model.
    let tol = tolerance(
        cases("multimodal_cases.json")["tolerance"]
            .as_f64()
            .unwrap() as f32,
    );
    let c = case("multimodal_cases.json", "colpali-text-b256");
    let m = load(&c);
    let got = m.embed_multi(&inputs("edge_short"), &o).unwrap();
    assert_matrices("colpali texts", &got, &matrices(&c), tol);
    let c = case("multimodal_cases.json", "colpali-image");
    let got = m.embed_images_multi(&images(&c), &o).unwrap();
    assert_matrices("colpali images", &got, &matrices(&c), tol);
}

#[test]
fn each_family_states_its_capabilities_and_refuses_the_rest() {
    use Capability as C;
    let o = CallOptions::new();
    let table = [
        (
            case("cases.json", "minilm-fp32-edge"),
            &[C::DenseText, C::DenseTokenIds, C::TokenVectors, C::Tokens][..],
        ),
        (
            case("cases.json", "static-potion"),
            &[C::DenseText, C::DenseTokenIds, C::Tokens][..],
        ),
        (
            case("sparse_cases.json", "splade-tiny-edge"),
            &[C::SparseText, C::Tokens][..],
        ),
        (
            case("late_cases.json", "colbert-docs"),
            &[C::MultiVectorText, C::Tokens][..],
        ),
        (
            case("rerank_cases.json", "rerank-msmarco-edge"),
            &[C::PairScores][..],
        ),
        (case("image_cases.json", "image-clip"), &[C::DenseImage][..]),
        (
            case("multimodal_cases.json", "colpali-image"),
            &[C::MultiVectorText, C::MultiVectorImage][..],
        ),
    ];
    let img = [ImageInput::from(
        repo_root().join("tests/data/images/photo.png"),
    )];
    for (c, caps) in table {
        let m = load(&c);
        assert_eq!(m.capabilities(), caps, "{}", m.name());
        for cap in Capability::ALL {
            let offered = m.can(cap);
            let lacking = |msg: String| {
                assert!(
                    !offered,
                    "{}: {cap} is offered but refused: {msg}",
                    m.name()
                );
                assert!(msg.contains(m.name()) && msg.contains(cap.name()), "{msg}");
            };
            let refused = match cap {
                C::DenseText => m.embed_dense(&["a"], &o).err(),
                C::DenseTokenIds => m.embed_token_ids(&[vec![101, 102]], &o).err(),
                C::DenseImage => m.embed_images(&img, &o).err(),
                C::SparseText => m.embed_sparse(&["a"], &o).err(),
                C::MultiVectorText => m.embed_multi(&["a"], &o).err(),
                C::MultiVectorImage => m.embed_images_multi(&img, &o).err(),
                C::TokenVectors => m.embed_token_vectors(&["a"], &o).err(),
                C::PairScores => m.score_pairs(&[("a", "b")], &o).err(),
                C::Tokens => m.tokens(&["a"]).err(),
                other => panic!("{other}: add its operation to this table"),
            };
            match refused {
                Some(e) if !offered => lacking(unsupported(Err::<(), _>(e))),
                Some(e) => panic!("{}: {cap} failed: {e}", m.name()),
                None => assert!(offered, "{}: {cap} is not offered but ran", m.name()),
            }
        }
        // Several outputs at once: only those offered.
        let texts_out = [C::DenseText, C::SparseText, C::MultiVectorText];
        let wanted: Vec<C> = texts_out.into_iter().filter(|&c| m.can(c)).collect();
        if !wanted.is_empty() {
            m.embed_all(&["a", "b"], &wanted, &o).unwrap();
        }
        if let Some(&missing) = texts_out.iter().find(|&&c| !m.can(c)) {
            unsupported(m.embed_all(&["a"], &[missing], &o));
        }
    }
}

#[test]
fn dimensions_shorten_matryoshka_models_only() {
    // nomic-embed-text-v1.5's architecture, which the registry marks Matryoshka.
    let c = case("cases.json", "mean-nomic");
    let m = load(&c);
    assert!(m.matryoshka());
    let texts = inputs(c["inputs"].as_str().unwrap());
    let full = expected(&c);
    let dim = full[0].len();
    let got = m
        .embed_dense(&texts, &CallOptions::new().dimensions(Some(64)))
        .unwrap();
    assert!(got.iter().all(|v| v.len() == 64));
    for (g, w) in got.iter().zip(&full) {
        // Matryoshka: the oracle's first 64 values, at unit length.
        let norm: f32 = w[..64].iter().map(|x| x * x).sum::<f32>().sqrt();
        let want: Vec<f32> = w[..64].iter().map(|x| x / norm).collect();
        let (d, _, _) = max_abs_diff(std::slice::from_ref(g), &[want]);
        assert!(d <= 1e-4, "{d}");
    }
    // Its own size is no change; 0 and more than its size are refused.
    let same = m
        .embed_dense(&texts[..2], &CallOptions::new().dimensions(Some(dim)))
        .unwrap();
    let (d, _, _) = max_abs_diff(&same, &full[..2]);
    assert!(d <= 1e-4);
    for bad in [0, dim + 1] {
        let e = m
            .embed_dense(&texts[..1], &CallOptions::new().dimensions(Some(bad)))
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }

    // A model not trained for it takes only its own size.
    let c = case("cases.json", "minilm-fp32-edge");
    let m = load(&c);
    let e = m
        .embed_dense(&["a"], &CallOptions::new().dimensions(Some(64)))
        .unwrap_err();
    assert!(e.to_string().contains("Matryoshka"), "{e}");
    // ... and models without dense vectors take none.
    let m = load(&case("sparse_cases.json", "splade-tiny-edge"));
    let e = m
        .embed_sparse(&["a"], &CallOptions::new().dimensions(Some(8)))
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

#[test]
fn a_family_model_takes_the_same_call_options() {
    // `TextEmbedding` itself (no handle): the operations and their options are the same.
    let c = case("cases.json", "mean-nomic");
    let m = embedkit::TextEmbedding::builder(c["model"].as_str().unwrap())
        .specific_model_path(checked_model_dir(&c))
        .threads(2)
        .device(device())
        .build()
        .unwrap();
    let texts = inputs(c["inputs"].as_str().unwrap());
    let full = expected(&c);
    let got = m
        .embed_dense(
            &texts,
            &CallOptions::new().dimensions(Some(64)).batch_size(Some(2)),
        )
        .unwrap();
    assert_eq!(got.len(), full.len());
    for (g, w) in got.iter().zip(&full) {
        let norm: f32 = w[..64].iter().map(|x| x * x).sum::<f32>().sqrt();
        let want: Vec<f32> = w[..64].iter().map(|x| x / norm).collect();
        let (d, _, _) = max_abs_diff(std::slice::from_ref(g), &[want]);
        assert!(d <= 1e-4, "{d}");
    }
    // fastembed's own method is unchanged beside it.
    let plain = m.embed(&texts, None).unwrap();
    let (d, _, _) = max_abs_diff(&plain, &full);
    assert!(d <= 1e-4, "{d}");
    // What the family lacks is refused as the handle refuses it.
    assert!(unsupported(m.embed_sparse(&["a"], &CallOptions::new())).contains("sparse"));
    assert!(unsupported(m.score_pairs(&[("q", "d")], &CallOptions::new())).contains("pair"));
}

#[test]
fn normalize_makes_unit_vectors_of_raw_ones() {
    // nomic-embed-text-v1.5's architecture: fastembed leaves its vectors unnormalized.
    let c = case("cases.json", "mean-nomic");
    let m = load(&c);
    let texts = inputs(c["inputs"].as_str().unwrap());
    let raw = expected(&c);
    assert!(raw
        .iter()
        .any(|v| (v.iter().map(|x| x * x).sum::<f32>().sqrt() - 1.0).abs() > 1e-3));
    let got = m
        .embed_dense(&texts, &CallOptions::new().normalize(true))
        .unwrap();
    for (g, w) in got.iter().zip(&raw) {
        let norm: f32 = w.iter().map(|x| x * x).sum::<f32>().sqrt();
        let want: Vec<f32> = w.iter().map(|x| x / norm).collect();
        let (d, _, _) = max_abs_diff(std::slice::from_ref(g), &[want]);
        assert!(d <= 1e-4, "{d}");
    }
}

#[test]
fn errors_keep_their_kind_and_source() {
    use embedkit::ErrorKind as K;
    use std::error::Error as _;
    let o = CallOptions::new();
    let e = EmbeddingModel::load("no-such/model", LoadOptions::default()).unwrap_err();
    assert_eq!(e.kind(), K::UnknownModel, "{e}");

    let dense = load(&case("cases.json", "minilm-fp32-edge"));
    let e = dense.embed_sparse(&["a"], &o).unwrap_err();
    assert_eq!(e.kind(), K::Unsupported, "{e}");
    let e = dense.embed_token_ids(&[vec![u32::MAX]], &o).unwrap_err();
    assert_eq!(e.kind(), K::InvalidInput, "{e}");
    let e = dense
        .embed_dense(&["a"], &CallOptions::new().batch_size(Some(0)))
        .unwrap_err();
    assert_eq!(e.kind(), K::InvalidInput, "{e}");

    // A corrupt graph: ONNX Runtime's own error is kept as the source, not as text only.
    let dir = tmp_dir("handle-corrupt-onnx");
    let src = model_dir("tiny:cls-384");
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    std::fs::write(
        dir.join("model_optimized.onnx"),
        b"\x08\x07not a protobuf\xff",
    )
    .unwrap();
    let mut opts = LoadOptions::default();
    opts.cache.specific_model_path = Some(dir.to_path_buf());
    let e = EmbeddingModel::load("BAAI/bge-small-en-v1.5", opts).unwrap_err();
    assert_eq!(e.kind(), K::ModelMismatch, "{e}");
    assert!(e.to_string().contains("model_optimized.onnx"), "{e}");
    assert!(e.source().is_some(), "{e}: no source");
    let _ = std::fs::remove_dir_all(dir);
}

/// A dense model's vectors per token, before pooling, are fastembed's
/// `TokenEmbeddingsModel` outputs (tests/expected/token_cases.json): padding dropped
/// whatever the batch, special tokens kept; a static model has none to give.
#[test]
fn token_vectors_are_fastembeds_token_embeddings() {
    let all = cases("token_cases.json");
    let tol = tolerance(all["tolerance"].as_f64().unwrap() as f32);
    for c in all["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let m = load(c);
        let texts = inputs(c["inputs"].as_str().unwrap());
        let want = matrices(c);
        for batch_size in [c["batch_size"].as_u64().map(|b| b as usize), Some(1)] {
            let o = CallOptions::new().batch_size(batch_size);
            let got = m.embed_token_vectors(&texts, &o).unwrap();
            let rows: Vec<usize> = got.iter().map(|g| g.nrows()).collect();
            let want_rows: Vec<usize> = want.iter().map(Vec::len).collect();
            assert_eq!(rows, want_rows, "{name}: tokens per input");
            assert_matrices(name, &got, &want, tol);
        }
    }
    let m = load(&case("cases.json", "static-potion"));
    let e = m
        .embed_token_vectors(&["a"], &CallOptions::new())
        .unwrap_err();
    assert!(e.to_string().contains("token_vectors"), "{e}");
}
