//! A text model's tokenizer and ONNX graph, loaded and checked together and run on
//! padded token batches: what the dense, sparse, late-interaction and rerank families
//! share below their own pre- and post-processing.

use std::path::Path;

use ndarray::ArrayD;

use crate::error::Result;
use crate::inputs::{Feed, TokenBatch};
use crate::registry::ModelCore;
use crate::runtime::{Lane, OnnxModel, RuntimeOptions};
use crate::tokenize::{TextTokenizer, TokenizerOptions, TruncationSide};

/// The inputs a text graph may take: ids, mask and token types.
pub const TEXT_INPUTS: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];

/// A text model ready to run: its tokenizer, its graph and the output it reads.
pub struct TextGraph {
    /// The registry name, for errors.
    pub name: String,
    pub tokenizer: TextTokenizer,
    pub model: OnnxModel,
    pub output: String,
}

impl TextGraph {
    /// Loads the tokenizer and graph of `core` from `dir`; the graph must take
    /// `input_ids` and nothing outside [`TEXT_INPUTS`]; its first output is read.
    pub fn load(
        core: &ModelCore,
        dir: &Path,
        runtime: &RuntimeOptions,
        tokenizer: TokenizerOptions,
    ) -> Result<Self> {
        let tokenizer = TextTokenizer::from_dir(dir, tokenizer)?;
        Self::with_tokenizer(core, dir, runtime, tokenizer, &TEXT_INPUTS)
    }

    /// As [`load`](Self::load) with a tokenizer the family configured itself and its own
    /// list of known inputs.
    pub fn with_tokenizer(
        core: &ModelCore,
        dir: &Path,
        runtime: &RuntimeOptions,
        tokenizer: TextTokenizer,
        known_inputs: &[&str],
    ) -> Result<Self> {
        let feeds = crate::quantize::text_feeds;
        Self::calibrated(core, dir, runtime, tokenizer, known_inputs, feeds)
    }

    /// As [`load`](Self::load) for a graph that reads sentence pairs (a cross-encoder):
    /// the int8 tier calibrates it on pairs.
    pub fn load_pairs(
        core: &ModelCore,
        dir: &Path,
        runtime: &RuntimeOptions,
        tokenizer: TokenizerOptions,
    ) -> Result<Self> {
        let tokenizer = TextTokenizer::from_dir(dir, tokenizer)?;
        let feeds = crate::quantize::pair_feeds;
        Self::calibrated(core, dir, runtime, tokenizer, &TEXT_INPUTS, feeds)
    }

    fn calibrated(
        core: &ModelCore,
        dir: &Path,
        runtime: &RuntimeOptions,
        tokenizer: TextTokenizer,
        known_inputs: &[&str],
        feeds: fn(&TextTokenizer, &OnnxModel) -> Result<Vec<Feed>>,
    ) -> Result<Self> {
        let calibration = |m: &OnnxModel| feeds(&tokenizer, m);
        let model = crate::quantize::load(&dir.join(&core.model_file), runtime, &calibration)?;
        model.check_inputs(&core.model, known_inputs)?;
        let output = model.first_output(&core.model)?;
        Ok(TextGraph {
            name: core.model.clone(),
            tokenizer,
            model,
            output,
        })
    }

    /// Reads output `name` instead of the first (failing when the graph lacks it).
    pub fn read_output(mut self, name: &str) -> Result<Self> {
        self.output = self.model.require_output(&self.name, name)?;
        Ok(self)
    }

    /// Token ids of each text, truncated, unpadded.
    pub fn tokenize(&self, texts: &[&str], side: Option<TruncationSide>) -> Result<Vec<Vec<u32>>> {
        self.tokenizer.encode_batch_from(texts, side)
    }

    /// Pads `sequences` as the tokenizer says.
    pub fn pad(&self, sequences: &[&[u32]]) -> TokenBatch {
        TokenBatch::new(sequences, self.tokenizer.padding())
    }

    /// Runs the graph on a padded batch and returns the output it reads.
    pub fn run(&self, batch: &TokenBatch, lane: Lane) -> Result<ArrayD<f32>> {
        self.run_feed(batch.feed(&self.model)?, lane)
    }

    /// Runs the graph and hands `f` a view of its output, not a copy.
    pub fn run_view<R>(
        &self,
        batch: &TokenBatch,
        lane: Lane,
        f: impl FnOnce(ndarray::ArrayViewD<'_, f32>) -> Result<R>,
    ) -> Result<R> {
        self.model
            .run_f32_view(lane, batch.feed(&self.model)?, &self.output, f)
    }

    /// Runs the graph on inputs the family built itself.
    pub fn run_feed(&self, feed: Feed, lane: Lane) -> Result<ArrayD<f32>> {
        self.model.run_f32(lane, feed, &self.output)
    }

    /// How many batches may run at once.
    pub fn parallelism(&self) -> usize {
        self.model.parallelism()
    }
}

/// [`TextPipeline`](crate::pipeline::TextPipeline) for a family that gives its graph the
/// texts' tokens as they are (no prefix, no marker): every method is its `graph`'s
/// tokenizer's.
macro_rules! text_pipeline_of_graph {
    ($family:ty) => {
        impl crate::pipeline::TextPipeline for $family {
            fn tokenize(
                &self,
                texts: &[&str],
                side: Option<crate::tokenize::TruncationSide>,
            ) -> crate::error::Result<Vec<Vec<u32>>> {
                self.graph.tokenize(texts, side)
            }
            fn describe_tokens(&self, ids: &[u32]) -> Vec<crate::tokenize::Token> {
                self.graph.tokenizer.describe(ids)
            }
            fn spans(
                &self,
                texts: &[&str],
                add_special: bool,
            ) -> crate::error::Result<Vec<Vec<crate::tokenize::TokenSpan>>> {
                self.graph.tokenizer.spans(texts, add_special)
            }
            fn max_length(&self) -> Option<usize> {
                Some(self.graph.tokenizer.max_length())
            }
            fn overlong(&self, texts: &[&str]) -> crate::error::Result<Vec<bool>> {
                self.graph.tokenizer.overlong(texts)
            }
            fn decode(
                &self,
                ids: &[Vec<u32>],
                skip_special: bool,
            ) -> crate::error::Result<Vec<String>> {
                self.graph.tokenizer.decode(ids, skip_special)
            }
        }
    };
}
pub(crate) use text_pipeline_of_graph;

/// The `Pipeline` items of a family whose items are its graph's token ids (`Item =
/// Vec<u32>`): tokenized at the call's truncation side, costed by length.
macro_rules! token_items {
    () => {
        fn prepare(
            &self,
            texts: &[&str],
            call: crate::pipeline::Prep,
        ) -> crate::error::Result<Vec<Vec<u32>>> {
            self.graph.tokenize(texts, call.truncation)
        }
        fn cost(&self, item: &Vec<u32>, _: crate::pipeline::Purpose) -> usize {
            item.len()
        }
        fn parallelism(&self) -> usize {
            self.graph.parallelism()
        }
    };
}
pub(crate) use token_items;
