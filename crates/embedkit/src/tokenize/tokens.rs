//! What a tokenizer made of a text, for people and for other servers' clients: each
//! token's vocabulary text and special flag, its bytes in the text (TEI's `/tokenize`),
//! and token ids back to text.

use tokenizers::Tokenizer;

use crate::error::{Error, Result};

/// [`TextTokenizer::decode`] with any `tokenizers` tokenizer; ids outside the vocabulary
/// are an error rather than skipped.
pub(crate) fn decode_with(
    tokenizer: &Tokenizer,
    ids: &[Vec<u32>],
    skip_special: bool,
) -> Result<Vec<String>> {
    let size = tokenizer.get_vocab_size(true) as u32;
    for (i, seq) in ids.iter().enumerate() {
        if let Some(&bad) = seq.iter().find(|&&id| id >= size) {
            return Err(Error::InvalidArgument(format!(
                "ids[{i}] holds token id {bad}, outside the vocabulary of {size}"
            )));
        }
    }
    let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    tokenizer
        .decode_batch(&refs, skip_special)
        .map_err(Error::from)
}

/// One token as a model sees it: its id, its text in the vocabulary, and whether it
/// is a special token (`[CLS]`, `<s>`, ...).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Token {
    pub id: u32,
    pub text: String,
    pub special: bool,
}

/// A text's token and the bytes of the text it stands for, as TEI's `/tokenize` gives it:
/// a special token has its vocabulary text and no offsets, any other the text's bytes
/// `start..stop` (UTF-8 offsets, as `tokenizers` reports them).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenSpan {
    pub id: u32,
    pub text: String,
    pub special: bool,
    pub start: Option<usize>,
    pub stop: Option<usize>,
}

/// [`TokenSpan`]s of each text with `tokenizer` as it is set (truncation included).
pub(crate) fn spans_with<S: AsRef<str>>(
    tokenizer: &Tokenizer,
    texts: &[S],
    add_special: bool,
) -> Result<Vec<Vec<TokenSpan>>> {
    texts
        .iter()
        .map(|text| {
            let text = text.as_ref();
            // `encode` (not `encode_fast`): the offsets are the point.
            let e = tokenizer.encode(text, add_special).map_err(Error::from)?;
            let pieces = e
                .get_ids()
                .iter()
                .zip(e.get_offsets())
                .zip(e.get_special_tokens_mask());
            Ok(pieces
                .zip(e.get_tokens())
                .map(|(((&id, &(start, stop)), &special), token)| {
                    if special == 1 {
                        return TokenSpan {
                            id,
                            text: token.clone(),
                            special: true,
                            start: None,
                            stop: None,
                        };
                    }
                    // Offsets may split a character (byte-level BPE): lossy, as TEI.
                    let bytes = text
                        .as_bytes()
                        .get(start..stop.max(start))
                        .unwrap_or_default();
                    TokenSpan {
                        id,
                        text: String::from_utf8_lossy(bytes).into_owned(),
                        special: false,
                        start: Some(start),
                        stop: Some(stop),
                    }
                })
                .collect())
        })
        .collect()
}

/// [`Token`]s of `ids` in `tokenizer`'s vocabulary ("" for ids outside it).
pub(crate) fn describe_ids(tokenizer: &Tokenizer, ids: &[u32]) -> Vec<Token> {
    let special: std::collections::HashSet<u32> = tokenizer
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, t)| t.special)
        .map(|(id, _)| id)
        .collect();
    ids.iter()
        .map(|&id| Token {
            id,
            text: tokenizer.id_to_token(id).unwrap_or_default(),
            special: special.contains(&id),
        })
        .collect()
}
