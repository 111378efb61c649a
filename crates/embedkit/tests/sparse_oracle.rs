//! Sparse parity with fastembed 0.9.1: every case of tests/expected/sparse_cases.json,
//! on the real SPLADE-tiny model and seeded masked-LM models.

use crate::common;

use std::collections::BTreeMap;

use embedkit::registry::SparseKind;
use embedkit::sparse::{Bm25Options, MinicoilOptions};
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

/// fastembed's MiniCOIL keyword arguments of a case.
fn minicoil_options(options: Option<&Value>) -> MinicoilOptions {
    let mut o = MinicoilOptions::default();
    let Some(v) = options else { return o };
    for (key, field) in [
        ("k", &mut o.k),
        ("b", &mut o.b),
        ("avg_len", &mut o.avg_len),
    ] {
        if let Some(x) = v.get(key).and_then(Value::as_f64) {
            *field = x;
        }
    }
    o
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

/// The registry's kind of a sparse model.
fn kind_of(name: &str) -> SparseKind {
    SparseTextEmbedding::list_supported_models()
        .into_iter()
        .find(|d| d.core.model.eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("{name} is not a sparse model"))
        .kind
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
            let name = case["model"].as_str().unwrap();
            let builder = SparseTextEmbedding::builder(name)
                .specific_model_path(&dir)
                .threads(2)
                .batch_size(batch_size);
            // fastembed's keyword arguments of the case, given to the kind that takes
            // them (another kind refuses them).
            let options = case.get("options").filter(|o| !o.is_null());
            let builder = match (options, kind_of(name)) {
                (None, _) => builder,
                (Some(o), SparseKind::Bm25) => builder.bm25(bm25_options(Some(o))),
                (Some(o), SparseKind::Minicoil) => builder.minicoil(minicoil_options(Some(o))),
                (Some(o), SparseKind::Bm42) => builder.alpha(o["alpha"].as_f64().unwrap()),
                (Some(o), kind) => panic!("{name}: options {o} for {kind:?}"),
            };
            let model = builder
                .build()
                .unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
            let got = match case["method"].as_str().unwrap() {
                "query_embed" => model.query_embed(&texts, None).unwrap(),
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
                // Only SPLADE may drop a weight within float error of 0; the others keep
                // every word, so their indices must be the oracle's exactly.
                let splade = case["model"].as_str().unwrap().contains("plade")
                    || case["model"].as_str().unwrap().contains("sparse-encoding");
                if !splade && !g.indices.iter().eq(want.keys()) {
                    failures.push(format!("{} input {i}: indices differ", case["name"]));
                }
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
    let v = model.query_embed(&["the the cats"], None).unwrap();
    assert_eq!(v[0].len(), 2);
    assert!(v[0].values.iter().all(|&x| x == 1.0));
    // A setting BM25 does not read is refused, not ignored (fastembed ignores it).
    let err = SparseTextEmbedding::builder("Qdrant/bm25")
        .specific_model_path(&dir)
        .alpha(0.8)
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("alpha") && msg.contains("language"), "{msg}");
    let err = embedkit::EmbeddingModel::load_with(
        "Qdrant/bm25",
        embedkit::LoadOptions {
            cache: embedkit::CacheOptions {
                specific_model_path: Some(dir.to_path_buf()),
                ..Default::default()
            },
            ..Default::default()
        },
        &serde_json::json!({"language": "german", "alpha": 0.5}),
    )
    .err()
    .unwrap();
    assert_eq!(err.kind(), embedkit::ErrorKind::InvalidInput, "{err}");
}

#[test]
fn sparse_registry_matches_fastembeds_listing() {
    let p = repo_root().join("tests/expected/sparse_models.json");
    let oracle: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let ours = SparseTextEmbedding::list_supported_models();
    assert_eq!(ours.len(), oracle.len());
    for (o, d) in oracle.iter().zip(&ours) {
        assert_eq!(o["model"], d.core.model.as_str());
        assert_eq!(
            o["vocab_size"].as_u64().map(|v| v as usize),
            d.vocab_size,
            "{}",
            d.core.model
        );
        assert_eq!(
            o["description"],
            d.core.description.as_str(),
            "{}",
            d.core.model
        );
        assert_eq!(o["license"], d.core.license.as_str());
        assert_eq!(o["size_in_GB"].as_f64().unwrap(), d.core.size_in_gb);
        assert_eq!(o["model_file"], d.core.model_file.as_str());
        assert_eq!(o["sources"]["hf"].as_str(), d.core.sources.hf.as_deref());
        assert_eq!(
            o["requires_idf"].as_bool(),
            d.requires_idf,
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
    }
}

/// A copy of the seeded MiniCOIL folder in which `edit` breaks something.
fn broken_minicoil(name: &str, edit: impl FnOnce(&std::path::Path)) -> common::TmpDir {
    let src = model_dir("tiny:minicoil");
    let dir = common::TmpDir::new("embedkit-minicoil", name);
    std::fs::create_dir_all(dir.join("onnx")).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(src.join("onnx/model.onnx"), dir.join("onnx/model.onnx")).unwrap();
    edit(&dir);
    dir
}

/// A little-endian float32 `.npy` of zeros.
fn zeros_npy(path: &std::path::Path, shape: [usize; 3]) {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}, {}), }}",
        shape[0], shape[1], shape[2]
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.resize(bytes.len() + shape.iter().product::<usize>() * 4, 0);
    std::fs::write(path, bytes).unwrap();
}

fn minicoil_error(dir: &std::path::Path) -> String {
    let result = SparseTextEmbedding::builder("Qdrant/minicoil-v1")
        .specific_model_path(dir)
        .build()
        .and_then(|m| m.embed(&["vectors are stored in collections"], None));
    match result {
        Ok(_) => panic!("{} was accepted", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn minicoil_rejects_broken_auxiliary_files() {
    let vocab_words = |dir: &std::path::Path| -> usize {
        let text = std::fs::read_to_string(dir.join("minicoil.triplet.model.vocab")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        v["vocab"].as_array().unwrap().len()
    };

    let dir = broken_minicoil("stem", |d| {
        let p = d.join("minicoil.triplet.model.vocab");
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        v["stem_mapping"]["zzz"] = "not-a-word".into();
        std::fs::write(&p, v.to_string()).unwrap();
    });
    let err = minicoil_error(&dir);
    assert!(
        err.contains("\"not-a-word\", which is not in vocab"),
        "{err}"
    );

    let dir = broken_minicoil("rows", |d| {
        zeros_npy(
            &d.join("minicoil.triplet.model.npy"),
            [vocab_words(d), 512, 4],
        );
    });
    let err = minicoil_error(&dir);
    assert!(err.contains("word matrices for a vocabulary of"), "{err}");

    let dir = broken_minicoil("hidden", |d| {
        zeros_npy(
            &d.join("minicoil.triplet.model.npy"),
            [vocab_words(d) + 1, 64, 4],
        );
    });
    let err = minicoil_error(&dir);
    assert!(
        err.contains("have 512 dimensions") && err.contains("expects 64"),
        "{err}"
    );

    let dir = broken_minicoil("garbage", |d| {
        std::fs::write(d.join("minicoil.triplet.model.npy"), b"not numpy").unwrap();
    });
    let err = minicoil_error(&dir);
    assert!(err.contains("3-d float32 .npy"), "{err}");

    let dir = broken_minicoil("json", |d| {
        std::fs::write(d.join("minicoil.triplet.model.vocab"), b"[1, 2]").unwrap();
    });
    let err = minicoil_error(&dir);
    assert!(err.contains("stem_mapping"), "{err}");

    let dir = broken_minicoil("missing", |d| {
        std::fs::remove_file(d.join("minicoil.triplet.model.npy")).unwrap();
    });
    let err = minicoil_error(&dir);
    assert!(err.contains("minicoil.triplet.model.npy"), "{err}");

    // Stopwords are optional, as in fastembed: without them the model still runs.
    let dir = broken_minicoil("nostop", |d| {
        std::fs::remove_file(d.join("stopwords.txt")).unwrap();
    });
    let model = SparseTextEmbedding::builder("Qdrant/minicoil-v1")
        .specific_model_path(&dir)
        .build()
        .unwrap();
    assert!(!model.embed(&["the vectors"], None).unwrap()[0].is_empty());
}
