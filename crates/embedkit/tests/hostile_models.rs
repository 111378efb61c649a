//! Broken or hostile model folders (issue 8): each must fail with a clear error when the
//! model is built, before any inference, never with a panic or an out-of-bounds read.
//! Each case copies a seeded test model and damages one thing.

use crate::common;

use std::path::Path;

use embedkit::TextEmbedding;

/// A copy of a test model folder in a fresh temporary folder.
fn copy_of(symbolic: &str, case: &str) -> common::TmpDir {
    let src = common::model_dir(symbolic);
    let dst = common::TmpDir::new("embedkit-hostile", case);
    copy_dir(&src, &dst);
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

/// Builds the model from `dir` and returns the error's message; panics if it loads.
fn error_of(model: &str, dir: &Path) -> String {
    let built = std::panic::catch_unwind(|| {
        TextEmbedding::builder(model)
            .specific_model_path(dir)
            .threads(1)
            .build()
    })
    .unwrap_or_else(|_| panic!("building {model} from {} panicked", dir.display()));
    let err = match built {
        Ok(_) => panic!(
            "{model} from {} loaded, but the folder is broken",
            dir.display()
        ),
        Err(e) => e.to_string(),
    };
    let _ = std::fs::remove_dir_all(dir);
    err
}

const BGE: &str = "BAAI/bge-small-en-v1.5"; // the tiny:cls-384 folder's registry entry
const GRANITE: &str = "ibm-granite/granite-embedding-small-english-r2"; // tiny:builtin-384

fn assert_mentions(message: &str, words: &[&str]) {
    for w in words {
        assert!(message.contains(w), "{message:?} does not mention {w:?}");
    }
}

#[test]
fn truncated_onnx_file() {
    let dir = copy_of("tiny:cls-384", "truncated");
    let f = dir.join("model_optimized.onnx");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 3]).unwrap();
    let e = error_of(BGE, &dir);
    assert_mentions(
        &e,
        &["model_optimized.onnx", "ONNX Runtime could not load it"],
    );
}

#[test]
fn corrupt_onnx_file() {
    let dir = copy_of("tiny:cls-384", "corrupt");
    std::fs::write(
        dir.join("model_optimized.onnx"),
        b"\x08\x07not a protobuf at all\xff\xfe",
    )
    .unwrap();
    let e = error_of(BGE, &dir);
    assert_mentions(&e, &["model_optimized.onnx", "could not load"]);
}

#[test]
fn onnx_with_other_input_names() {
    // A BGE folder whose graph is a vision model's (takes pixel_values, not input_ids).
    let dir = copy_of("tiny:cls-384", "inputs");
    let vision = common::model_dir("tiny:vision-clip-512");
    std::fs::copy(vision.join("model.onnx"), dir.join("model_optimized.onnx")).unwrap();
    let e = error_of(BGE, &dir);
    assert_mentions(&e, &["input_ids"]);
}

#[test]
fn onnx_with_an_output_of_another_width() {
    // A BGE folder (384 dimensions) holding a 768-wide graph with the same input names:
    // refused when the model is built, not at the first batch.
    let dir = copy_of("tiny:cls-384", "width");
    let wide = common::model_dir("tiny:mean-768");
    std::fs::copy(
        wide.join("onnx/model.onnx"),
        dir.join("model_optimized.onnx"),
    )
    .unwrap();
    let e = error_of(BGE, &dir);
    assert_mentions(&e, &["last_hidden_state", "768 wide", "384 dimensions"]);
}

#[test]
fn missing_tokenizer_and_config_files() {
    // The tokenizer is required; the three config files are read when present (padding,
    // max length, special tokens) and their absence falls back to the tokenizer's own
    // settings. Either way no panic, and an error names the file.
    let dir = copy_of("tiny:cls-384", "missing-tokenizer");
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    assert_mentions(&error_of(BGE, &dir), &["tokenizer.json"]);
    for file in [
        "config.json",
        "special_tokens_map.json",
        "tokenizer_config.json",
    ] {
        let dir = copy_of("tiny:cls-384", &format!("missing-{file}"));
        std::fs::remove_file(dir.join(file)).unwrap();
        let built = std::panic::catch_unwind(|| {
            TextEmbedding::builder(BGE)
                .specific_model_path(&dir)
                .threads(1)
                .build()
        })
        .unwrap_or_else(|_| panic!("a folder without {file} made the build panic"));
        match built {
            Ok(m) => assert_eq!(m.embed(&["hello"], None).unwrap()[0].len(), 384),
            Err(e) => assert_mentions(&e.to_string(), &[file]),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn tokenizer_for_a_larger_vocabulary_than_the_model() {
    // A tokenizer with more tokens than the graph's embedding table: the model loads (the
    // table's size is inside the graph), and a text with an id past the table is an
    // error from ONNX Runtime's bounds check, never a read past the table.
    let dir = copy_of("tiny:cls-384", "vocab");
    let path = dir.join("tokenizer.json");
    let mut tok: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let vocab = tok["model"]["vocab"].as_object_mut().unwrap();
    let base = vocab.len();
    for i in 0..5000 {
        vocab.insert(format!("zzextra{i}"), serde_json::json!(base + i));
    }
    std::fs::write(&path, serde_json::to_vec(&tok).unwrap()).unwrap();
    let model = TextEmbedding::builder(BGE)
        .specific_model_path(&dir)
        .threads(1)
        .build()
        .unwrap();
    assert_eq!(model.embed(&["hello world"], None).unwrap().len(), 1);
    let e = model.embed(&["zzextra4999"], None).unwrap_err().to_string();
    assert!(
        e.to_lowercase().contains("out of bounds") || e.contains("indices"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn enormous_max_length_is_refused() {
    let dir = copy_of("tiny:cls-384", "maxlen");
    let path = dir.join("tokenizer_config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg["model_max_length"] = serde_json::json!(1u64 << 40);
    std::fs::write(&path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    // fastembed caps at 512 for this model; a huge value in the file must not allocate
    // anything proportional to it. The model loads and embeds normally.
    let model = TextEmbedding::builder(BGE)
        .specific_model_path(&dir)
        .threads(1)
        .build()
        .unwrap();
    let v = model.embed(&["hello world"], None).unwrap();
    assert_eq!(v[0].len(), 384);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn external_data_outside_the_model_folder() {
    // The graph names its weights file; point it outside the folder with `..`.
    let dir = copy_of("tiny:builtin-384", "external");
    let onnx = dir.join("onnx/model.onnx");
    let bytes = std::fs::read(&onnx).unwrap();
    let needle = b"model.onnx_data";
    let pos = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the graph names its external data file");
    // Same length, so the protobuf stays valid: "../../etc/passwd" is 16 bytes, the name 15.
    let mut hostile = bytes.clone();
    hostile[pos..pos + needle.len()].copy_from_slice(b"../../x/../data");
    std::fs::write(&onnx, &hostile).unwrap();
    let e = error_of(GRANITE, &dir);
    assert_mentions(&e, &["model.onnx", "escapes model directory"]);
}
