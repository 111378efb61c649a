//! `embedkit search`: documents ranked for a query by a dense model — what an embedding
//! is for, at a glance. Documents stream in; only the best `--top-k` are kept.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::io::Write;
use std::rc::Rc;

use anyhow::Context;
use clap::Args;
use embedkit::postprocess::cosine;
use embedkit::{CallOptions, Capability, Operations, Purpose};

use crate::corpus::Id;
use crate::job::Output;
use crate::vectors::{Shape, Vector};
use crate::{input, output, IoArgs, ModelArgs};

#[derive(Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub io: IoArgs,
    #[command(flatten)]
    pub cut: crate::TextCutArgs,
    /// The query the documents are ranked for.
    #[arg(long, short)]
    pub query: String,
    /// How many documents to show, best first.
    #[arg(long, default_value_t = 10)]
    pub top_k: usize,
    /// JSON Lines {"id", "rank", "index", "score", "text"} instead of a table (also what
    /// --output writes, in the format of its extension or --output-format).
    #[arg(long)]
    pub json: bool,
    /// Apply the model's query and passage prefixes (models trained with them).
    #[arg(long)]
    pub add_prefix: bool,
}

/// One scored document; ordered so that the heap's top is the worst kept (lowest score,
/// then latest in the input).
struct Hit {
    score: f32,
    index: usize,
    text: String,
}

impl PartialEq for Hit {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Hit {}
impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Hit {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: the smallest score is the "largest" hit, so it sits on top.
        other
            .score
            .total_cmp(&self.score)
            .then(self.index.cmp(&other.index))
    }
}

pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    if args.top_k == 0 {
        anyhow::bail!("--top-k must be at least 1");
    }
    // The output is opened (and a format that does not fit refused) before any work.
    let machine = args.io.output.is_some() || args.io.output_format.is_some() || args.json;
    let out = if machine {
        Some(Output::open(
            args.io.output.as_deref(),
            args.io.output_format(),
            false,
            Shape::Hit,
        )?)
    } else {
        None
    };
    let docs = input::documents(args.io.texts, args.io.input.as_deref())?;
    let settings = crate::prefix_settings(args.add_prefix);
    let model = args
        .model
        .load("BAAI/bge-small-en-v1.5", settings, Capability::DenseText)?;
    let query = model
        .embed_dense(
            &[args.query.as_str()],
            &args.cut.apply(CallOptions::new().purpose(Purpose::Query)),
        )?
        .pop()
        .context("no vector for the query")?;
    // The documents stream through the model; each text waits in `pending` (at most the
    // model's read-ahead window) until its vector comes out, and is kept only while it is
    // among the best.
    let pending: Rc<RefCell<VecDeque<String>>> = Rc::default();
    let queue = pending.clone();
    let source = docs.inspect(move |d| {
        if let Ok(text) = d {
            queue.borrow_mut().push_back(text.clone());
        }
    });
    let mut best: BinaryHeap<Hit> = BinaryHeap::new();
    let passages = args.cut.apply(CallOptions::new().purpose(Purpose::Passage));
    let vectors = model.embed_dense_iter(source, &passages);
    for (index, vector) in vectors.enumerate() {
        let vector = vector?;
        let text = pending
            .borrow_mut()
            .pop_front()
            .context("a vector without its document")?;
        let hit = Hit {
            score: cosine(&query, &vector),
            index,
            text,
        };
        if best.len() < args.top_k {
            best.push(hit);
        } else if best.peek().is_some_and(|worst| hit < *worst) {
            best.pop();
            best.push(hit);
        }
    }
    let ranked = best.into_sorted_vec();
    // A table for people; records (any format, with ids) when asked for a file or JSON.
    if let Some(out) = out {
        let records = ranked.into_iter().enumerate().map(|(rank, hit)| {
            Ok((
                Id::Int(hit.index as i64),
                Vector::Hit {
                    rank: rank as u64 + 1,
                    index: hit.index as u64,
                    score: hit.score,
                    text: hit.text,
                },
            ))
        });
        let progress = output::Progress::new(None, args.io.quiet);
        return out.write(progress, records);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "query: {}", args.query)?;
    for (rank, hit) in ranked.iter().enumerate() {
        writeln!(out, "{:>3}. {:.4}  {}", rank + 1, hit.score, hit.text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_rank_best_first_and_ties_by_input_order() {
        let hits = vec![
            Hit {
                score: 0.1,
                index: 0,
                text: "a".into(),
            },
            Hit {
                score: 0.9,
                index: 1,
                text: "b".into(),
            },
            Hit {
                score: 0.9,
                index: 2,
                text: "c".into(),
            },
        ];
        let mut heap: BinaryHeap<Hit> = hits.into_iter().collect();
        assert_eq!(heap.peek().unwrap().index, 0, "the worst is on top");
        heap.pop();
        let order: Vec<usize> = heap.into_sorted_vec().iter().map(|h| h.index).collect();
        assert_eq!(order, vec![1, 2]);
        assert!((cosine(&[3.0, 4.0], &[6.0, 8.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }
}
