//! Image parity with fastembed 0.9.1 (tests/expected/image_cases.json): every image model
//! pipeline of the registry on seeded vision graphs with the real I/O names, fed a real
//! photo (JPEG baseline, progressive and 4:4:4, PNG, lossy and lossless WebP) and edge
//! cases (1x1, 4000x100, grayscale, grayscale+alpha, palette with transparency, RGBA,
//! 16-bit grayscale, EXIF-rotated JPEG, animated GIF).

use crate::common;

use embedkit::{Error, ImageEmbedding, ImageInput};
use serde_json::Value;

use common::*;

fn image_cases() -> Value {
    let p = repo_root().join("tests/expected/image_cases.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn image_path(name: &str) -> std::path::PathBuf {
    repo_root().join("tests/data/images").join(name)
}

#[test]
fn image_models_match_fastembed() {
    let all = image_cases();
    let tol = all["tolerance"].as_f64().unwrap() as f32;
    let mut failures = Vec::new();
    for case in all["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let dir = checked_model_dir(case);
        let want = expected(case);
        let paths: Vec<std::path::PathBuf> = case["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| image_path(n.as_str().unwrap()))
            .collect();
        for batch_size in [16, 3] {
            let model = ImageEmbedding::builder(case["model"].as_str().unwrap())
                .specific_model_path(&dir)
                .threads(2)
                .batch_size(batch_size)
                .build()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let got = model.embed(paths.clone(), None).unwrap();
            let (d, i, _) = max_abs_diff(&got, &want);
            eprintln!("{name:<26} batch {batch_size:>2}: max |diff| {d:.2e} (image {i})");
            if d > tol {
                failures.push(format!("{name}: |diff| {d:e} on {}", paths[i].display()));
            }
        }
        // Bytes and decoded images give the same vectors as paths.
        let model = ImageEmbedding::builder(case["model"].as_str().unwrap())
            .specific_model_path(&dir)
            .build()
            .unwrap();
        let bytes: Vec<ImageInput> = paths[..3]
            .iter()
            .map(|p| ImageInput::Bytes(std::fs::read(p).unwrap()))
            .collect();
        let (d, _, _) = max_abs_diff(&model.embed(bytes, None).unwrap(), &want[..3]);
        assert!(d <= tol, "{name} from bytes: {d:e}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn decoding_errors_name_the_file_and_lose_nothing() {
    let all = image_cases();
    let case = &all["cases"][0];
    let dir = checked_model_dir(case);
    let model = ImageEmbedding::builder(case["model"].as_str().unwrap())
        .specific_model_path(&dir)
        .build()
        .unwrap();
    let tmp = common::TmpDir::new("embedkit-img", "bad-files");
    let truncated = tmp.join("truncated.jpg");
    let photo = std::fs::read(image_path("photo.jpg")).unwrap();
    std::fs::write(&truncated, &photo[..400]).unwrap();
    let garbage = tmp.join("garbage.png");
    std::fs::write(&garbage, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let text = tmp.join("notes.txt");
    std::fs::write(&text, b"hello").unwrap();
    for bad in [&truncated, &garbage, &text] {
        let err = model.embed([bad.clone()], None).unwrap_err();
        assert!(
            matches!(err, Error::Image { .. })
                && err.to_string().contains(&bad.display().to_string()),
            "{err}"
        );
    }
    let missing = tmp.join("missing.png");
    let err = model.embed([missing.clone()], None).unwrap_err();
    assert!(err.to_string().contains("missing.png"), "{err}");
    // Images before a bad one in the stream still come out.
    let inputs = vec![image_path("photo.png"), garbage.clone()];
    let results: Vec<_> = ImageEmbedding::builder(case["model"].as_str().unwrap())
        .specific_model_path(&dir)
        .batch_size(1)
        .build()
        .unwrap()
        .embed_iter(inputs, None)
        .collect::<Vec<_>>();
    assert!(results[0].is_ok() && results[1].is_err());
    // The failed image is named by its position among the call's inputs, whichever
    // batch it fell in.
    let good = image_path("photo.png");
    let inputs = vec![good.clone(), good.clone(), good.clone(), garbage, good];
    let err = ImageEmbedding::builder(case["model"].as_str().unwrap())
        .specific_model_path(&dir)
        .batch_size(2)
        .build()
        .unwrap()
        .embed(inputs, None)
        .unwrap_err();
    assert_eq!(err.input_index(), Some(3), "{err}");
    assert!(err.to_string().contains("(input 3)"), "{err}");
}

#[test]
fn image_registry_matches_fastembeds_listing() {
    let p = repo_root().join("tests/expected/image_models.json");
    let oracle: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let ours = ImageEmbedding::list_supported_models();
    assert_eq!(ours.len(), oracle.len());
    for (o, d) in oracle.iter().zip(&ours) {
        assert_eq!(o["model"], d.core.model.as_str());
        assert_eq!(o["dim"].as_u64().unwrap() as usize, d.dim);
        assert_eq!(o["description"], d.core.description.as_str());
        assert_eq!(o["license"], d.core.license.as_str());
        assert_eq!(o["size_in_GB"].as_f64().unwrap(), d.core.size_in_gb);
        assert_eq!(o["model_file"], d.core.model_file.as_str());
        assert_eq!(o["sources"]["hf"].as_str(), d.core.sources.hf.as_deref());
    }
}

#[path = "../examples/text_to_image.rs"]
mod text_to_image;

#[test]
fn text_to_image_example_ranks_the_sample_images() {
    // The seeded CLIP towers stand in for the real ones (no package carries CLIP's
    // weights): the ranking is not meaningful, the example's path through the API is.
    let ranked = text_to_image::rank(
        "a portrait of a woman in uniform",
        &repo_root().join("tests/data/images"),
        Some(model_dir("tiny:vision-clip-512")),
        Some(model_dir("tiny:clip-512")),
    )
    .unwrap();
    assert_eq!(ranked.len(), 15);
    assert!(ranked.windows(2).all(|w| w[0].1 >= w[1].1));
    assert!(ranked
        .iter()
        .all(|(_, s)| s.is_finite() && s.abs() <= 1.0 + 1e-5));
}
