//! Differential: cutting long texts before tokenizing (`TextTokenizer::cut_long`) must
//! give exactly the tokens of tokenizing them whole, for single texts and for pairs. Small
//! maximum lengths make the cut window a few hundred bytes, so fuzzed texts reach it.
#![no_main]

use std::sync::LazyLock;

use embedkit::tokenize::{TextTokenizer, TokenizerOptions};
use embedkit_fuzz::test_model;
use libfuzzer_sys::fuzz_target;

/// (cutting, whole) tokenizers at each maximum length.
static TOKENIZERS: LazyLock<Vec<(TextTokenizer, TextTokenizer)>> = LazyLock::new(|| {
    let base = TextTokenizer::from_dir(&test_model("cls-384"), TokenizerOptions::default())
        .expect("seeded tokenizer");
    [3, 4, 8, 16]
        .iter()
        .map(|&n| {
            let tok = base.clone().with_max_length(n).expect("max length");
            (tok.clone(), tok.with_long_text_cut(false))
        })
        .collect()
});

// The layout of an input: `[tokenizer, repeat, split, text...]`; the text (lossy
// UTF-8) is repeated up to 64 times to reach the window, and the pair's other text is
// its prefix up to `split` characters.
fuzz_target!(|data: &[u8]| {
    let Some((&[which, repeat, split], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let (cut, whole) = &TOKENIZERS[usize::from(which) % TOKENIZERS.len()];
    let base = String::from_utf8_lossy(rest);
    let text = base.repeat(usize::from(repeat % 64) + 1);
    let other: String = base.chars().take(usize::from(split)).collect();
    assert_eq!(
        cut.encode_batch(&[text.as_str()]).expect("encodes"),
        whole.encode_batch(&[text.as_str()]).expect("encodes"),
        "cutting changed the tokens"
    );
    for pair in [
        (text.as_str(), other.as_str()),
        (other.as_str(), text.as_str()),
    ] {
        assert_eq!(
            cut.encode_pairs(&[pair]).expect("encodes"),
            whole.encode_pairs(&[pair]).expect("encodes"),
            "cutting changed a pair"
        );
    }
});
