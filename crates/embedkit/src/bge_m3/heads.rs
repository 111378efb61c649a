//! BGE-M3's two heads as `BAAI/bge-m3` ships them: torch checkpoints of `Linear` layers
//! (`weight` [out, in], `bias` [out]), applied to the last hidden state in Rust.
//!
//! The checkpoints are read with `pytorch-reader` (Burn's reader: the ZIP and legacy
//! containers `torch.save` writes, no Python or torch needed, a small dependency tree)
//! rather than folded into the graph: the heads are a few matrix products next to a
//! 24-layer encoder, and the ONNX file stays the one the user downloaded.

use std::path::Path;

use ndarray::{Array1, Array2, ArrayView2};
use pytorch_reader::{DType, PytorchReader};

use crate::error::{Error, Result};

/// One `Linear` layer: `x · weightᵀ + bias`.
pub(crate) struct Linear {
    /// `weightᵀ`, [in, out], so a batch of rows multiplies it directly.
    weight_t: Array2<f32>,
    bias: Array1<f32>,
}

impl Linear {
    /// Reads `weight` and `bias` from the checkpoint at `path`, checking they take
    /// `input` values.
    pub(crate) fn load(model: &str, path: &Path, input: usize) -> Result<Self> {
        let bad = |reason: String| Error::ModelMismatch {
            model: model.to_string(),
            reason: format!("{}: {reason}", path.display()),
        };
        let reader = PytorchReader::new(path).map_err(|e| bad(e.to_string()))?;
        let tensor = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
            let t = reader
                .get(name)
                .ok_or_else(|| bad(format!("the checkpoint has no tensor {name:?}")))?;
            let bytes = t.read().map_err(|e| bad(e.to_string()))?;
            Ok((t.shape().to_vec(), floats(t.dtype(), &bytes).map_err(bad)?))
        };
        let (wshape, weight) = tensor("weight")?;
        let (bshape, bias) = tensor("bias")?;
        let [out, inp] = wshape[..] else {
            return Err(bad(format!("weight has shape {wshape:?}, not [out, in]")));
        };
        if inp != input || bshape != [out] {
            return Err(bad(format!(
                "weight {wshape:?} and bias {bshape:?} do not fit hidden states of {input}"
            )));
        }
        let weight = Array2::from_shape_vec((out, inp), weight)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Linear {
            weight_t: weight.reversed_axes().as_standard_layout().into_owned(),
            bias: Array1::from(bias),
        })
    }

    /// The layer's output width.
    pub(crate) fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// The layer applied to each row of `x`.
    pub(crate) fn apply(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        x.dot(&self.weight_t) + &self.bias
    }
}

/// A checkpoint tensor's native-endian bytes as f32 (torch saves heads as float32, or
/// half precision when exported with `use_fp16`).
fn floats(dtype: DType, bytes: &[u8]) -> std::result::Result<Vec<f32>, String> {
    let halves = |f: fn(u16) -> f32| {
        bytes
            .chunks_exact(2)
            .map(|b| f(u16::from_ne_bytes([b[0], b[1]])))
            .collect()
    };
    Ok(match dtype {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        DType::F16 => halves(|h| half::f16::from_bits(h).to_f32()),
        DType::BF16 => halves(|h| half::bf16::from_bits(h).to_f32()),
        other => return Err(format!("tensors of {other:?} are not a linear layer's")),
    })
}
