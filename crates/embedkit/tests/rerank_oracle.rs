//! Reranking parity with fastembed 0.9.1 (tests/expected/rerank_cases.json) on seeded
//! cross-encoders with the real I/O names: with and without token_type_ids, external
//! data, pair truncation at 64 tokens (and at the left, TEI's `truncation_direction`),
//! and a custom model.

use crate::common;

use embedkit::{
    CallOptions, CustomReranker, EmbeddingModel, LoadOptions, ModelSource, Operations,
    TextCrossEncoder, TruncationSide,
};
use serde_json::Value;

use common::*;

fn rerank_cases() -> Value {
    let p = repo_root().join("tests/expected/rerank_cases.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn pairs() -> Vec<(String, String)> {
    let p = repo_root().join("tests/data/rerank_pairs.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn rerankers_match_fastembed() {
    let all = rerank_cases();
    let tol = all["tolerance"].as_f64().unwrap() as f32;
    let mut failures = Vec::new();
    for case in all["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let model_name = case["model"].as_str().unwrap();
        if let Some(custom) = case.get("custom") {
            let mut c = CustomReranker::new(model_name, ModelSource::hf(model_name));
            c.model_file = custom["model_file"].as_str().unwrap().into();
            TextCrossEncoder::add_custom_model(c).unwrap();
        }
        let dir = checked_model_dir(case);
        let want: Vec<f32> = case["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        for batch_size in [64, 3] {
            let model = TextCrossEncoder::builder(model_name)
                .specific_model_path(&dir)
                .threads(2)
                .batch_size(batch_size)
                .build()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let (got, count) = if let Some(side) = case.get("truncation") {
                // Cut at another end than the model's: a per-call option, so through the
                // handle.
                let side = match side.as_str() {
                    Some("left") => TruncationSide::Left,
                    other => panic!("{name}: truncation {other:?}"),
                };
                let mut load = LoadOptions::default();
                load.cache.specific_model_path = Some(dir.clone());
                load.runtime.threads = Some(2);
                load.runtime.device = device();
                let handle = EmbeddingModel::load(model_name, load).unwrap();
                let call = CallOptions::new()
                    .batch_size(Some(batch_size))
                    .truncation(Some(side));
                let pairs = pairs();
                (
                    handle.score_pairs(&pairs, &call).unwrap(),
                    model.token_count(&pairs).unwrap(),
                )
            } else if case["method"] == "rerank_pairs" {
                let pairs = pairs();
                (
                    model.rerank_pairs(&pairs, None).unwrap(),
                    model.token_count(&pairs).unwrap(),
                )
            } else {
                let query = case["query"].as_str().unwrap();
                let docs = inputs(case["inputs"].as_str().unwrap());
                let pairs: Vec<(&str, &str)> = docs.iter().map(|d| (query, d.as_str())).collect();
                (
                    model.rerank(query, &docs, None).unwrap(),
                    model.token_count(&pairs).unwrap(),
                )
            };
            assert_eq!(got.len(), want.len(), "{name}");
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            eprintln!("{name:<26} batch {batch_size:>2}: max |diff| {worst:.2e}");
            if worst > tol || worst.is_nan() {
                failures.push(format!("{name} batch {batch_size}: |diff| {worst:e}"));
            }
            if count as u64 != case["token_count"].as_u64().unwrap() {
                failures.push(format!(
                    "{name}: token_count {count}, oracle {}",
                    case["token_count"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn top_k_sorts_the_oracles_scores() {
    let all = rerank_cases();
    let case = &all["cases"][0];
    let dir = checked_model_dir(case);
    let model = TextCrossEncoder::builder(case["model"].as_str().unwrap())
        .specific_model_path(&dir)
        .build()
        .unwrap();
    let docs = inputs("edge");
    let top = model
        .rerank_top_k(case["query"].as_str().unwrap(), &docs, 5, None)
        .unwrap();
    let mut want: Vec<(usize, f64)> = case["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .enumerate()
        .collect();
    want.sort_by(|a, b| b.1.total_cmp(&a.1));
    let got: Vec<usize> = top.iter().map(|r| r.index).collect();
    let expect: Vec<usize> = want.iter().take(5).map(|w| w.0).collect();
    assert_eq!(got, expect);

    // The same ranking as a per-call option (`top_n`) of the operations, streamed: the
    // best 5, and without `top_n` every document, best first.
    let query = case["query"].as_str().unwrap();
    let docs_in = || docs.iter().map(|d| Ok(d.as_str()));
    let ranked = model
        .rank(query, docs_in(), &CallOptions::new().top_n(Some(5)))
        .unwrap();
    assert_eq!(ranked.iter().map(|r| r.index).collect::<Vec<_>>(), expect);
    for (r, w) in ranked.iter().zip(&want) {
        assert!(
            (r.score as f64 - w.1).abs() <= 1e-4,
            "{} vs {}",
            r.score,
            w.1
        );
    }
    let all_ranked = model.rank(query, docs_in(), &CallOptions::new()).unwrap();
    let every: Vec<usize> = want.iter().map(|w| w.0).collect();
    assert_eq!(
        all_ranked.iter().map(|r| r.index).collect::<Vec<_>>(),
        every
    );
    assert!(model
        .rank(query, docs_in(), &CallOptions::new().top_n(Some(0)))
        .unwrap()
        .is_empty());
}

#[test]
fn reranker_registry_matches_fastembeds_listing() {
    let p = repo_root().join("tests/expected/rerank_models.json");
    let oracle: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let ours: Vec<_> = TextCrossEncoder::list_supported_models()
        .into_iter()
        .filter(|d| !d.core.custom)
        .collect();
    assert_eq!(ours.len(), oracle.len());
    for (o, d) in oracle.iter().zip(&ours) {
        assert_eq!(o["model"], d.core.model.as_str());
        assert_eq!(o["description"], d.core.description.as_str());
        assert_eq!(o["license"], d.core.license.as_str());
        assert_eq!(o["size_in_GB"].as_f64().unwrap(), d.core.size_in_gb);
        assert_eq!(o["model_file"], d.core.model_file.as_str());
        assert_eq!(o["sources"]["hf"].as_str(), d.core.sources.hf.as_deref());
        let files: Vec<&str> = o["additional_files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(files, d.core.additional_files, "{}", d.core.model);
    }
    let dup = TextCrossEncoder::add_custom_model(CustomReranker::new(
        "xenova/MS-MARCO-MiniLM-L-6-v2",
        ModelSource::hf("x/y"),
    ));
    assert!(dup.is_err());
}
