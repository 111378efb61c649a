//! How a (query, document) pair shares the model's length: the split Python
//! `tokenizers` makes, which the Rust crate's pair truncation does not (see
//! `TextTokenizer::encode_pairs`).

/// Lengths two texts of `n1` and `n2` tokens keep in a pair of at most `budget` tokens
/// (special tokens excluded), as Python `tokenizers` 0.23.3 truncates longest-first.
pub(super) fn pair_lengths(n1: usize, n2: usize, budget: usize) -> (usize, usize) {
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
