//! The test family (cargo feature `test-family`, off in published builds): a seeded model
//! whose one forward pass gives a dense and a sparse vector of each text, as the graph's
//! `dense` and `sparse` outputs. It exists to show what a new family costs: this module,
//! its registry table (`registry/twin.json`), its `Kind` and its line in
//! `registry::LISTINGS` and `EmbeddingModel::load_with`; the server, the CLI and the
//! Python binding serve it with no edit of theirs (their tests load it).
//!
//! - dense: the `dense` output row, as the graph gives it;
//! - sparse: the positive entries of the `sparse` output row, indices ascending.

use ndarray::{ArrayView2, Axis};

use crate::engine::{Builder, Model, Stream};
use crate::error::{Error, Result};
use crate::graph::TextGraph;
use crate::handle::{CallOptions, Capability, Capable, TextOutput, Texts};
use crate::pipeline::{Family, Load, NoSettings, Pipeline, Purpose};
use crate::registry::{Kind, TwinModelDescription};
use crate::runtime::Lane;
use crate::sparse::SparseEmbedding;
use crate::text::Embedding;
use crate::tokenize::TokenizerOptions;

/// The test family's model type.
pub type TwinEmbedding = Model<Twin>;
/// Builder of a [`TwinEmbedding`].
pub type TwinEmbeddingBuilder = Builder<Twin>;

/// Both outputs of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct TwinOutput {
    pub dense: Embedding,
    pub sparse: SparseEmbedding,
}

impl From<TwinOutput> for TextOutput {
    fn from(t: TwinOutput) -> Self {
        TextOutput {
            dense: Some(t.dense),
            sparse: Some(t.sparse),
            multi: None,
        }
    }
}

/// A loaded test-family model.
pub struct Twin {
    graph: TextGraph,
    /// The graph's output names: dense, then sparse.
    outputs: [String; 2],
    dim: usize,
}

impl Family for Twin {
    type Description = TwinModelDescription;
    type Settings = NoSettings;

    fn load(at: Load<'_, Self>) -> Result<Twin> {
        let desc = at.desc;
        let name = &desc.core.model;
        let graph = TextGraph::load(&desc.core, at.dir, at.runtime, TokenizerOptions::default())?;
        let dense = graph.model.require_output(name, "dense")?;
        let sparse = graph.model.require_output(name, "sparse")?;
        Ok(Twin {
            graph,
            outputs: [dense, sparse],
            dim: desc.dim,
        })
    }
}

impl Twin {
    fn mismatch(&self, what: &str, shape: &[usize]) -> Error {
        Error::ModelMismatch {
            model: self.graph.name.clone(),
            reason: format!("its {what} output has shape {shape:?}"),
        }
    }
}

impl Pipeline for Twin {
    type Input<'a> = &'a str;
    type Item = Vec<u32>;
    type Output = TwinOutput;

    crate::graph::token_items!();

    fn run(&self, batch: &[&Vec<u32>], _: Purpose, lane: Lane) -> Result<Vec<TwinOutput>> {
        let seqs: Vec<&[u32]> = batch.iter().map(|s| s.as_slice()).collect();
        let padded = self.graph.pad(&seqs);
        let feed = padded.feed(&self.graph.model)?;
        let rows = seqs.len();
        self.graph
            .model
            .run_views(lane, feed, &self.outputs, |views| {
                let [dense, sparse] = <[_; 2]>::try_from(views)
                    .map_err(|_| Error::Internal("the graph gave too few outputs".into()))?;
                let (dense_shape, sparse_shape) = (dense.shape().to_vec(), sparse.shape().to_vec());
                let dense: ArrayView2<f32> = dense
                    .into_dimensionality()
                    .ok()
                    .filter(|d: &ArrayView2<f32>| d.dim() == (rows, self.dim))
                    .ok_or_else(|| self.mismatch("dense", &dense_shape))?;
                let sparse: ArrayView2<f32> = sparse
                    .into_dimensionality()
                    .ok()
                    .filter(|s: &ArrayView2<f32>| s.nrows() == rows)
                    .ok_or_else(|| self.mismatch("sparse", &sparse_shape))?;
                Ok(dense
                    .axis_iter(Axis(0))
                    .zip(sparse.axis_iter(Axis(0)))
                    .map(|(d, s)| TwinOutput {
                        dense: d.to_vec(),
                        sparse: SparseEmbedding::from_pairs(
                            s.iter()
                                .enumerate()
                                .filter(|(_, w)| **w > 0.0)
                                .map(|(i, w)| (i as u32, *w)),
                        ),
                    })
                    .collect())
            })
    }
}

crate::graph::text_pipeline_of_graph!(Twin);

impl Capable for Model<Twin> {
    fn kind(&self) -> Kind {
        Kind::Twin
    }
    fn capabilities(&self) -> &'static [Capability] {
        &[
            Capability::DenseText,
            Capability::SparseText,
            Capability::Tokens,
        ]
    }
    fn dim(&self) -> Option<usize> {
        Some(self.description().dim)
    }
    fn dense_stream<'a>(&'a self, texts: Texts<'a>, o: &CallOptions) -> Stream<'a, Embedding> {
        self.each_output(texts, o, |t| t.dense)
    }
    fn sparse_stream<'a>(
        &'a self,
        texts: Texts<'a>,
        o: &CallOptions,
    ) -> Stream<'a, SparseEmbedding> {
        self.each_output(texts, o, |t| t.sparse)
    }
    crate::handle::one_pass_outputs!();
    crate::handle::text_tokens!(count);
}
