//! BGE-M3 against FlagEmbedding 1.4.2's `BGEM3FlagModel` (tests/expected/bge-m3.json,
//! written by scripts/oracle/gen_m3.py) on the seeded small models make_m3.py writes, in
//! both layouts: the hidden-state graph with torch-checkpoint heads (`BAAI/bge-m3`) and
//! one graph with the three outputs (`gpahal/bge-m3-onnx-int8`). The texts include
//! repeated tokens, pieces the vocabulary lacks, literal special tokens, eight languages
//! and one text of 743 tokens.

use crate::common;

use embedkit::{
    BgeM3Embedding, CallOptions, Capability, EmbeddingModel, LoadOptions, ModelKind, MultiVector,
    Operations, Purpose, SparseEmbedding,
};

use common::m3::{self, M3Expected};
use common::*;

fn expected() -> M3Expected {
    let mut e = m3::m3_expected(&repo_root());
    e.tol = tolerance(e.tol);
    e
}

fn check_dense(what: &str, got: &[Vec<f32>], want: &M3Expected) {
    m3::check_dense(what, got, &want.dense, want.tol);
}

fn check_sparse(what: &str, got: &[SparseEmbedding], want: &M3Expected) {
    let got: Vec<(Vec<u32>, Vec<f32>)> = got
        .iter()
        .map(|s| (s.indices.clone(), s.values.clone()))
        .collect();
    m3::check_sparse(what, &got, &want.sparse, want.tol);
}

fn check_multi(what: &str, got: &[MultiVector], want: &M3Expected) {
    let got: Vec<Vec<Vec<f32>>> = got
        .iter()
        .map(|m| m.outer_iter().map(|r| r.to_vec()).collect())
        .collect();
    m3::check_multi(what, &got, &want.multi, want.tol);
}

/// The two layouts: (registry name, seeded-model folder).
const LAYOUTS: [(&str, &str); 2] = [
    ("BAAI/bge-m3", "bge-m3"),
    ("gpahal/bge-m3-onnx-int8", "bge-m3-int8"),
];

/// Checks that the seeded folder holds the files the oracle ran.
fn check_files() {
    let dir = model_dir("tiny:bge-m3");
    for (file, sha) in &expected().files {
        assert_eq!(
            &sha256_file(&dir.join(file)),
            sha,
            "{file} is not the file the oracle ran: `make test-models`, or `make oracle-m3`"
        );
    }
}

fn options(folder: &str) -> LoadOptions {
    let mut load = LoadOptions::default();
    load.cache.specific_model_path = Some(model_dir(&format!("tiny:{folder}")));
    load.runtime.threads = Some(2);
    load.runtime.device = device();
    load
}

#[test]
fn both_layouts_match_flagembedding_batched_and_alone() {
    check_files();
    let want = expected();
    for (name, folder) in LAYOUTS {
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
            check_dense(&what, &dense, &want);
            check_sparse(&what, &sparse, &want);
            check_multi(&what, &multi, &want);
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
    check_files();
    let want = expected();
    let texts: Vec<&str> = want.texts.iter().map(String::as_str).collect();
    for (name, folder) in LAYOUTS {
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
        check_dense(name, all.dense.as_ref().unwrap(), &want);
        check_sparse(name, all.sparse.as_ref().unwrap(), &want);
        check_multi(name, all.multi.as_ref().unwrap(), &want);
        let sparse_only = model
            .embed_all(&texts, &[Capability::SparseText], &CallOptions::default())
            .unwrap();
        assert!(sparse_only.dense.is_none() && sparse_only.multi.is_none());
        let query = CallOptions::default().purpose(Purpose::Query);
        let dense = model.embed_dense(&texts, &query).unwrap();
        check_dense(name, &dense, &want);
        let sparse = model.embed_sparse(&texts, &query).unwrap();
        check_sparse(name, &sparse, &want);
        let multi = model.embed_multi(&texts, &query).unwrap();
        check_multi(name, &multi, &want);
        // Which texts the model would truncate (its context is 1024 tokens here).
        let long = "library ".repeat(1500);
        assert_eq!(model.first_overlong(&texts).unwrap(), None, "{name}");
        assert_eq!(
            model.first_overlong(&[texts[0], long.as_str()]).unwrap(),
            Some(1),
            "{name}"
        );
        // Not a Matryoshka model: only its own size.
        let short = CallOptions::default().dimensions(Some(16));
        assert!(model.embed_dense(&texts[..1], &short).is_err());
    }
}

#[test]
fn a_missing_or_wrong_head_is_a_clear_error() {
    check_files();
    let src = model_dir("tiny:bge-m3");
    let dir = tmp_dir("m3-heads");
    copy_dir(&src, &dir);
    std::fs::remove_file(dir.join("sparse_linear.pt")).unwrap();
    let mut load = options("bge-m3");
    load.cache.specific_model_path = Some(dir.to_path_buf());
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
    match EmbeddingModel::load("BAAI/bge-m3", load) {
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

#[test]
fn the_int8_tier_applies_to_the_hub_layout() {
    check_files();
    let want = expected();
    // A copy: the int8 graph is cached beside the model.
    let dir = tmp_dir("m3-int8");
    copy_dir(&model_dir("tiny:bge-m3"), &dir);
    let model = BgeM3Embedding::builder("BAAI/bge-m3")
        .specific_model_path(&dir)
        .threads(2)
        .precision(embedkit::Precision::Int8)
        .build()
        .unwrap();
    let out = model.embed(&want.texts, None).unwrap();
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    for (i, o) in out.iter().enumerate() {
        // Close to the exact vectors, not equal: the tier's contract.
        let c = cos(&o.dense, &want.dense[i]);
        assert!(c > 0.99, "text {i}: cosine {c} to the exact dense vector");
        assert_eq!(o.multi.nrows(), want.multi[i].0, "text {i}: rows");
        assert!(
            o.dense != want.dense[i],
            "text {i}: int8 gave the exact vector"
        );
    }
    let int8_files = std::fs::read_dir(dir.join("onnx"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("int8")
        })
        .count();
    assert!(int8_files > 0, "no int8 graph cached beside the model");
}
