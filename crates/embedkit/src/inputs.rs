//! Graph inputs as the families build them: padded token batches (ids, attention mask,
//! token types) and stacked image tensors, and the named inputs a graph takes.

use ndarray::{Array2, Array3, Array4};
use ort::value::{DynValue, Tensor};

use crate::error::{Error, Result};
use crate::runtime::OnnxModel;
use crate::tokenize::{PadSide, Padding};

/// Named graph inputs, in the order they are given.
pub type Feed = Vec<(String, DynValue)>;

/// One batch of token sequences, padded to its longest (or the fixed length) on the
/// tokenizer's side: rows in batch order.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBatch {
    pub input_ids: Array2<i64>,
    pub attention_mask: Array2<i64>,
    /// Segment ids of sentence pairs; zeros for single texts.
    pub token_type_ids: Array2<i64>,
}

impl TokenBatch {
    /// Pads `sequences` as `padding` says.
    pub fn new(sequences: &[&[u32]], padding: &Padding) -> Self {
        Self::with_types(sequences, None, padding)
    }

    /// Pads `sequences` and, when given, their token type ids (one per token).
    pub fn with_types(sequences: &[&[u32]], types: Option<&[&[u32]]>, padding: &Padding) -> Self {
        let longest = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut width = padding.fixed_length.unwrap_or(0).max(longest);
        if let Some(m) = padding.pad_to_multiple_of.filter(|m| *m > 0) {
            width = width.div_ceil(m).saturating_mul(m);
        }
        let rows = sequences.len();
        let mut input_ids = Array2::from_elem((rows, width), i64::from(padding.pad_id));
        let mut attention_mask = Array2::zeros((rows, width));
        let mut token_type_ids = Array2::zeros((rows, width));
        for (r, seq) in sequences.iter().enumerate() {
            let start = match padding.side {
                PadSide::Right => 0,
                PadSide::Left => width - seq.len(),
            };
            for (c, &id) in seq.iter().enumerate() {
                input_ids[[r, start + c]] = i64::from(id);
                attention_mask[[r, start + c]] = 1;
            }
            if let Some(t) = types.and_then(|t| t.get(r)) {
                for (c, &ty) in t.iter().take(seq.len()).enumerate() {
                    token_type_ids[[r, start + c]] = i64::from(ty);
                }
            }
        }
        TokenBatch {
            input_ids,
            attention_mask,
            token_type_ids,
        }
    }

    pub fn rows(&self) -> usize {
        self.input_ids.nrows()
    }

    /// The inputs a text graph takes among `input_ids`, `attention_mask` and
    /// `token_type_ids`, named as the graph names them.
    pub fn feed(&self, model: &OnnxModel) -> Result<Feed> {
        let mut feed: Feed = vec![(
            "input_ids".to_string(),
            Tensor::from_array(self.input_ids.clone())?.into_dyn(),
        )];
        if model.has_input("attention_mask") {
            feed.push((
                "attention_mask".into(),
                Tensor::from_array(self.attention_mask.clone())?.into_dyn(),
            ));
        }
        if model.has_input("token_type_ids") {
            feed.push((
                "token_type_ids".into(),
                Tensor::from_array(self.token_type_ids.clone())?.into_dyn(),
            ));
        }
        Ok(feed)
    }
}

/// Preprocessed images `[3, h, w]` stacked into one `[n, 3, h, w]` tensor; images the
/// preprocessing left at different sizes cannot share a batch.
pub fn stack_images(images: &[Array3<f32>]) -> Result<Array4<f32>> {
    let Some(first) = images.first() else {
        return Err(Error::InvalidArgument("no images to stack".into()));
    };
    let shape = first.dim();
    if let Some(other) = images.iter().find(|a| a.dim() != shape) {
        return Err(Error::InvalidArgument(format!(
            "the preprocessing gives images of different sizes ({shape:?} and {:?}); \
             embed them in separate batches",
            other.dim()
        )));
    }
    let mut batch = Array4::<f32>::zeros((images.len(), shape.0, shape.1, shape.2));
    for (mut slot, a) in batch.outer_iter_mut().zip(images) {
        slot.assign(a);
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn padding(side: PadSide) -> Padding {
        Padding {
            side,
            pad_id: 9,
            pad_token: "[PAD]".into(),
            pad_to_multiple_of: None,
            fixed_length: None,
        }
    }

    #[test]
    fn pads_right_and_left() {
        let a: &[u32] = &[1, 2, 3];
        let b: &[u32] = &[4];
        let right = TokenBatch::new(&[a, b], &padding(PadSide::Right));
        assert_eq!(right.input_ids.row(1).to_vec(), vec![4, 9, 9]);
        assert_eq!(right.attention_mask.row(1).to_vec(), vec![1, 0, 0]);
        let left = TokenBatch::new(&[a, b], &padding(PadSide::Left));
        assert_eq!(left.input_ids.row(1).to_vec(), vec![9, 9, 4]);
        assert_eq!(left.attention_mask.row(1).to_vec(), vec![0, 0, 1]);
        assert_eq!(left.input_ids.row(0).to_vec(), vec![1, 2, 3]);
    }

    #[test]
    fn type_ids_follow_their_tokens() {
        let a: &[u32] = &[1, 2, 3];
        let b: &[u32] = &[4, 5];
        let ta: &[u32] = &[0, 1, 1];
        let tb: &[u32] = &[0, 1];
        let left = TokenBatch::with_types(&[a, b], Some(&[ta, tb]), &padding(PadSide::Left));
        assert_eq!(left.token_type_ids.row(1).to_vec(), vec![0, 0, 1]);
        assert_eq!(left.token_type_ids.row(0).to_vec(), vec![0, 1, 1]);
    }

    #[test]
    fn fixed_length_and_multiple_of() {
        let a: &[u32] = &[1, 2, 3];
        let mut p = padding(PadSide::Right);
        p.fixed_length = Some(6);
        assert_eq!(TokenBatch::new(&[a], &p).input_ids.ncols(), 6);
        p.fixed_length = None;
        p.pad_to_multiple_of = Some(4);
        assert_eq!(TokenBatch::new(&[a], &p).input_ids.ncols(), 4);
    }

    #[test]
    fn images_of_different_sizes_are_refused() {
        let a = Array3::<f32>::zeros((3, 4, 4));
        let b = Array3::<f32>::zeros((3, 4, 5));
        assert_eq!(
            stack_images(&[a.clone(), a.clone()]).unwrap().dim(),
            (2, 3, 4, 4)
        );
        assert!(stack_images(&[a, b]).is_err());
        assert!(stack_images(&[]).is_err());
    }
}
