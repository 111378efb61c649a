//! TextEmbedding's behaviour beyond raw parity: streaming, lazy loading, prefixes,
//! devices, and errors on bad models.

use crate::common;

use std::cell::Cell;
use std::rc::Rc;

use embedkit::{Device, Error, Provider, Purpose, TextEmbedding};

use common::*;

fn tiny(name: &str, dir: &str) -> TextEmbedding {
    TextEmbedding::builder(name)
        .specific_model_path(model_dir(dir))
        .threads(1)
        .build()
        .unwrap()
}

#[test]
fn streaming_pulls_input_lazily() {
    let model = tiny("BAAI/bge-small-en-v1.5", "tiny:cls-384");
    let pulled = Rc::new(Cell::new(0usize));
    let counter = pulled.clone();
    // An endless source: only a bounded window may ever be read ahead.
    let source = (0..).map(move |i| {
        counter.set(counter.get() + 1);
        format!("document number {i}")
    });
    let first: Vec<_> = model
        .embed_iter(source, Some(8))
        .take(5)
        .collect::<embedkit::Result<_>>()
        .unwrap();
    assert_eq!(first.len(), 5);
    // One window was read, and not an input more: 256 for batches of 8.
    let window = model.window_len(Some(8), Purpose::Document).unwrap();
    assert_eq!(window, 256);
    assert_eq!(pulled.get(), window, "inputs read ahead");
}

#[test]
fn streaming_reports_an_input_error_after_the_good_vectors() {
    let model = tiny("BAAI/bge-small-en-v1.5", "tiny:cls-384");
    let items: Vec<embedkit::Result<String>> = vec![
        Ok("one".into()),
        Ok("two".into()),
        Err(Error::Input {
            line: 3,
            reason: "bad".into(),
        }),
        Ok("never".into()),
    ];
    let out: Vec<_> = model
        .try_embed_iter(items, None, embedkit::Purpose::Document)
        .collect();
    assert_eq!(out.len(), 3);
    assert!(out[0].is_ok() && out[1].is_ok());
    assert!(matches!(out[2], Err(Error::Input { line: 3, .. })));
}

#[test]
fn embed_iter_equals_embed() {
    let model = tiny("nomic-ai/nomic-embed-text-v1.5", "tiny:mean-768");
    let texts = inputs("edge");
    let a = model.embed(&texts, Some(5)).unwrap();
    let b: Vec<_> = model
        .embed_iter(texts.clone(), Some(2))
        .collect::<embedkit::Result<_>>()
        .unwrap();
    assert!(max_abs_diff(&a, &b).0 <= 1e-6);
    assert!(model.embed(&Vec::<String>::new(), None).unwrap().is_empty());
}

#[test]
fn prefixes_apply_only_on_request() {
    let plain = tiny("nomic-ai/nomic-embed-text-v1.5", "tiny:mean-768");
    let prefixed = TextEmbedding::builder("nomic-ai/nomic-embed-text-v1.5")
        .specific_model_path(model_dir("tiny:mean-768"))
        .add_prefixes(true)
        .build()
        .unwrap();
    let q = "what is a vector database";
    let want_q = plain.embed(&[format!("search_query: {q}")], None).unwrap();
    let want_p = plain
        .embed(&[format!("search_document: {q}")], None)
        .unwrap();
    assert_eq!(prefixed.query_embed(&[q], None).unwrap(), want_q);
    assert_eq!(prefixed.passage_embed(&[q], None).unwrap(), want_p);
    // Without the opt-in, as fastembed: no prefix.
    assert_eq!(
        plain.query_embed(&[q], None).unwrap(),
        plain.embed(&[q], None).unwrap()
    );
}

#[test]
fn lazy_load_defers_loading_the_graph() {
    let src = model_dir("tiny:cls-384");
    let tmp = common::TmpDir::new("embedkit-lazy", "graph");
    for f in [
        "tokenizer.json",
        "tokenizer_config.json",
        "config.json",
        "special_tokens_map.json",
    ] {
        std::fs::copy(src.join(f), tmp.join(f)).unwrap();
    }
    std::fs::write(tmp.join("model_optimized.onnx"), b"not a model").unwrap();
    let build = |lazy| {
        TextEmbedding::builder("BAAI/bge-small-en-v1.5")
            .specific_model_path(&tmp)
            .lazy_load(lazy)
            .build()
    };
    // ONNX Runtime refuses the file: its own error is the source.
    assert!(matches!(build(false), Err(Error::UnloadableModel { .. })));
    let model = build(true).expect("lazy build does not open the graph");
    let err = model.embed(&["x"], None).unwrap_err();
    assert!(matches!(err, Error::UnloadableModel { .. }), "{err}");
    assert_eq!(err.kind(), embedkit::ErrorKind::ModelMismatch);
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn cuda_without_a_gpu_is_a_clear_error_and_cpu_providers_work() {
    let dir = model_dir("tiny:cls-384");
    if !embedkit::unstable::runtime::gpu_present() {
        let err = TextEmbedding::builder("BAAI/bge-small-en-v1.5")
            .specific_model_path(&dir)
            .device(Device::Cuda)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Device(_)), "{err}");
        assert!(err.to_string().contains("CUDA"), "{err}");
    }
    let cpu = TextEmbedding::builder("BAAI/bge-small-en-v1.5")
        .specific_model_path(&dir)
        .providers(vec![Provider::Cpu])
        .build()
        .unwrap();
    assert_eq!(cpu.embed(&["x"], None).unwrap()[0].len(), 384);
}

#[test]
fn a_graph_without_the_expected_output_is_refused_before_inference() {
    let mut m = embedkit::CustomTextModel::new(
        "embedkit-test/wrong-output",
        embedkit::Pooling::Disabled,
        false,
        embedkit::ModelSource::hf("embedkit-test/wrong-output"),
        384,
    );
    m.model_file = "model_optimized.onnx".into();
    m.output_name = Some("sentence_embedding".into());
    let err = TextEmbedding::from_description(m.into())
        .specific_model_path(model_dir("tiny:cls-384"))
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("sentence_embedding") && msg.contains("last_hidden_state"),
        "{msg}"
    );
}

#[test]
fn a_custom_model_registers_once_by_name_or_loads_as_a_value() {
    let custom = || {
        let mut m = embedkit::CustomTextModel::new(
            "embedkit-test/registered-once",
            embedkit::Pooling::Cls,
            true,
            embedkit::ModelSource::hf("embedkit-test/registered-once"),
            384,
        );
        m.model_file = "model_optimized.onnx".into();
        m
    };
    // fastembed's way: registered for the process, then built by name.
    TextEmbedding::add_custom_model(custom()).unwrap();
    assert!(TextEmbedding::list_supported_models()
        .iter()
        .any(|d| d.core.model == "embedkit-test/registered-once" && d.core.custom));
    let by_name = TextEmbedding::builder("EMBEDKIT-TEST/registered-once")
        .specific_model_path(model_dir("tiny:cls-384"))
        .build()
        .unwrap();
    // A second registration of the name, in any case, is refused.
    let mut again = custom();
    again.model = "embedkit-test/REGISTERED-ONCE".into();
    assert!(matches!(
        TextEmbedding::add_custom_model(again),
        Err(Error::DuplicateModel(_))
    ));
    // As a value: no registration, the same vectors.
    let by_value = TextEmbedding::from_description(custom().into())
        .specific_model_path(model_dir("tiny:cls-384"))
        .build()
        .unwrap();
    let text = ["a custom model"];
    assert_eq!(
        by_name.embed(&text, None).unwrap(),
        by_value.embed(&text, None).unwrap()
    );
    // A description given as a value is checked like a registered one.
    let mut zero = custom();
    zero.dim = 0;
    let err = TextEmbedding::from_description(zero.into())
        .specific_model_path(model_dir("tiny:cls-384"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("dim"), "{err}");
}

#[test]
fn a_dimension_other_than_the_registrys_is_an_error() {
    // The 768-dimension model folder under a 384-dimension registry name.
    let model = TextEmbedding::builder("BAAI/bge-small-en-v1.5")
        .specific_model_path(model_dir("tiny:pooled2d-768"))
        .lazy_load(true)
        .build();
    // pooled2d-768 stores its graph under another file name: a missing-file error.
    assert!(matches!(model, Err(Error::MissingFile { .. })));
    // The graph declares its width: refused when the model is built.
    let err = TextEmbedding::builder("BAAI/bge-small-en-v1.5")
        .specific_model_path(model_dir("tiny:cls-768-trunc16-notype"))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::ModelMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("768") && err.to_string().contains("384"),
        "{err}"
    );
    // Loaded lazily, the same error comes with the first call.
    let model = TextEmbedding::builder("BAAI/bge-small-en-v1.5")
        .specific_model_path(model_dir("tiny:cls-768-trunc16-notype"))
        .lazy_load(true)
        .build()
        .unwrap();
    let err = model.embed(&["x"], None).unwrap_err();
    assert!(
        err.to_string().contains("768") && err.to_string().contains("384"),
        "{err}"
    );
}
