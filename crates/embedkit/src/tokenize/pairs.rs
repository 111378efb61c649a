//! How a (query, document) pair shares the model's length: the split Python
//! `tokenizers` makes, which the Rust crate's pair truncation does not (see
//! `TextTokenizer::encode_pairs`).

use tokenizers::{PostProcessor, TruncationDirection};

use super::{direction_of, TextTokenizer, TruncationSide};
use crate::error::{Error, Result};

impl TextTokenizer {
    /// [`Self::encode_pairs`] with each over-long text cut at `side` (`None`: where the
    /// model's configuration says).
    pub fn encode_pairs_from<A: AsRef<str>, B: AsRef<str>>(
        &self,
        pairs: &[(A, B)],
        side: Option<TruncationSide>,
    ) -> Result<Vec<(Vec<u32>, Vec<u32>)>> {
        let err = Error::from;
        let added = self
            .tokenizer
            .get_post_processor()
            .map(|p| p.added_tokens(true))
            .unwrap_or(0);
        let budget = self.max_length.saturating_sub(added);
        let direction = side.map_or_else(|| direction_of(&self.tokenizer), Into::into);
        let right = direction == TruncationDirection::Right;
        let mut out = Vec::with_capacity(pairs.len());
        for (a, b) in pairs {
            let (a, b) = (a.as_ref(), b.as_ref());
            let (cut_a, cut_b) = (self.cut_long(a, right), self.cut_long(b, right));
            let mut first = self.untruncated.encode_fast(cut_a, false).map_err(err)?;
            let mut second = self.untruncated.encode_fast(cut_b, false).map_err(err)?;
            // A cut text keeps more tokens than the budget, but the split of the budget
            // also depends on which text is longer; a cut is kept only where that stays
            // known, else the whole text is tokenized.
            let (was_a, was_b) = (cut_a.len() < a.len(), cut_b.len() < b.len());
            let known = match (was_a, was_b) {
                (false, false) => true,
                (true, false) => first.len() > second.len(),
                (false, true) => first.len() <= second.len(),
                (true, true) => false,
            };
            if !known {
                if was_a {
                    first = self.untruncated.encode_fast(a, false).map_err(err)?;
                }
                if was_b {
                    second = self.untruncated.encode_fast(b, false).map_err(err)?;
                }
            }
            let (n1, n2) = pair_lengths(first.len(), second.len(), budget);
            first.truncate(n1, 0, direction);
            second.truncate(n2, 0, direction);
            first.take_overflowing();
            second.take_overflowing();
            let encoding = self
                .untruncated
                .post_process(first, Some(second), true)
                .map_err(err)?;
            out.push((
                encoding.get_ids().to_vec(),
                encoding.get_type_ids().to_vec(),
            ));
        }
        Ok(out)
    }
}

/// Lengths two texts of `n1` and `n2` tokens keep in a pair of at most `budget` tokens
/// (special tokens excluded), as Python `tokenizers` 0.23.3 truncates longest-first.
fn pair_lengths(n1: usize, n2: usize, budget: usize) -> (usize, usize) {
    if n1 + n2 <= budget {
        return (n1, n2);
    }
    let shorter = n1.min(n2);
    let (short, long) = if 2 * shorter <= budget {
        (shorter, budget - shorter)
    } else {
        (budget / 2, budget / 2 + budget % 2)
    };
    // The longer text (the second on a tie) takes the larger share.
    if n1 > n2 {
        (long, short)
    } else {
        (short, long)
    }
}

#[cfg(test)]
mod pair_tests {
    use super::pair_lengths;

    #[test]
    fn pairs_split_like_python_tokenizers() {
        // (first, second, budget) -> kept, as Python tokenizers 0.23.3 keeps them.
        assert_eq!(pair_lengths(10, 20, 61), (10, 20));
        assert_eq!(pair_lengths(10, 100, 61), (10, 51));
        assert_eq!(pair_lengths(100, 10, 61), (51, 10));
        assert_eq!(pair_lengths(40, 50, 61), (30, 31));
        assert_eq!(pair_lengths(50, 40, 61), (31, 30));
        assert_eq!(pair_lengths(45, 45, 61), (30, 31));
        assert_eq!(pair_lengths(150, 78, 61), (31, 30));
        assert_eq!(pair_lengths(30, 40, 62), (30, 32));
        assert_eq!(pair_lengths(40, 30, 62), (32, 30));
    }
}
