//! Arbitrary text (and token ids) through tokenization, batching, the ONNX graph and
//! pooling of a seeded BERT model: no panic, one finite unit vector per input.
#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use embedkit::TextEmbedding;
use embedkit_fuzz::{check_message, test_model};
use libfuzzer_sys::fuzz_target;

static MODEL: LazyLock<TextEmbedding> = LazyLock::new(|| {
    TextEmbedding::builder("BAAI/bge-small-en-v1.5")
        .specific_model_path(test_model("cls-384"))
        .threads(1)
        .parallel(1)
        .build()
        .expect("the seeded model loads")
});

#[derive(Arbitrary, Debug)]
struct Input {
    texts: Vec<String>,
    raw: Vec<u8>,
    ids: Vec<Vec<u16>>,
    batch_size: u8,
    purpose: u8,
}

fn check_vectors(n: usize, result: embedkit::Result<Vec<Vec<f32>>>) {
    match result {
        Ok(vectors) => {
            assert_eq!(vectors.len(), n, "one vector per input");
            for v in &vectors {
                assert_eq!(v.len(), 384);
                assert!(v.iter().all(|x| x.is_finite()), "non-finite value");
                let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
            }
        }
        Err(e) => check_message(&e),
    }
}

fuzz_target!(|input: Input| {
    let mut texts = input.texts;
    texts.push(String::from_utf8_lossy(&input.raw).into_owned());
    // batch_size 0 must be an error, not a panic.
    let batch = Some(usize::from(input.batch_size % 9));
    let result = match input.purpose % 3 {
        0 => MODEL.embed(&texts, batch),
        1 => MODEL.query_embed(&texts, batch),
        _ => MODEL.passage_embed(&texts, batch),
    };
    if batch != Some(0) {
        assert!(result.is_ok(), "text never fails: {:?}", result.err());
    }
    check_vectors(texts.len(), result);

    // Token ids, some outside the 30522-word vocabulary, some sequences empty.
    let ids: Vec<Vec<u32>> = input
        .ids
        .iter()
        .map(|s| s.iter().map(|&i| u32::from(i) % 31_000).collect())
        .collect();
    check_vectors(ids.len(), MODEL.embed_token_ids(&ids, Some(4)));
});
