//! Late-interaction parity with fastembed 0.9.1 (tests/expected/late_cases.json): every
//! ColBERT-style registry family on seeded token encoders with the real I/O names, and
//! MUVERA's random matrices (bit for bit) and encodings.

use crate::common;

use embedkit::{LateInteractionTextEmbedding, Muvera, MuveraOptions, Purpose};
use ndarray::Array2;
use serde_json::Value;
use sha2::{Digest, Sha256};

use common::*;

fn late_cases() -> Value {
    let p = repo_root().join("tests/expected/late_cases.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn read_floats(file: &str) -> Vec<f32> {
    let bytes = std::fs::read(repo_root().join("tests/expected").join(file)).unwrap();
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The oracle's multi-vectors of a case.
fn expected_matrices(case: &Value) -> Vec<Array2<f32>> {
    let dim = case["dim"].as_u64().unwrap() as usize;
    let floats = read_floats(case["data_file"].as_str().unwrap());
    let mut out = Vec::new();
    let mut at = 0;
    for rows in case["rows"].as_array().unwrap() {
        let n = rows.as_u64().unwrap() as usize * dim;
        out.push(Array2::from_shape_vec((n / dim, dim), floats[at..at + n].to_vec()).unwrap());
        at += n;
    }
    assert_eq!(at, floats.len());
    out
}

fn case<'a>(all: &'a Value, name: &str) -> &'a Value {
    all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

#[test]
fn late_interaction_models_match_fastembed() {
    let all = late_cases();
    let tol = all["tolerance"].as_f64().unwrap() as f32;
    let mut failures = Vec::new();
    for case in all["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let dir = checked_model_dir(case);
        let texts = inputs(case["inputs"].as_str().unwrap());
        let want = expected_matrices(case);
        for batch_size in [256, 3] {
            let model = LateInteractionTextEmbedding::builder(case["model"].as_str().unwrap())
                .specific_model_path(&dir)
                .threads(2)
                .batch_size(batch_size)
                .build()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let got = match case["method"].as_str().unwrap() {
                "query_embed" => model.query_embed(&texts, None).unwrap(),
                _ => model.embed(&texts, None).unwrap(),
            };
            assert_eq!(got.len(), want.len(), "{name}");
            let mut worst = 0f32;
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                if g.dim() != w.dim() {
                    failures.push(format!(
                        "{name} input {i}: shape {:?}, oracle {:?}",
                        g.dim(),
                        w.dim()
                    ));
                    continue;
                }
                let d = g
                    .iter()
                    .zip(w.iter())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                if d > tol || d.is_nan() {
                    failures.push(format!("{name} input {i}: |diff| {d:e}"));
                }
                worst = worst.max(d);
            }
            eprintln!("{name:<22} batch {batch_size:>3}: max |diff| {worst:.2e}");
            for (key, (purpose, ext)) in [
                ("doc", (Purpose::Document, false)),
                ("doc+ext", (Purpose::Document, true)),
                ("query", (Purpose::Query, false)),
                ("query+ext", (Purpose::Query, true)),
            ] {
                let count = model.token_count_with(&texts, purpose, ext).unwrap();
                if count as u64 != case["token_counts"][key].as_u64().unwrap() {
                    failures.push(format!(
                        "{name}: token_count {key} {count}, oracle {}",
                        case["token_counts"][key]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn muvera_draws_fastembeds_random_matrices_and_encodings() {
    let all = late_cases();
    for m in all["muvera"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let o = &m["options"];
        let opts = MuveraOptions {
            k_sim: o["k_sim"].as_u64().unwrap() as u32,
            dim_proj: o["dim_proj"].as_u64().unwrap() as usize,
            r_reps: o["r_reps"].as_u64().unwrap() as usize,
            random_seed: o["random_seed"].as_u64().unwrap(),
        };
        let muvera = Muvera::new(128, opts).unwrap();
        assert_eq!(
            muvera.embedding_size() as u64,
            m["embedding_size"].as_u64().unwrap()
        );

        // The same numbers, bit for bit: hyperplanes as little-endian f64, projections as i8.
        let mut simhash = Vec::new();
        for plane in muvera.simhash_vectors() {
            for x in plane.iter() {
                simhash.extend(x.to_le_bytes());
            }
        }
        assert_eq!(
            format!("{:x}", Sha256::digest(&simhash)),
            m["simhash_sha256"],
            "{name}"
        );
        let proj: Vec<u8> = muvera
            .projections()
            .iter()
            .map(|&x| (x as i8) as u8)
            .collect();
        assert_eq!(
            format!("{:x}", Sha256::digest(&proj)),
            m["projection_sha256"],
            "{name}"
        );

        // Encodings of the oracle's own ColBERT vectors.
        for kind in ["document", "query"] {
            let out = &m["outputs"][kind];
            let source = expected_matrices(case(&all, out["source"].as_str().unwrap()));
            let first = out["first_input"].as_u64().unwrap() as usize;
            let count = out["count"].as_u64().unwrap() as usize;
            let bytes = std::fs::read(
                repo_root()
                    .join("tests/expected")
                    .join(out["data_file"].as_str().unwrap()),
            )
            .unwrap();
            let want: Vec<f64> = bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let size = muvera.embedding_size();
            assert_eq!(want.len(), count * size);
            for (i, vectors) in source[first..first + count].iter().enumerate() {
                let got = match kind {
                    "document" => muvera.process_document(vectors.view()).unwrap(),
                    _ => muvera.process_query(vectors.view()).unwrap(),
                };
                let d = got
                    .iter()
                    .zip(&want[i * size..(i + 1) * size])
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f64, f64::max);
                assert!(d <= 1e-9, "{name} {kind} {i}: |diff| {d:e}");
            }
        }
    }
}

#[test]
fn late_registry_matches_fastembeds_listing() {
    let p = repo_root().join("tests/expected/late_models.json");
    let oracle: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let ours = LateInteractionTextEmbedding::list_supported_models();
    assert_eq!(ours.len(), oracle.len());
    for (o, d) in oracle.iter().zip(&ours) {
        assert_eq!(o["model"], d.core.model.as_str());
        assert_eq!(o["dim"].as_u64().unwrap() as usize, d.dim);
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
}
