//! Transformer text models in ONNX: tokenize, pad, run, pool.

use std::path::Path;

use ndarray::Array2;
use ort::value::Tensor;

use super::pooling::pool;
use super::{DenseBackend, Embedding};
use crate::batching::PaddedBatch;
use crate::error::{Error, Result};
use crate::registry::{DenseModelDescription, DensePipeline, OutputSelector};
use crate::runtime::{OnnxModel, RuntimeOptions};
use crate::tokenize::{TextTokenizer, TokenizerOptions};

/// The inputs embedkit knows how to feed a text model.
const KNOWN_INPUTS: [&str; 4] = ["input_ids", "attention_mask", "token_type_ids", "task_id"];

pub(crate) struct OnnxBackend {
    model_name: String,
    tokenizer: TextTokenizer,
    model: OnnxModel,
    pipeline: DensePipeline,
    output: String,
    has_tasks: bool,
    /// The graph has an input of each name.
    feeds: Feeds,
}

#[derive(Debug, Clone, Copy)]
struct Feeds {
    attention_mask: bool,
    token_type_ids: bool,
    task_id: bool,
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
        let model = OnnxModel::load(&dir.join(&desc.model_file), runtime)?;
        let mismatch = |reason: String| Error::ModelMismatch {
            model: desc.model.clone(),
            reason,
        };
        if !model.has_input("input_ids") {
            return Err(mismatch(format!(
                "the ONNX graph {} has no `input_ids` input (its inputs: {:?})",
                model.path().display(),
                model.input_names()
            )));
        }
        if let Some(unknown) = model
            .input_names()
            .iter()
            .find(|n| !KNOWN_INPUTS.contains(&n.as_str()))
        {
            return Err(mismatch(format!(
                "the ONNX graph needs an input {unknown:?} that a text model is not given \
                 (known inputs: {KNOWN_INPUTS:?})"
            )));
        }
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
            OutputSelector::Name(name) => {
                if !model.output_names().contains(name) {
                    return Err(mismatch(format!(
                        "output {name:?} not found in the model, available outputs: {:?}",
                        model.output_names()
                    )));
                }
                name.clone()
            }
        };
        let feeds = Feeds {
            attention_mask: model.has_input("attention_mask"),
            token_type_ids: model.has_input("token_type_ids"),
            task_id: model.has_input("task_id"),
        };
        Ok(OnnxBackend {
            model_name: desc.model.clone(),
            tokenizer,
            model,
            pipeline: desc.pipeline.clone(),
            output,
            has_tasks,
            feeds,
        })
    }
}

impl DenseBackend for OnnxBackend {
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        self.tokenizer.encode_batch(texts)
    }

    fn embed_batch(&self, sequences: &[&[u32]], task: Option<i64>) -> Result<Vec<Embedding>> {
        let batch = PaddedBatch::new(sequences, self.tokenizer.padding());
        let mut inputs: Vec<(String, ort::value::DynValue)> = Vec::with_capacity(4);
        inputs.push((
            "input_ids".into(),
            Tensor::from_array(batch.input_ids.clone())?.into_dyn(),
        ));
        if self.feeds.attention_mask {
            inputs.push((
                "attention_mask".into(),
                Tensor::from_array(batch.attention_mask.clone())?.into_dyn(),
            ));
        }
        if self.feeds.token_type_ids {
            // fastembed feeds zeros, whatever type ids the tokenizer would give.
            let zeros = Array2::<i64>::zeros(batch.input_ids.dim());
            inputs.push((
                "token_type_ids".into(),
                Tensor::from_array(zeros)?.into_dyn(),
            ));
        }
        if self.feeds.task_id {
            let task = task.filter(|_| self.has_tasks).ok_or_else(|| {
                Error::InvalidArgument(format!("model {} needs a task id", self.model_name))
            })?;
            let scalar = ndarray::arr0(task).into_dyn();
            inputs.push(("task_id".into(), Tensor::from_array(scalar)?.into_dyn()));
        }
        let output = self.model.run_f32(inputs, &self.output)?;
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
            output.view(),
            &batch.attention_mask,
            self.pipeline.pooling,
            self.pipeline.normalize,
        )
    }
}
