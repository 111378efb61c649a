//! Parity with fastembed 0.9.1: every case of tests/expected/cases.json (written by
//! scripts/oracle/gen_expected.py) is embedded here and compared within the stated
//! tolerance, per component.

use crate::common;

use embedkit::{CustomTextModel, ModelSource, Prep, Purpose, TextEmbedding, TruncationSide};
use serde_json::Value;

use common::*;

fn build(case: &Value, batch_size: usize) -> TextEmbedding {
    let name = case["model"].as_str().unwrap();
    // A custom model is handed to the builder as a value: nothing global to register.
    let mut b = TextEmbedding::builder(name);
    if let Some(custom) = case.get("custom") {
        let mut m = CustomTextModel::new(
            name,
            custom["pooling"].as_str().unwrap().parse().unwrap(),
            custom["normalization"].as_bool().unwrap(),
            ModelSource::hf(name),
            custom["dim"].as_u64().unwrap() as usize,
        );
        m.model_file = custom["model_file"].as_str().unwrap().to_string();
        if let Some(files) = custom.get("additional_files").and_then(Value::as_array) {
            m.additional_files = files
                .iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect();
        }
        m.output_name = custom
            .get("output_name")
            .and_then(Value::as_str)
            .map(str::to_string);
        b = TextEmbedding::from_description(m.into());
    }
    let dir = checked_model_dir(case);
    // Large batch sizes also get a large token budget, so that long padded batches are
    // exercised too, not only the small ones the default budget forms.
    let budget = if batch_size >= 256 { 16_384 } else { 512 };
    let mut b = b
        .specific_model_path(dir)
        .threads(2)
        .device(device())
        .batch_size(batch_size)
        .max_batch_tokens(budget);
    if let Some(task) = case.get("task_id").and_then(Value::as_i64) {
        b = b.task_id(task);
    }
    b.build()
        .unwrap_or_else(|e| panic!("{}: {e}", case["name"]))
}

fn embed(model: &TextEmbedding, case: &Value, texts: &[String]) -> Vec<Vec<f32>> {
    let purpose = match case["method"].as_str().unwrap() {
        "embed" => Purpose::Document,
        "query_embed" => Purpose::Query,
        "passage_embed" => Purpose::Passage,
        other => panic!("unknown method {other}"),
    };
    // TEI's truncation_direction, for the cases made with fastembed's tokenizer set so.
    let truncation = case.get("truncation").map(|side| match side.as_str() {
        Some("left") => TruncationSide::Left,
        Some("right") => TruncationSide::Right,
        other => panic!("unknown truncation {other:?}"),
    });
    let call = Prep::from(purpose).truncation(truncation);
    model
        .try_embed_iter(texts.iter().map(|t| Ok(t.as_str())), None, call)
        .collect::<embedkit::Result<Vec<_>>>()
        .unwrap_or_else(|e| panic!("{}: {e}", case["name"]))
}

/// Runs the cases selected by `filter` with each batch size, fails listing every case
/// outside the tolerance, and returns the vectors of each case and batch size.
fn check(filter: impl Fn(&Value) -> bool, batch_sizes: &[usize]) -> Vec<Vec<Vec<Vec<f32>>>> {
    let all = cases();
    let tolerance = tolerance(all["tolerance"].as_f64().unwrap() as f32);
    let mut failures = Vec::new();
    let mut ran = 0;
    let mut runs = Vec::new();
    for case in all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| filter(c))
    {
        let texts = inputs(case["inputs"].as_str().unwrap());
        let want = expected(case);
        let mut case_runs = Vec::new();
        for &bs in batch_sizes {
            let model = build(case, bs);
            let got = embed(&model, case, &texts);
            let (diff, row, col) = max_abs_diff(&got, &want);
            eprintln!(
                "{:<28} batch {bs:>3}: max |diff| {diff:.2e}",
                case["name"].as_str().unwrap()
            );
            if diff > tolerance {
                failures.push(format!(
                    "{} (batch {bs}): |diff| {diff:e} at input {row} component {col}: ours {} oracle {}",
                    case["name"], got[row][col], want[row][col]
                ));
            }
            let count = model.token_count(&texts).unwrap();
            if count as u64 != case["token_count"].as_u64().unwrap() {
                failures.push(format!(
                    "{}: token_count {count}, oracle {}",
                    case["name"], case["token_count"]
                ));
            }
            ran += 1;
            case_runs.push(got);
        }
        runs.push(case_runs);
    }
    assert!(ran > 0, "no oracle case matched");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    runs
}

fn dir_kind(c: &Value) -> &str {
    c["dir"].as_str().unwrap().split(':').next().unwrap()
}

#[test]
fn real_minilm_models_match_fastembed() {
    check(
        |c| dir_kind(c) != "tiny" && c["inputs"] == "edge",
        &[256, 1],
    );
}

#[test]
fn seeded_models_match_fastembed_on_every_pipeline() {
    check(
        |c| dir_kind(c) == "tiny" && c["inputs"] == "edge",
        &[256, 3],
    );
}

#[test]
fn corpus_matches_fastembed_and_itself_at_batch_sizes_1_7_256() {
    // Batches differ in composition and padding between batch sizes; the vectors of a
    // document must not, beyond float noise.
    for case_runs in check(|c| c["inputs"] == "corpus", &[1, 7, 256]) {
        for other in &case_runs[1..] {
            let (diff, row, col) = max_abs_diff(&case_runs[0], other);
            assert!(
                diff <= 1e-6,
                "batch sizes disagree: |diff| {diff:e} at {row},{col}"
            );
        }
    }
}

#[test]
fn registry_matches_fastembeds_listing() {
    let path = repo_root().join("tests/expected/dense_models.json");
    let oracle: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ours: Vec<embedkit::DenseModelDescription> = TextEmbedding::list_supported_models()
        .into_iter()
        .filter(|d| !d.core.custom)
        .collect();
    assert_eq!(ours.len(), oracle.len());
    assert_eq!(ours.len(), 41);
    for (o, d) in oracle.iter().zip(&ours) {
        assert_eq!(o["model"], d.core.model.as_str());
        assert_eq!(
            o["dim"].as_u64().unwrap() as usize,
            d.dim,
            "{}",
            d.core.model
        );
        assert_eq!(
            o["description"],
            d.core.description.as_str(),
            "{}",
            d.core.model
        );
        assert_eq!(o["license"], d.core.license.as_str(), "{}", d.core.model);
        assert_eq!(
            o["size_in_GB"].as_f64().unwrap(),
            d.core.size_in_gb,
            "{}",
            d.core.model
        );
        assert_eq!(
            o["model_file"],
            d.core.model_file.as_str(),
            "{}",
            d.core.model
        );
        assert_eq!(o["sources"]["hf"].as_str(), d.core.sources.hf.as_deref());
        assert_eq!(o["sources"]["url"].as_str(), d.core.sources.url.as_deref());
        assert_eq!(
            o["sources"]["_deprecated_tar_struct"].as_bool().unwrap(),
            d.core.sources.deprecated_tar_struct,
            "{}",
            d.core.model
        );
        let files: Vec<&str> = o["additional_files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(files, d.core.additional_files, "{}", d.core.model);
        let tasks: std::collections::BTreeMap<String, i64> =
            serde_json::from_value(o["tasks"].clone()).unwrap();
        assert_eq!(tasks, d.tasks, "{}", d.core.model);
    }
}
