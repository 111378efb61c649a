//! Sparse parity with fastembed 0.9.1: every case of tests/expected/sparse_cases.json,
//! on the real SPLADE-tiny model and seeded masked-LM models.

mod common;

use std::collections::BTreeMap;

use embedkit::{sparse::Bm25Options, SparseEmbedding, SparseTextEmbedding};
use serde_json::Value;

use common::*;

fn sparse_cases() -> Value {
    let p = repo_root().join("tests/expected/sparse_cases.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// Largest difference between two sparse vectors, an index absent on one side counting
/// as 0 there (a weight within float error of 0 may be kept by one side only).
fn diff(a: &SparseEmbedding, b: &BTreeMap<u32, f32>) -> f32 {
    let a = a.as_dict();
    a.keys()
        .chain(b.keys())
        .map(|k| (a.get(k).unwrap_or(&0.0) - b.get(k).unwrap_or(&0.0)).abs())
        .fold(0.0, f32::max)
}

/// Test inputs by name: `edge`, `corpus`, or `lang:<language>` (tests/data/multilingual.json).
fn case_inputs(name: &str) -> Vec<String> {
    match name.strip_prefix("lang:") {
        Some(lang) => {
            let p = repo_root().join("tests/data/multilingual.json");
            let all: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            serde_json::from_value(all[lang].clone()).unwrap()
        }
        None => inputs(name),
    }
}

/// fastembed's Bm25 keyword arguments of a case.
fn bm25_options(options: Option<&Value>) -> Bm25Options {
    let mut o = Bm25Options::default();
    let Some(v) = options else { return o };
    if let Some(x) = v.get("language").and_then(Value::as_str) {
        o.language = x.to_string();
    }
    if let Some(x) = v.get("k").and_then(Value::as_f64) {
        o.k = x;
    }
    if let Some(x) = v.get("b").and_then(Value::as_f64) {
        o.b = x;
    }
    if let Some(x) = v.get("avg_len").and_then(Value::as_f64) {
        o.avg_len = x;
    }
    if let Some(x) = v.get("token_max_length").and_then(Value::as_u64) {
        o.token_max_length = x as usize;
    }
    if let Some(x) = v.get("disable_stemmer").and_then(Value::as_bool) {
        o.disable_stemmer = x;
    }
    if let Some(words) = v.get("stopwords").and_then(Value::as_array) {
        o.stopwords = Some(
            words
                .iter()
                .map(|w| w.as_str().unwrap().to_string())
                .collect(),
        );
    }
    o
}

#[test]
fn sparse_models_match_fastembed() {
    let all = sparse_cases();
    let tol = all["tolerance"].as_f64().unwrap() as f32;
    let mut failures = Vec::new();
    for case in all["cases"].as_array().unwrap() {
        let dir = checked_model_dir(case);
        let texts = case_inputs(case["inputs"].as_str().unwrap());
        for batch_size in [256, 3] {
            let model = SparseTextEmbedding::builder(case["model"].as_str().unwrap())
                .specific_model_path(&dir)
                .threads(2)
                .batch_size(batch_size)
                .bm25(bm25_options(case.get("options")))
                .alpha(
                    case.get("options")
                        .and_then(|o| o.get("alpha"))
                        .and_then(Value::as_f64)
                        .unwrap_or(0.5),
                )
                .build()
                .unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
            let got = match case["method"].as_str().unwrap() {
                "query_embed" => model.query_embed(&texts).unwrap(),
                _ => model.embed(&texts, None).unwrap(),
            };
            assert_eq!(got.len(), texts.len());
            let expected = case["results"].as_array().unwrap();
            assert!(!expected.is_empty());
            let mut worst = 0f32;
            for (i, (g, want)) in got
                .iter()
                .zip(case["results"].as_array().unwrap())
                .enumerate()
            {
                assert!(
                    g.indices.windows(2).all(|w| w[0] < w[1]),
                    "indices not ascending"
                );
                let want: BTreeMap<u32, f32> = want["indices"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(want["values"].as_array().unwrap())
                    .map(|(k, v)| (k.as_u64().unwrap() as u32, v.as_f64().unwrap() as f32))
                    .collect();
                let d = diff(g, &want);
                if d > tol {
                    failures.push(format!("{} input {i}: |diff| {d:e}", case["name"]));
                }
                worst = worst.max(d);
            }
            eprintln!(
                "{:<20} batch {batch_size:>3}: max |diff| {worst:.2e}",
                case["name"].as_str().unwrap()
            );
            let count = model.token_count(&texts).unwrap();
            if count as u64 != case["token_count"].as_u64().unwrap() {
                failures.push(format!(
                    "{}: token_count {count}, oracle {}",
                    case["name"], case["token_count"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn bm25_refuses_unknown_languages_and_reads_no_files_it_does_not_need() {
    let dir = model_dir("tiny:bm25");
    let err = SparseTextEmbedding::builder("Qdrant/bm25")
        .specific_model_path(&dir)
        .bm25(Bm25Options {
            language: "klingon".into(),
            ..Default::default()
        })
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("klingon language is not supported"),
        "{err}"
    );
    // Without a stemmer any language goes, with no stopwords.
    let model = SparseTextEmbedding::builder("Qdrant/bm25")
        .specific_model_path(&dir)
        .bm25(Bm25Options {
            language: "klingon".into(),
            disable_stemmer: true,
            ..Default::default()
        })
        .build()
        .unwrap();
    let v = model.query_embed(&["the the cats"]).unwrap();
    assert_eq!(v[0].len(), 2);
    assert!(v[0].values.iter().all(|&x| x == 1.0));
}

#[test]
fn sparse_registry_matches_fastembeds_listing() {
    let p = repo_root().join("tests/expected/sparse_models.json");
    let oracle: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let ours = SparseTextEmbedding::list_supported_models();
    assert_eq!(ours.len(), oracle.len());
    for (o, d) in oracle.iter().zip(&ours) {
        assert_eq!(o["model"], d.model.as_str());
        assert_eq!(
            o["vocab_size"].as_u64().map(|v| v as usize),
            d.vocab_size,
            "{}",
            d.model
        );
        assert_eq!(o["description"], d.description.as_str(), "{}", d.model);
        assert_eq!(o["license"], d.license.as_str());
        assert_eq!(o["size_in_GB"].as_f64().unwrap(), d.size_in_gb);
        assert_eq!(o["model_file"], d.model_file.as_str());
        assert_eq!(o["sources"]["hf"].as_str(), d.sources.hf.as_deref());
        assert_eq!(o["requires_idf"].as_bool(), d.requires_idf, "{}", d.model);
        let files: Vec<&str> = o["additional_files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(files, d.additional_files, "{}", d.model);
    }
}

#[test]
fn unimplemented_sparse_families_say_so() {
    let err = SparseTextEmbedding::builder("Qdrant/minicoil-v1")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not implemented"), "{err}");
}
