//! The test family (feature `test-family`) against its oracle (tests/expected/twin.json,
//! `scripts/oracle/gen_twin.py`: ONNX Runtime and Hugging Face `tokenizers` in Python,
//! one text at a time): each output alone and both from one pass, in batches of several
//! sizes, through the capability handle only.

use crate::common;

use std::collections::BTreeMap;

use embedkit::{
    CacheOptions, CallOptions, Capability, EmbeddingModel, LoadOptions, ModelKind, Operations,
};

use common::*;

#[test]
fn the_test_family_matches_its_oracle_through_the_handle() {
    let want = common::twin::expected(&repo_root());
    let load = LoadOptions {
        cache: CacheOptions {
            specific_model_path: Some(model_dir("tiny:twin-64")),
            ..Default::default()
        },
        ..Default::default()
    };
    let model = EmbeddingModel::load("embedkit/test-twin", load).unwrap();
    assert_eq!(model.kind(), ModelKind::Twin);
    assert_eq!(
        model.capabilities(),
        [
            Capability::DenseText,
            Capability::SparseText,
            Capability::Tokens
        ]
    );
    assert_eq!(model.dim(), Some(64));
    let texts: Vec<&str> = want.texts.iter().map(String::as_str).collect();
    for batch in [None, Some(3)] {
        let o = CallOptions::new().batch_size(batch);
        let dense = model.embed_dense(&texts, &o).unwrap();
        let sparse = model.embed_sparse(&texts, &o).unwrap();
        let both = model
            .embed_all(&texts, &[Capability::DenseText, Capability::SparseText], &o)
            .unwrap();
        let both_dense = both.dense.unwrap();
        let both_sparse = both.sparse.unwrap();
        assert!(both.multi.is_none());
        let maps = |v: &[embedkit::SparseEmbedding]| -> Vec<BTreeMap<u32, f32>> {
            v.iter().map(|s| s.as_dict()).collect()
        };
        want.check_dense(&format!("dense, batch {batch:?}"), &dense);
        want.check_dense(&format!("both, batch {batch:?}"), &both_dense);
        want.check_sparse(&format!("sparse, batch {batch:?}"), &maps(&sparse));
        want.check_sparse(&format!("both, batch {batch:?}"), &maps(&both_sparse));
        assert!(dense.iter().all(|v| v.len() == 64));
    }
    // Tokens as the oracle counted them (cut at the model's 128).
    let counted = model
        .token_count(&texts, embedkit::Purpose::Document, false)
        .unwrap();
    assert_eq!(counted, want.counts.iter().sum::<usize>());
    // With truncation off, an over-long text fails the call at its position; texts
    // that fit give the same vectors as with truncation on.
    let long = "word ".repeat(400);
    let o = CallOptions::new().truncate(false);
    let e = model
        .embed_dense(&[texts[0], long.as_str()], &o)
        .unwrap_err();
    assert!(
        matches!(
            e,
            embedkit::Error::TooLong {
                input: 1,
                max: Some(128)
            }
        ),
        "{e}"
    );
    assert_eq!(e.kind(), embedkit::ErrorKind::InvalidInput);
    let e = model.embed_sparse(&[long.as_str()], &o).unwrap_err();
    assert!(
        matches!(e, embedkit::Error::TooLong { input: 0, .. }),
        "{e}"
    );
    let fits = model.embed_dense(&texts[..2], &o).unwrap();
    assert_eq!(
        fits,
        model.embed_dense(&texts[..2], &CallOptions::new()).unwrap()
    );
    // What it lacks is refused by name.
    let e = model.embed_multi(&["a"], &CallOptions::new()).unwrap_err();
    assert_eq!(e.kind(), embedkit::ErrorKind::Unsupported, "{e}");
}
