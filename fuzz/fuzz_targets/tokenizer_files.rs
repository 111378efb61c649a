//! The tokenizer's files (`tokenizer.json`, `tokenizer_config.json`, `config.json`,
//! `special_tokens_map.json`) damaged one at a time, whole or one key: loading gives a
//! tokenizer or an error, never a panic, and a loaded tokenizer encodes within its
//! maximum length.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use arbitrary::Arbitrary;
use embedkit::tokenize::{TextTokenizer, TokenizerOptions};
use embedkit_fuzz::{check_message, copy_dir, json_value, scratch, test_model, with_key};
use libfuzzer_sys::fuzz_target;

const FILES: [&str; 4] = [
    "tokenizer_config.json",
    "config.json",
    "special_tokens_map.json",
    "tokenizer.json",
];

/// Keys the loader reads that the seeded files may not have.
const EXTRA_KEYS: [&str; 8] = [
    "model_max_length",
    "max_position_embeddings",
    "pad_token",
    "truncation_side",
    "padding_side",
    "added_tokens",
    "truncation",
    "padding",
];

struct Fixture {
    dir: PathBuf,
    originals: Vec<(String, serde_json::Value)>,
}

/// The seeded BERT tokenizer cut to its first 1000 words (the special tokens are among
/// them): the same structure, parsed thirty times faster, so the fuzzer tries more.
fn small_vocabulary(mut tokenizer: serde_json::Value) -> serde_json::Value {
    if let Some(vocab) = tokenizer["model"]["vocab"].as_object_mut() {
        vocab.retain(|_, id| id.as_u64().is_some_and(|id| id < 1000));
    }
    tokenizer
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = scratch("tokenizer").join("model");
    copy_dir(&test_model("cls-384"), &dir);
    let originals = FILES
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(dir.join(f)).expect("seeded file");
            let mut value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            if *f == "tokenizer.json" {
                value = small_vocabulary(value);
                std::fs::write(dir.join(f), value.to_string()).expect("write");
            }
            (f.to_string(), value)
        })
        .collect();
    Fixture { dir, originals }
});

#[derive(Arbitrary, Debug)]
struct Input {
    file: u8,
    whole: bool,
    key: u8,
    data: Vec<u8>,
    text: String,
    max_length: u16,
}

fuzz_target!(|input: Input| {
    let fx = &*FIXTURE;
    let (name, original) = &fx.originals[usize::from(input.file) % FILES.len()];
    let path = fx.dir.join(name);
    let bytes = if input.whole {
        input.data.clone()
    } else {
        let changed = with_key(original, input.key, &EXTRA_KEYS, json_value(&input.data));
        serde_json::to_vec(&changed).expect("serializes")
    };
    std::fs::write(&path, &bytes).expect("write");

    let loaded = TextTokenizer::from_dir(&fx.dir, TokenizerOptions::default());
    match loaded {
        Ok(tok) => {
            let max = tok.max_length();
            assert!(max >= 1, "a loaded tokenizer has a positive max length");
            let texts = [input.text.as_str(), "hello world", ""];
            match tok.encode_batch(&texts) {
                Ok(ids) => {
                    assert_eq!(ids.len(), texts.len());
                    for seq in &ids {
                        assert!(seq.len() <= max, "{} tokens > max {max}", seq.len());
                    }
                }
                Err(e) => check_message(&e),
            }
            if let Err(e) = tok.encode_pairs(&[(input.text.as_str(), "a document")]) {
                check_message(&e);
            }
            match tok.with_max_length(usize::from(input.max_length)) {
                Ok(short) => {
                    if let Ok(ids) = short.encode_batch(&texts) {
                        for seq in &ids {
                            assert!(seq.len() <= short.max_length());
                        }
                    }
                }
                Err(e) => check_message(&e),
            }
        }
        Err(e) => check_message(&e),
    }

    // Put the file back for the next input.
    std::fs::write(&path, serde_json::to_vec(original).expect("serializes")).expect("restore");
});
