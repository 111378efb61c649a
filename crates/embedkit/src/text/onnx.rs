//! Transformer text models in ONNX: tokenize, pad, run, pool.

use std::path::Path;

use ndarray::Ix3;
use ort::value::Tensor;

use super::pooling::pool;
use super::{DenseBackend, Embedding};
use crate::error::{Error, Result};
use crate::inputs::TokenBatch;
use crate::late_interaction::MultiVector;
use crate::quantize;
use crate::registry::{DenseModelDescription, DensePipeline, OutputSelector};
use crate::runtime::{Lane, OnnxModel, RuntimeOptions};
use crate::tokenize::{TextTokenizer, Token, TokenSpan, TokenizerOptions, TruncationSide};

/// The inputs embedkit knows how to feed a text model.
const KNOWN_INPUTS: [&str; 4] = ["input_ids", "attention_mask", "token_type_ids", "task_id"];

pub(crate) struct OnnxBackend {
    model_name: String,
    tokenizer: TextTokenizer,
    model: OnnxModel,
    pipeline: DensePipeline,
    output: String,
    has_tasks: bool,
    /// The graph takes a `task_id`.
    feeds_task: bool,
}

impl OnnxBackend {
    pub(crate) fn load(
        desc: &DenseModelDescription,
        dir: &Path,
        runtime: &RuntimeOptions,
    ) -> Result<Self> {
        let tokenizer = TextTokenizer::from_dir(
            dir,
            TokenizerOptions {
                pad_to_max_length: desc.pipeline.pad_to_max_length,
            },
        )?;
        let default_task = desc.tasks.values().copied().min().unwrap_or(0);
        let calibration = |m: &OnnxModel| {
            let mut feeds = quantize::text_feeds(&tokenizer, m)?;
            if m.has_input("task_id") {
                for feed in &mut feeds {
                    let scalar = ndarray::arr0(default_task).into_dyn();
                    feed.push(("task_id".into(), Tensor::from_array(scalar)?.into_dyn()));
                }
            }
            Ok(feeds)
        };
        let model = quantize::load(&dir.join(&desc.core.model_file), runtime, &calibration)?;
        let name = &desc.core.model;
        let mismatch = |reason: String| Error::ModelMismatch {
            model: name.clone(),
            reason,
        };
        model.check_inputs(name, &KNOWN_INPUTS)?;
        let has_tasks = !desc.tasks.is_empty();
        if model.has_input("task_id") && !has_tasks {
            return Err(mismatch(
                "the ONNX graph needs a `task_id`, but the model has no tasks in the registry"
                    .into(),
            ));
        }
        let output = match &desc.pipeline.output {
            OutputSelector::Index(i) => model.output_names().get(*i).cloned().ok_or_else(|| {
                mismatch(format!(
                    "the pipeline reads output #{i}, but the graph has only {:?}",
                    model.output_names()
                ))
            })?,
            OutputSelector::Name(output) => model.require_output(name, output)?,
        };
        model.check_output_width(name, &output, desc.dim)?;
        let feeds_task = model.has_input("task_id");
        Ok(OnnxBackend {
            model_name: name.clone(),
            tokenizer,
            model,
            pipeline: desc.pipeline.clone(),
            output,
            has_tasks,
            feeds_task,
        })
    }
}

impl DenseBackend for OnnxBackend {
    fn tokenize(&self, texts: &[&str], side: Option<TruncationSide>) -> Result<Vec<Vec<u32>>> {
        self.tokenizer.encode_batch_from(texts, side)
    }

    fn parallelism(&self) -> usize {
        self.model.parallelism()
    }

    fn vocab_size(&self) -> usize {
        self.tokenizer.inner().get_vocab_size(true)
    }

    fn max_length(&self) -> usize {
        self.tokenizer.max_length()
    }

    fn overlong(&self, texts: &[&str]) -> Result<Vec<bool>> {
        self.tokenizer.overlong(texts)
    }

    fn decode(&self, ids: &[Vec<u32>], skip_special: bool) -> Result<Vec<String>> {
        self.tokenizer.decode(ids, skip_special)
    }

    fn describe_tokens(&self, ids: &[u32]) -> Vec<Token> {
        self.tokenizer.describe(ids)
    }

    fn spans(&self, texts: &[&str], add_special: bool) -> Result<Vec<Vec<TokenSpan>>> {
        self.tokenizer.spans(texts, add_special)
    }

    fn embed_batch(
        &self,
        sequences: &[&[u32]],
        task: Option<i64>,
        lane: Lane,
    ) -> Result<Vec<Embedding>> {
        let (batch, inputs) = self.feeds(sequences, task)?;
        // Pooled straight from ONNX Runtime's output buffer: no copy of [batch, seq, dim].
        self.model
            .run_f32_view(lane, inputs, &self.output, |output| {
                if output.ndim() < 2 {
                    return Err(Error::ModelMismatch {
                        model: self.model_name.clone(),
                        reason: format!(
                            "output {:?} has shape {:?}; expected [batch, seq, dim] or [batch, dim]",
                            self.output,
                            output.shape()
                        ),
                    });
                }
                pool(
                    output,
                    &batch.attention_mask,
                    self.pipeline.pooling,
                    self.pipeline.normalize,
                )
            })
    }

    /// The output's rows at the attended positions, as they come (fastembed's
    /// `TokenEmbeddingsModel`, TEI's `/embed_all`): padding dropped, wherever it is.
    fn token_vectors(
        &self,
        sequences: &[&[u32]],
        task: Option<i64>,
        lane: Lane,
    ) -> Result<Vec<MultiVector>> {
        let (batch, inputs) = self.feeds(sequences, task)?;
        self.model
            .run_f32_view(lane, inputs, &self.output, |output| {
                let output = output.into_dimensionality::<Ix3>().map_err(|_| {
                    Error::Unsupported(format!(
                        "model {} outputs one vector per text ({:?} has no token axis), not \
                         one per token",
                        self.model_name, self.output
                    ))
                })?;
                output
                    .outer_iter()
                    .zip(batch.attention_mask.outer_iter())
                    .map(|(rows, mask)| {
                        let kept: Vec<usize> = (0..mask.len()).filter(|&t| mask[t] != 0).collect();
                        let mut m = MultiVector::zeros((kept.len(), rows.ncols()));
                        for (r, &t) in kept.iter().enumerate() {
                            m.row_mut(r).assign(&rows.row(t));
                        }
                        Ok(m)
                    })
                    .collect()
            })
    }
}

impl OnnxBackend {
    /// The padded batch and the graph's inputs for `sequences`.
    fn feeds(
        &self,
        sequences: &[&[u32]],
        task: Option<i64>,
    ) -> Result<(TokenBatch, Vec<(String, ort::value::DynValue)>)> {
        let batch = TokenBatch::new(sequences, self.tokenizer.padding());
        let mut inputs = batch.feed(&self.model)?;
        if self.feeds_task {
            let task = task.filter(|_| self.has_tasks).ok_or_else(|| {
                Error::InvalidArgument(format!("model {} needs a task id", self.model_name))
            })?;
            let scalar = ndarray::arr0(task).into_dyn();
            inputs.push(("task_id".into(), Tensor::from_array(scalar)?.into_dyn()));
        }
        Ok((batch, inputs))
    }
}
