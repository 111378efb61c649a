//! Inputs that are large or strange in shape (issue 8): a 10 MB line, a million empty
//! texts, NUL bytes. Each must finish with bounded memory, and give the vectors the
//! model's truncation implies.

use crate::common;

use embedkit::TextEmbedding;

fn bge() -> TextEmbedding {
    TextEmbedding::builder("BAAI/bge-small-en-v1.5")
        .specific_model_path(common::model_dir("tiny:cls-384"))
        .threads(1)
        .build()
        .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A 10 MB text of words.
fn ten_megabytes() -> String {
    let words = [
        "vector",
        "search",
        "engine",
        "rust",
        "embedding",
        "qdrant",
        "model",
    ];
    let mut text = String::new();
    let mut i = 0usize;
    while text.len() < 10 << 20 {
        text.push_str(words[i % words.len()]);
        text.push(' ');
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    text
}

#[test]
fn a_ten_megabyte_line_is_cut_at_max_length() {
    const TEST: &str = "a_ten_megabyte_line_is_cut_at_max_length";
    let text = ten_megabytes();
    // The vector depends on the first 512 tokens only: the first 20 000 characters
    // hold them many times over.
    let prefix = &text[..text[..20_000].rfind(' ').unwrap()];
    if let Some(workload) = common::child_workload() {
        let model = bge();
        let input = if workload == "long" {
            text.as_str()
        } else {
            prefix
        };
        model.embed(&[input], None).unwrap();
        common::report_peak_rss();
        return;
    }
    let model = bge();
    let start = std::time::Instant::now();
    let long = model.embed(&[text.as_str()], None).unwrap();
    let took = start.elapsed();
    let short = model.embed(&[prefix], None).unwrap();
    assert!(max_diff(&long[0], &short[0]) < 1e-6);
    // Memory, in child processes: the 10 MB line against its 20 KB prefix (the text
    // itself is built in both).
    let grew = common::child_peak_rss_mb(module_path!(), TEST, "long")
        .saturating_sub(common::child_peak_rss_mb(module_path!(), TEST, "prefix"));
    eprintln!("10 MB line: {took:?}, peak RSS {grew} MB above the prefix's");
    // Tokenizing the whole line took 600 MB here; the cut keeps it to a few MB.
    assert!(grew < 100, "a 10 MB line grew the peak RSS by {grew} MB");
}

/// A deterministic generator (xorshift), so a failure names a reproducible text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Long texts of the shapes that make cutting hard: long words, runs of spaces,
/// combining accents, CJK, emoji, special-token literals, punctuation runs.
fn hard_text(rng: &mut Rng, bytes: usize) -> String {
    const PIECES: [&str; 16] = [
        "vector ",
        "search",
        " ",
        "   ",
        "\n\n",
        "\t",
        "[SEP]",
        "<s>",
        "</s>",
        "[CLS] ",
        "e\u{301}",
        "向量数据库",
        "🦀",
        "!!!",
        "1234",
        "Ünïcödé ",
    ];
    let mut s = String::new();
    while s.len() < bytes {
        match rng.below(40) {
            0 => s.push_str(&"x".repeat(100 + rng.below(3000))),
            1 => s.push_str(&" ".repeat(1 + rng.below(2000))),
            _ => s.push_str(PIECES[rng.below(PIECES.len())]),
        }
    }
    s
}

/// Writes a tokenizer folder: `tokenizer.json` from `json`, and a config naming the pad
/// token and the maximum length.
fn tokenizer_dir(name: &str, json: serde_json::Value, max_length: usize) -> common::TmpDir {
    let dir = common::TmpDir::new("embedkit-cut", name);
    std::fs::write(dir.join("tokenizer.json"), json.to_string()).unwrap();
    let config = serde_json::json!({"model_max_length": max_length, "pad_token": "<pad>"});
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    dir
}

fn special(id: u32, content: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
        "rstrip": false, "normalized": false, "special": true})
}

fn template() -> serde_json::Value {
    serde_json::json!({"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                   {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]},
                           "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}})
}

/// GPT-2 style: byte-level BPE (the 256 byte symbols and a few merges).
fn byte_level_bpe() -> serde_json::Value {
    let mut alphabet: Vec<char> = tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet()
        .into_iter()
        .collect();
    alphabet.sort();
    let mut vocab = serde_json::Map::new();
    for (i, t) in ["<pad>", "<s>", "</s>"].iter().enumerate() {
        vocab.insert(t.to_string(), i.into());
    }
    for c in alphabet {
        let n = vocab.len();
        vocab.insert(c.to_string(), n.into());
    }
    let merges = [
        ("Ġ", "s"),
        ("e", "a"),
        ("Ġs", "ea"),
        ("r", "c"),
        ("rc", "h"),
        ("x", "x"),
    ];
    for (a, b) in merges {
        let n = vocab.len();
        vocab.insert(format!("{a}{b}"), n.into());
    }
    let merges: Vec<_> = merges
        .iter()
        .map(|(a, b)| serde_json::json!([a, b]))
        .collect();
    serde_json::json!({"version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(0, "<pad>"), special(1, "<s>"), special(2, "</s>")],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                          "use_regex": true},
        "post_processor": template(), "decoder": null,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges}})
}

/// SentencePiece style: Unigram over Metaspace, with NFKC and a regex normalizer.
fn metaspace_unigram() -> serde_json::Value {
    let mut vocab = vec![
        serde_json::json!(["<pad>", 0.0]),
        serde_json::json!(["<s>", 0.0]),
        serde_json::json!(["</s>", 0.0]),
        serde_json::json!(["<unk>", 0.0]),
        serde_json::json!(["▁", -2.0]),
        serde_json::json!(["▁vector", -1.0]),
        serde_json::json!(["▁search", -1.0]),
        serde_json::json!(["xx", -1.5]),
    ];
    for c in "abcdefghijklmnopqrstuvwxyz0123456789!<>[]/".chars() {
        vocab.push(serde_json::json!([c.to_string(), -4.0]));
    }
    serde_json::json!({"version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(0, "<pad>"), special(1, "<s>"), special(2, "</s>"),
                         special(3, "<unk>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFKC"},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always",
                          "split": true},
        "post_processor": template(), "decoder": null,
        "model": {"type": "Unigram", "unk_id": 3, "vocab": vocab, "byte_fallback": false}})
}

#[test]
fn cutting_long_texts_keeps_the_tokens_of_the_whole_text() {
    use embedkit::tokenize::{TextTokenizer, TokenizerOptions};
    let wordpiece = common::model_dir("shared:all-MiniLM-L6-v2-fp32");
    let bpe = tokenizer_dir("bpe", byte_level_bpe(), 64);
    let unigram = tokenizer_dir("unigram", metaspace_unigram(), 64);
    let folders = [
        ("wordpiece", wordpiece.clone()),
        ("bpe", bpe.to_path_buf()),
        ("unigram", unigram.to_path_buf()),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut compared = 0;
    for (name, dir) in &folders {
        let full = TextTokenizer::from_dir(dir, TokenizerOptions::default()).unwrap();
        for max_length in [full.max_length(), 16, 64] {
            let tok = full.clone().with_max_length(max_length).unwrap();
            let whole = tok.clone().with_long_text_cut(false);
            for case in 0..40 {
                let bytes = 5_000 + rng.below(60_000);
                let text = hard_text(&mut rng, bytes);
                let cut = tok.encode_batch(&[text.as_str()]).unwrap().remove(0);
                let reference = tok.inner().encode(text.as_str(), true).unwrap();
                assert_eq!(
                    cut,
                    reference.get_ids(),
                    "{name}, max_length {max_length}, case {case}: cutting changed the tokens"
                );
                // Pairs (rerankers): long with short, short with long, long with long.
                let other_len = [10, 500, 5_000 + rng.below(60_000)][case % 3];
                let other = hard_text(&mut rng, other_len);
                for (a, b) in [(&text, &other), (&other, &text)] {
                    assert_eq!(
                        tok.encode_pairs(&[(a, b)]).unwrap(),
                        whole.encode_pairs(&[(a, b)]).unwrap(),
                        "{name}, max_length {max_length}, case {case}: a cut changed a pair"
                    );
                }
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 360);
}

#[test]
fn a_million_empty_texts_stream_in_bounded_memory() {
    const TEST: &str = "a_million_empty_texts_stream_in_bounded_memory";
    let count = match common::child_workload().as_deref() {
        Some("one") => 1,
        Some(_) => 1_000_000,
        None => {
            // Memory, in child processes: a million texts against one.
            let grew = common::child_peak_rss_mb(module_path!(), TEST, "million")
                .saturating_sub(common::child_peak_rss_mb(module_path!(), TEST, "one"));
            eprintln!("a million empty texts: peak RSS {grew} MB above one text's");
            // Held at once, the vectors alone would take 1e6 x 384 x 4 bytes = 1.5 GB.
            assert!(grew < 512, "peak RSS grew {grew} MB");
            return;
        }
    };
    let model = bge();
    let empty = model.embed(&[""], None).unwrap().remove(0);
    let mut n = 0usize;
    for v in model.embed_iter(std::iter::repeat_n("", count), Some(1024)) {
        let v = v.unwrap();
        if n.is_multiple_of(99_991) {
            assert!(max_diff(&v, &empty) < 1e-6, "vector {n} differs");
        }
        n += 1;
    }
    assert_eq!(n, count);
    common::report_peak_rss();
}
