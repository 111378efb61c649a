//! Multimodal late-interaction parity with fastembed 0.9.1
//! (tests/expected/multimodal_cases.json): ColPali and ColModernVBert on seeded graphs
//! with their real input names, fed texts and real images, at fastembed's batchings.

use crate::common;

use embedkit::{LateInteractionMultimodalEmbedding, Muvera, MuveraOptions};
use ndarray::Array2;
use serde_json::Value;

use common::*;

fn cases() -> Value {
    let p = repo_root().join("tests/expected/multimodal_cases.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn expected_matrices(case: &Value) -> Vec<Array2<f32>> {
    let dim = case["dim"].as_u64().unwrap() as usize;
    let bytes = std::fs::read(
        repo_root()
            .join("tests/expected")
            .join(case["data_file"].as_str().unwrap()),
    )
    .unwrap();
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut at = 0;
    case["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let n = r.as_u64().unwrap() as usize * dim;
            let m = Array2::from_shape_vec((n / dim, dim), floats[at..at + n].to_vec()).unwrap();
            at += n;
            m
        })
        .collect()
}

#[test]
fn multimodal_models_match_fastembed() {
    let all = cases();
    let tol = all["tolerance"].as_f64().unwrap() as f32;
    let mut failures = Vec::new();
    for case in all["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let dir = checked_model_dir(case);
        let model = LateInteractionMultimodalEmbedding::builder(case["model"].as_str().unwrap())
            .specific_model_path(&dir)
            .threads(2)
            .build()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let batch = case["batch_size"].as_u64().unwrap() as usize;
        let got = if case["method"] == "embed_text" {
            let texts = inputs(case["inputs"].as_str().unwrap());
            let counts = &case["token_counts"];
            assert_eq!(
                model.token_count(&texts, false).unwrap() as u64,
                counts["plain"].as_u64().unwrap(),
                "{name}"
            );
            assert_eq!(
                model.token_count(&texts, true).unwrap() as u64,
                counts["extended"].as_u64().unwrap(),
                "{name}"
            );
            model.embed_text(&texts, Some(batch)).unwrap()
        } else {
            let images: Vec<std::path::PathBuf> = case["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| {
                    repo_root()
                        .join("tests/data/images")
                        .join(n.as_str().unwrap())
                })
                .collect();
            model.embed_image(images, Some(batch)).unwrap()
        };
        let want = expected_matrices(case);
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
        eprintln!("{name:<26}: max |diff| {worst:.2e}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn muvera_encodes_multimodal_outputs() {
    let all = cases();
    let case = &all["cases"][0];
    let dir = checked_model_dir(case);
    let model = LateInteractionMultimodalEmbedding::builder(case["model"].as_str().unwrap())
        .specific_model_path(&dir)
        .build()
        .unwrap();
    let muvera = Muvera::from_multivector_model(&model, MuveraOptions::default()).unwrap();
    let m = &expected_matrices(case)[3];
    assert_eq!(
        muvera.process_query(m.view()).unwrap().len(),
        muvera.embedding_size()
    );
}

#[test]
fn multimodal_registry_matches_fastembeds_listing() {
    let p = repo_root().join("tests/expected/multimodal_models.json");
    let oracle: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let ours = LateInteractionMultimodalEmbedding::list_supported_models();
    assert_eq!(ours.len(), oracle.len());
    for (o, d) in oracle.iter().zip(&ours) {
        assert_eq!(o["model"], d.core.model.as_str());
        assert_eq!(o["dim"].as_u64().unwrap() as usize, d.dim);
        assert_eq!(o["description"], d.core.description.as_str());
        assert_eq!(o["license"], d.core.license.as_str());
        assert_eq!(o["size_in_GB"].as_f64().unwrap(), d.core.size_in_gb);
        assert_eq!(o["model_file"], d.core.model_file.as_str());
        let files: Vec<&str> = o["additional_files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(files, d.core.additional_files, "{}", d.core.model);
    }
}

/// `image_vectors_at_most` (what a server bounds an answer by before decoding images)
/// holds every matrix fastembed gave for the oracle's images and is the largest of them
/// (the oracle's photos split into the most tiles; all ColPali images give the same
/// rows), and a square larger than the model's longest edge reaches it.
#[test]
fn image_vectors_at_most_bounds_every_image() {
    let all = cases();
    let mut checked = 0;
    for case in all["cases"].as_array().unwrap() {
        if case["method"] != "embed_image" {
            continue;
        }
        let name = case["name"].as_str().unwrap();
        let model = LateInteractionMultimodalEmbedding::builder(case["model"].as_str().unwrap())
            .specific_model_path(checked_model_dir(case))
            .build()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let bound = model
            .image_vectors_at_most()
            .unwrap()
            .unwrap_or_else(|| panic!("{name}: no bound"));
        let rows: Vec<usize> = case["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(rows.iter().max(), Some(&bound), "{name}: {rows:?}");
        let square = image::DynamicImage::new_rgb8(1000, 1000);
        let got = model
            .embed_image([embedkit::ImageInput::Image(square)], Some(1))
            .unwrap();
        assert_eq!(got[0].nrows(), bound, "{name}: the largest image");
        checked += 1;
    }
    assert!(
        checked >= 2,
        "the oracle has images for both multimodal models"
    );
}
