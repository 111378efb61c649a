//! What a job is: its work (operation, purpose, inputs), its answer, and how merged
//! work and a batch's output split back into the jobs' parts.

use std::time::{Duration, Instant};

use embedkit::{
    Capability, ImageInput, MultiVector, Purpose, Result, SparseEmbedding, TextOutput,
    TruncationSide,
};
use tokio::sync::oneshot;

/// What a job computes (a capability of its model, or several outputs of texts from one
/// pass, for a purpose), on which inputs.
pub(crate) struct Work {
    pub op: Op,
    pub purpose: Purpose,
    /// Where over-long texts are cut (TEI's `truncation_direction`); `None`: where the
    /// model says.
    pub truncation: Option<TruncationSide>,
    pub inputs: Inputs,
}

/// A job's operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    One(Capability),
    /// Several text outputs (dense, sparse, multi-vector) from one pass.
    Outputs(Vec<Capability>),
}

impl From<Capability> for Op {
    fn from(c: Capability) -> Op {
        Op::One(c)
    }
}

/// A job's inputs, by what they are rather than by family.
pub(crate) enum Inputs {
    Texts(Vec<String>),
    /// Token sequences (OpenAI's token-array input).
    Ids(Vec<Vec<u32>>),
    /// Images (encoded files, moved in: never copied on the way to the model).
    Images(Vec<ImageInput>),
    /// (query, document) pairs.
    Pairs(Vec<(String, String)>),
}

impl Work {
    pub(crate) fn new(op: impl Into<Op>, inputs: Inputs) -> Work {
        Work {
            op: op.into(),
            purpose: Purpose::Document,
            truncation: None,
            inputs,
        }
    }

    /// The same work, its over-long texts cut at `side`.
    pub(crate) fn cut_at(mut self, side: Option<TruncationSide>) -> Work {
        self.truncation = side;
        self
    }

    pub(crate) fn len(&self) -> usize {
        match &self.inputs {
            Inputs::Texts(v) => v.len(),
            Inputs::Ids(v) => v.len(),
            Inputs::Images(v) => v.len(),
            Inputs::Pairs(v) => v.len(),
        }
    }
}

impl Inputs {
    /// Encoded image files.
    pub(crate) fn images(files: Vec<Vec<u8>>) -> Inputs {
        Inputs::Images(files.into_iter().map(ImageInput::Bytes).collect())
    }
}

/// `v` cut into consecutive parts of `lens` items, each wrapped by `wrap`.
fn split_into<T, W>(v: Vec<T>, lens: &[usize], wrap: fn(Vec<T>) -> W) -> Vec<W> {
    let mut it = v.into_iter();
    lens.iter()
        .map(|&n| wrap(it.by_ref().take(n).collect()))
        .collect()
}

impl Work {
    /// Splits merged work back into its jobs' parts, `lens` inputs each (to retry them
    /// one by one without having kept a copy).
    pub(crate) fn split(self, lens: &[usize]) -> Vec<Work> {
        let inputs = match self.inputs {
            Inputs::Texts(v) => split_into(v, lens, Inputs::Texts),
            Inputs::Ids(v) => split_into(v, lens, Inputs::Ids),
            Inputs::Images(v) => split_into(v, lens, Inputs::Images),
            Inputs::Pairs(v) => split_into(v, lens, Inputs::Pairs),
        };
        inputs
            .into_iter()
            .map(|inputs| Work {
                op: self.op.clone(),
                purpose: self.purpose,
                truncation: self.truncation,
                inputs,
            })
            .collect()
    }

    /// Appends `other`'s inputs (of a job of the same queue: model, operation, purpose).
    pub(crate) fn absorb(&mut self, other: Work) {
        match (&mut self.inputs, other.inputs) {
            (Inputs::Texts(a), Inputs::Texts(b)) => a.extend(b),
            (Inputs::Ids(a), Inputs::Ids(b)) => a.extend(b),
            (Inputs::Images(a), Inputs::Images(b)) => a.extend(b),
            (Inputs::Pairs(a), Inputs::Pairs(b)) => a.extend(b),
            _ => {}
        }
    }

    pub(crate) fn texts(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match &self.inputs {
            Inputs::Texts(v) => Box::new(v.iter().map(String::as_str)),
            Inputs::Pairs(v) => Box::new(v.iter().map(|(_, d)| d.as_str())),
            _ => Box::new(std::iter::empty()),
        }
    }
}

/// A job's answer.
#[derive(Debug)]
pub(crate) enum Output {
    Dense(Vec<Vec<f32>>),
    /// Dense vectors and each input's token count.
    DenseCounted(Vec<Vec<f32>>, Vec<usize>),
    Sparse(Vec<SparseEmbedding>),
    Multi(Vec<MultiVector>),
    Scores(Vec<f32>),
    /// Several outputs of each text.
    Texts(Vec<TextOutput>),
}

impl Output {
    /// Splits a batch's output into the jobs' parts, `lens` inputs each.
    pub(crate) fn split(self, lens: &[usize]) -> Vec<Output> {
        match self {
            Output::Dense(v) => split_into(v, lens, Output::Dense),
            Output::DenseCounted(v, counts) => {
                let mut counts = counts.into_iter();
                split_into(v, lens, Output::Dense)
                    .into_iter()
                    .zip(lens)
                    .map(|(part, &n)| match part {
                        Output::Dense(v) => {
                            Output::DenseCounted(v, counts.by_ref().take(n).collect())
                        }
                        other => other,
                    })
                    .collect()
            }
            Output::Sparse(v) => split_into(v, lens, Output::Sparse),
            Output::Multi(v) => split_into(v, lens, Output::Multi),
            Output::Scores(v) => split_into(v, lens, Output::Scores),
            Output::Texts(v) => split_into(v, lens, Output::Texts),
        }
    }
}

pub(crate) struct Job {
    /// Index of the model in [`Models`].
    pub model: usize,
    pub work: Work,
    /// Tokens of the job's longest input (an estimate from above where the handler did
    /// not tokenize): a batch costs inputs × its longest input once padded.
    pub longest: usize,
    /// When it was queued.
    pub queued: Instant,
    pub reply: oneshot::Sender<Answered>,
}

/// A job's answer and where its time went.
pub(crate) struct Answered {
    pub result: Result<Output>,
    /// From queued to its batch's start.
    pub queue: Duration,
    /// Its batch's tokenizing (where the model takes token ids), then the rest.
    pub tokenization: Duration,
    pub inference: Duration,
}
