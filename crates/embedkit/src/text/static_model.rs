//! Static (model2vec) embeddings: the normalized sum of token vectors read from
//! `model.safetensors`, with no network to run. As fastembed: no special tokens, at most
//! 512 tokens, unknown tokens left out, optional `mapping` / `weights` tensors of
//! vocabulary-quantized models.

use std::path::Path;
use std::sync::OnceLock;

use safetensors::{Dtype, SafeTensors};
use tokenizers::{Tokenizer, TruncationParams};

use super::pooling::l2_normalize;
use super::{DenseBackend, Embedding};
use crate::error::{Error, Result};
use crate::registry::DenseModelDescription;
use crate::runtime::Lane;
use crate::tokenize::{describe_ids, spans_with, truncating_at, Token, TokenSpan, TruncationSide};

/// Same cap as the ONNX exports of these models and model2vec's default.
const MAX_LENGTH: usize = 512;

pub(crate) struct StaticBackend {
    tokenizer: Tokenizer,
    /// The tokenizer truncating at the other end, made when a call first asks.
    other_side: OnceLock<Tokenizer>,
    unk_id: Option<u32>,
    /// Row-major [rows, dim].
    embeddings: Vec<f32>,
    dim: usize,
    rows: usize,
    mapping: Option<Vec<i64>>,
    weights: Option<Vec<f32>>,
}

impl StaticBackend {
    pub(crate) fn load(desc: &DenseModelDescription, dir: &Path) -> Result<Self> {
        crate::tokenize::guard_fork();
        let path = dir.join(&desc.core.model_file);
        let invalid = |reason: String| Error::InvalidModel {
            path: path.clone(),
            reason,
        };
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| invalid(e.to_string()))?;
        let emb = tensors
            .tensor("embeddings")
            .map_err(|_| invalid("no `embeddings` tensor".into()))?;
        if emb.shape().len() != 2 {
            return Err(invalid(format!(
                "`embeddings` has shape {:?}, expected [vocab, dim]",
                emb.shape()
            )));
        }
        let (rows, dim) = (emb.shape()[0], emb.shape()[1]);
        let embeddings = to_f32(emb.dtype(), emb.data()).map_err(invalid)?;
        let mapping = match tensors.tensor("mapping") {
            Ok(t) => Some(to_i64(t.dtype(), t.data()).map_err(invalid)?),
            Err(_) => None,
        };
        let weights = match tensors.tensor("weights") {
            Ok(t) => Some(to_f32(t.dtype(), t.data()).map_err(invalid)?),
            Err(_) => None,
        };

        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| Error::InvalidModel {
            path: tok_path.clone(),
            reason: e.to_string(),
        })?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_LENGTH,
                ..Default::default()
            }))
            .map_err(Error::from)?;
        tokenizer.with_padding(None);
        let unk_id = unknown_token_id(&tok_path)?;
        Ok(StaticBackend {
            tokenizer,
            other_side: OnceLock::new(),
            unk_id,
            embeddings,
            dim,
            rows,
            mapping,
            weights,
        })
    }
}

/// The unknown token's id: `unk_id` of a Unigram model, else the id of `unk_token`.
fn unknown_token_id(tok_path: &Path) -> Result<Option<u32>> {
    let text = std::fs::read_to_string(tok_path).map_err(|e| Error::io(tok_path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::InvalidModel {
        path: tok_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let model = &json["model"];
    if model["type"] == "Unigram" {
        return Ok(model["unk_id"].as_u64().and_then(|v| u32::try_from(v).ok()));
    }
    let unk = model["unk_token"].as_str();
    Ok(unk
        .and_then(|u| model["vocab"].get(u))
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok()))
}

fn to_f32(dtype: Dtype, data: &[u8]) -> std::result::Result<Vec<f32>, String> {
    Ok(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()) as f32)
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
            .collect(),
        other => return Err(format!("unsupported tensor dtype {other:?}")),
    })
}

fn to_i64(dtype: Dtype, data: &[u8]) -> std::result::Result<Vec<i64>, String> {
    Ok(match dtype {
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect(),
        Dtype::I32 => data
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        other => return Err(format!("unsupported mapping dtype {other:?}")),
    })
}

// IEEE half to single; a dozen lines instead of a dependency for one conversion.
fn half_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: value = f * 2^-24.
            let v = f as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

impl DenseBackend for StaticBackend {
    fn tokenize(&self, texts: &[&str], side: Option<TruncationSide>) -> Result<Vec<Vec<u32>>> {
        let enc = truncating_at(&self.tokenizer, &self.other_side, side)?
            .encode_batch_fast(texts.to_vec(), false)
            .map_err(Error::from)?;
        Ok(enc.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    fn max_length(&self) -> usize {
        MAX_LENGTH
    }

    fn overlong(&self, texts: &[&str]) -> Result<Vec<bool>> {
        // The tokenizer truncates; what it cut off is its overflow.
        let enc = self
            .tokenizer
            .encode_batch_fast(texts.to_vec(), false)
            .map_err(Error::from)?;
        Ok(enc
            .iter()
            .map(|e| !e.get_overflowing().is_empty())
            .collect())
    }

    fn decode(&self, ids: &[Vec<u32>], skip_special: bool) -> Result<Vec<String>> {
        crate::tokenize::decode_with(&self.tokenizer, ids, skip_special)
    }

    fn describe_tokens(&self, ids: &[u32]) -> Vec<Token> {
        describe_ids(&self.tokenizer, ids)
    }

    fn spans(&self, texts: &[&str], _add_special: bool) -> Result<Vec<Vec<TokenSpan>>> {
        // Untruncated: a copy without the limit (only for this rarely called method).
        let mut whole = self.tokenizer.clone();
        whole.with_truncation(None).map_err(Error::from)?;
        // The model adds no special tokens (see `tokenize`), whatever tokenizer.json says.
        spans_with(&whole, texts, false)
    }

    fn embed_batch(
        &self,
        sequences: &[&[u32]],
        _task: Option<i64>,
        _lane: Lane,
    ) -> Result<Vec<Embedding>> {
        sequences
            .iter()
            .map(|ids| {
                let mut sum = vec![0f32; self.dim];
                for &id in ids.iter().filter(|&&id| Some(id) != self.unk_id) {
                    let token = id as usize;
                    let row = match &self.mapping {
                        Some(m) => m.get(token).copied().and_then(|r| usize::try_from(r).ok()),
                        None => Some(token),
                    }
                    .filter(|&r| r < self.rows)
                    .ok_or_else(|| {
                        Error::Tokenizer(format!(
                            "token id {id} has no row in the embedding table ({} rows)",
                            self.rows
                        ))
                    })?;
                    let weight = match &self.weights {
                        Some(w) => w.get(token).copied().unwrap_or(1.0),
                        None => 1.0,
                    };
                    let vector = &self.embeddings[row * self.dim..(row + 1) * self.dim];
                    for (s, &v) in sum.iter_mut().zip(vector) {
                        *s += v * weight;
                    }
                }
                l2_normalize(&mut sum);
                Ok(sum)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::half_to_f32;

    #[test]
    fn half_conversion() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0000), 0.0);
        assert!((half_to_f32(0x0001) - 5.960_464_5e-8).abs() < 1e-12);
        assert!(half_to_f32(0x7c00).is_infinite());
    }
}
