//! The handle's token methods: what a model's tokenizer makes of texts, and back.

use super::{refs, Capability, EmbeddingModel};
use crate::error::Result;
use crate::pipeline::Purpose;
use crate::tokenize::{Token, TokenSpan, TruncationSide};

impl EmbeddingModel {
    /// Token ids of each text as the model gets it (truncated, special tokens included).
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        self.tokenize_at(texts, None)
    }

    /// [`Self::tokenize`] with over-long texts cut at `side` (`None`: where the model
    /// says).
    pub fn tokenize_at<S: AsRef<str>>(
        &self,
        texts: &[S],
        side: Option<TruncationSide>,
    ) -> Result<Vec<Vec<u32>>> {
        super::ops::require(&*self.inner, Capability::Tokens)?;
        self.inner.tokenize(&refs(texts), side)
    }

    /// Each text's tokens as the model gets them.
    pub fn tokens<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<Token>>> {
        super::ops::require(&*self.inner, Capability::Tokens)?;
        self.inner.tokens(&refs(texts))
    }

    /// Each text's tokens as the tokenizer gives them, not truncated, with the bytes of the
    /// text each stands for (TEI's `/tokenize`); special tokens only when `add_special`.
    pub fn token_spans<S: AsRef<str>>(
        &self,
        texts: &[S],
        add_special: bool,
    ) -> Result<Vec<Vec<TokenSpan>>> {
        super::ops::require(&*self.inner, Capability::Tokens)?;
        self.inner.token_spans(&refs(texts), add_special)
    }

    /// The text of each token-id sequence (special tokens dropped when `skip_special`).
    pub fn decode(&self, ids: &[Vec<u32>], skip_special: bool) -> Result<Vec<String>> {
        super::ops::require(&*self.inner, Capability::Tokens)?;
        self.inner.decode(ids, skip_special)
    }

    /// The position of the first text longer than the model takes (which embedding would
    /// truncate), if any: for callers that refuse rather than truncate.
    pub fn first_overlong<S: AsRef<str>>(&self, texts: &[S]) -> Result<Option<usize>> {
        super::ops::require(&*self.inner, Capability::Tokens)?;
        Ok(self
            .inner
            .overlong(&refs(texts))?
            .iter()
            .position(|&long| long))
    }

    /// fastembed's `token_count` of texts (see [`super::Capable::count_tokens`]).
    pub fn token_count<S: AsRef<str>>(
        &self,
        texts: &[S],
        purpose: Purpose,
        include_extension: bool,
    ) -> Result<usize> {
        self.inner
            .count_tokens(&refs(texts), purpose, include_extension)
    }

    /// fastembed's `token_count` of (query, document) pairs.
    pub fn pair_token_count<A: AsRef<str>, B: AsRef<str>>(
        &self,
        pairs: &[(A, B)],
    ) -> Result<usize> {
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_ref(), b.as_ref()))
            .collect();
        self.inner.count_pair_tokens(&pairs)
    }
}
