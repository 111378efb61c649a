//! Long texts cut before tokenizing, keeping exactly the tokens the whole text keeps.

use super::TextTokenizer;

/// Bytes of text per kept token beyond which a text is cut before tokenizing
/// ([`TextTokenizer::cut_long`]): far more than any tokenizer's bytes per token.
const CUT_BYTES_PER_TOKEN: usize = 32;

/// How far before the end of the tokenized window a cut must be, so that no word or
/// added token running past the window's end reaches it.
const CUT_MARGIN: usize = 1024;

impl TextTokenizer {
    /// A prefix of a long text that truncates to the same tokens as the whole text.
    ///
    /// `tokenizers` normalizes and splits the whole text before truncating: a 10 MB line
    /// took seconds and 600 MB for the 512 tokens kept. A text longer than a window of
    /// [`CUT_BYTES_PER_TOKEN`] bytes per kept token is cut at the start of a word that
    /// begins at least [`CUT_MARGIN`] bytes before the window's end and has at least
    /// `max_length` tokens before it. Normalizing and pre-tokenizing are local (a split
    /// depends on the characters around it, an added token is matched within its own
    /// length), so the words before the cut tokenize exactly as in the whole text. When
    /// no such word exists (one huge word, truncation from the left), the whole text is
    /// tokenized.
    pub(super) fn cut_long<'a>(&self, text: &'a str, cuts_right: bool) -> &'a str {
        if !self.cut_long_texts || !cuts_right {
            return text;
        }
        let window = self
            .max_length
            .saturating_mul(CUT_BYTES_PER_TOKEN)
            .saturating_add(CUT_MARGIN);
        if text.len() <= window {
            return text;
        }
        let mut end = window;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let head = &text[..end];
        let Ok(encoding) = self.untruncated.encode(head, false) else {
            return text;
        };
        let words = encoding.get_word_ids();
        let offsets = encoding.get_offsets();
        let latest = end - CUT_MARGIN;
        // The last word start at or before `latest`, with enough tokens before it.
        // (Offsets are checked to fall between characters before slicing: a panic on a
        // user's text is worse than tokenizing it whole.)
        let cut = (self.max_length..words.len()).rev().find(|&i| {
            let starts_word = words[i].is_none() || words[i] != words[i - 1];
            let at = offsets[i].0;
            starts_word && at <= latest && at > offsets[i - 1].0 && text.is_char_boundary(at)
        });
        match cut {
            Some(i) => &text[..offsets[i].0],
            None => text,
        }
    }
}
