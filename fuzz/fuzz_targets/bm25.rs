//! BM25 over arbitrary text in every language: no panic, sorted unique indices, finite
//! positive weights, query weights of 1.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use embedkit::sparse::bm25::{self, Bm25Options};
use embedkit::{SparseEmbedding, SparseTextEmbedding};
use embedkit_fuzz::test_model;
use libfuzzer_sys::fuzz_target;

static MODELS: LazyLock<Vec<SparseTextEmbedding>> = LazyLock::new(|| {
    let dir = test_model("bm25");
    let mut models: Vec<SparseTextEmbedding> = bm25::LANGUAGES
        .iter()
        .map(|lang| {
            SparseTextEmbedding::builder("Qdrant/bm25")
                .specific_model_path(&dir)
                .bm25(Bm25Options {
                    language: lang.to_string(),
                    ..Bm25Options::default()
                })
                .build()
                .expect("bm25 loads")
        })
        .collect();
    models.push(
        SparseTextEmbedding::builder("Qdrant/bm25")
            .specific_model_path(&dir)
            .bm25(Bm25Options {
                disable_stemmer: true,
                token_max_length: 3,
                ..Bm25Options::default()
            })
            .build()
            .expect("bm25 loads"),
    );
    models
});

#[derive(Arbitrary, Debug)]
struct Input {
    model: u8,
    texts: Vec<String>,
}

fn check(e: &SparseEmbedding, query: bool) {
    assert_eq!(e.indices.len(), e.values.len());
    assert!(
        e.indices.windows(2).all(|w| w[0] < w[1]),
        "indices sorted and unique: {:?}",
        e.indices
    );
    for &v in &e.values {
        assert!(v.is_finite() && v > 0.0, "weight {v}");
        if query {
            assert_eq!(v, 1.0);
        }
    }
}

fuzz_target!(|input: Input| {
    let model = &MODELS[usize::from(input.model) % MODELS.len()];
    for t in &input.texts {
        for w in bm25::words(t) {
            assert!(!w.is_empty());
        }
    }
    let docs = model
        .embed(&input.texts, None)
        .expect("BM25 never fails on text");
    assert_eq!(docs.len(), input.texts.len());
    docs.iter().for_each(|e| check(e, false));
    let queries = model
        .query_embed(&input.texts, None)
        .expect("BM25 never fails on text");
    assert_eq!(queries.len(), input.texts.len());
    queries.iter().for_each(|e| check(e, true));
});
