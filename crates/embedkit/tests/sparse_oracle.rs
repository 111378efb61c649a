//! Sparse parity with fastembed 0.9.1: every case of tests/expected/sparse_cases.json,
//! on the real SPLADE-tiny model and seeded masked-LM models.

mod common;

use std::collections::BTreeMap;

use embedkit::{SparseEmbedding, SparseTextEmbedding};
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

#[test]
fn sparse_models_match_fastembed() {
    let all = sparse_cases();
    let tol = all["tolerance"].as_f64().unwrap() as f32;
    let mut failures = Vec::new();
    for case in all["cases"].as_array().unwrap() {
        let dir = model_dir(case["dir"].as_str().unwrap());
        let file = dir.join(case["model_file"].as_str().unwrap());
        assert_eq!(
            sha256_file(&file),
            case["model_file_sha256"].as_str().unwrap(),
            "{} is not the file the oracle ran",
            file.display()
        );
        let texts = inputs(case["inputs"].as_str().unwrap());
        for batch_size in [256, 3] {
            let model = SparseTextEmbedding::builder(case["model"].as_str().unwrap())
                .specific_model_path(&dir)
                .threads(2)
                .batch_size(batch_size)
                .build()
                .unwrap();
            let got = match case["method"].as_str().unwrap() {
                "query_embed" => model.query_embed(&texts).unwrap(),
                _ => model.embed(&texts, None).unwrap(),
            };
            assert_eq!(got.len(), texts.len());
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
    let err = SparseTextEmbedding::builder("Qdrant/bm25")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not implemented"), "{err}");
}
