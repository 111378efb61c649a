//! Forming batches: sequences are sorted by length within a window, cut into batches
//! bounded by a count and by a budget of padded tokens, and padded as the tokenizer
//! would. Results go back to input order in the caller.
//!
//! Sorting keeps padding small (a batch of similar lengths), and the token budget keeps
//! the activations of a batch of long documents bounded, whatever `batch_size` says.

use std::collections::VecDeque;

use ndarray::{Array2, ArrayD};
use ort::value::{DynValue, Tensor};

use crate::error::{Error, Result};
use crate::runtime::OnnxModel;
use crate::tokenize::{PadSide, Padding, TextTokenizer};

/// Default cap on `batch rows × padded length` per batch. Measured on a 2-core x86 CPU
/// with all-MiniLM-L6-v2 (fp32 and int8), 1000 paragraphs of mixed length: 512 was as
/// fast as any budget and 1.4× faster than batches of one text; 2048 was 1.7× slower on
/// paragraphs (large activations fall out of cache), and 3000 short queries ran 2.3×
/// faster than one at a time. Larger budgets pay off on GPUs; set it there.
pub const DEFAULT_MAX_BATCH_TOKENS: usize = 512;

/// Groups item indices into batches. Items are taken longest first (stable for equal
/// lengths); a batch grows while it has fewer than `max_items` items and its padded size
/// stays within `max_tokens`. Every batch has at least one item.
pub fn plan(lengths: &[usize], max_items: usize, max_tokens: usize) -> Vec<Vec<usize>> {
    let max_items = max_items.max(1);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut longest = 0usize;
    for idx in order {
        let len = lengths[idx].max(1);
        let next_longest = longest.max(len);
        let fits = current.len() < max_items && (current.len() + 1) * next_longest <= max_tokens;
        if !current.is_empty() && !fits {
            batches.push(std::mem::take(&mut current));
            longest = 0;
        }
        longest = longest.max(len);
        current.push(idx);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// The model inputs of one batch: padded ids and attention mask, rows in batch order.
#[derive(Debug, Clone, PartialEq)]
pub struct PaddedBatch {
    pub input_ids: Array2<i64>,
    pub attention_mask: Array2<i64>,
}

impl PaddedBatch {
    /// Pads `sequences` to the batch's longest (or the fixed length), on the padding side.
    pub fn new(sequences: &[&[u32]], padding: &Padding) -> Self {
        let longest = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut width = padding.fixed_length.unwrap_or(0).max(longest);
        if let Some(m) = padding.pad_to_multiple_of.filter(|m| *m > 0) {
            width = width.div_ceil(m) * m;
        }
        let rows = sequences.len();
        let mut input_ids = Array2::from_elem((rows, width), i64::from(padding.pad_id));
        let mut attention_mask = Array2::zeros((rows, width));
        for (r, seq) in sequences.iter().enumerate() {
            let start = match padding.side {
                PadSide::Right => 0,
                PadSide::Left => width - seq.len(),
            };
            for (c, &id) in seq.iter().enumerate() {
                input_ids[[r, start + c]] = i64::from(id);
                attention_mask[[r, start + c]] = 1;
            }
        }
        PaddedBatch {
            input_ids,
            attention_mask,
        }
    }

    pub fn rows(&self) -> usize {
        self.input_ids.nrows()
    }

    /// The inputs a text graph takes, among `input_ids`, `attention_mask` and
    /// `token_type_ids` (zeros, as fastembed feeds them), named as the graph names them.
    pub fn onnx_inputs(&self, model: &OnnxModel) -> Result<Vec<(String, DynValue)>> {
        let mut inputs = vec![(
            "input_ids".to_string(),
            Tensor::from_array(self.input_ids.clone())?.into_dyn(),
        )];
        if model.has_input("attention_mask") {
            inputs.push((
                "attention_mask".into(),
                Tensor::from_array(self.attention_mask.clone())?.into_dyn(),
            ));
        }
        if model.has_input("token_type_ids") {
            let zeros = Array2::<i64>::zeros(self.input_ids.dim());
            inputs.push((
                "token_type_ids".into(),
                Tensor::from_array(zeros)?.into_dyn(),
            ));
        }
        Ok(inputs)
    }
}

/// What one worker computed: batch numbers with their results.
type WorkerResults<T> = Vec<(usize, Vec<T>)>;

/// Runs `run` on length-sorted batches of the items (see [`plan`]) and returns its
/// results in item order. `run` gets the item indices of one batch and returns one
/// result per index.
pub fn run_sorted<T: Send>(
    lengths: &[usize],
    max_items: usize,
    max_tokens: usize,
    run: impl Fn(&[usize]) -> Result<Vec<T>> + Sync,
) -> Result<Vec<T>> {
    run_sorted_parallel(lengths, max_items, max_tokens, 1, run)
}

/// As [`run_sorted`], with up to `workers` batches running at once (each on its own
/// thread, where graphs run on their pool sessions; see
/// [`as_pool_worker`](crate::runtime::as_pool_worker)). Batches are handed out longest first, so the
/// workers finish close together. The first error stops the handing out.
pub fn run_sorted_parallel<T: Send>(
    lengths: &[usize],
    max_items: usize,
    max_tokens: usize,
    workers: usize,
    run: impl Fn(&[usize]) -> Result<Vec<T>> + Sync,
) -> Result<Vec<T>> {
    let batches = plan(lengths, max_items, max_tokens);
    let run_checked = |batch: &[usize]| -> Result<Vec<T>> {
        let results = run(batch)?;
        if results.len() != batch.len() {
            return Err(Error::Ort(format!(
                "the model returned {} results for a batch of {}",
                results.len(),
                batch.len()
            )));
        }
        Ok(results)
    };
    let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None)
        .take(lengths.len())
        .collect();
    let workers = workers.clamp(1, batches.len().max(1));
    if workers == 1 {
        for batch in &batches {
            for (&i, r) in batch.iter().zip(run_checked(batch)?) {
                out[i] = Some(r);
            }
        }
    } else {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed = std::sync::atomic::AtomicBool::new(false);
        let done: Vec<Result<WorkerResults<T>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(|| {
                        crate::runtime::as_pool_worker(|| {
                            let mut mine = Vec::new();
                            loop {
                                if failed.load(std::sync::atomic::Ordering::Relaxed) {
                                    break;
                                }
                                let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let Some(batch) = batches.get(b) else { break };
                                match run_checked(batch) {
                                    Ok(r) => mine.push((b, r)),
                                    Err(e) => {
                                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                                        return Err(e);
                                    }
                                }
                            }
                            Ok(mine)
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Ort("a batch worker panicked".into())))
                })
                .collect()
        });
        for worker in done {
            for (b, results) in worker? {
                for (&i, r) in batches[b].iter().zip(results) {
                    out[i] = Some(r);
                }
            }
        }
    }
    Ok(out.into_iter().flatten().collect())
}

/// Tokenizes `texts`, runs `model` on length-sorted padded batches, and hands each
/// batch's `output` tensor with its inputs to `finish`, which returns one result per row.
/// Results come back in input order.
pub(crate) fn run_graph<T: Send>(
    tokenizer: &TextTokenizer,
    model: &OnnxModel,
    output: &str,
    texts: &[&str],
    max_items: usize,
    max_tokens: usize,
    finish: impl Fn(ArrayD<f32>, &PaddedBatch) -> Result<Vec<T>> + Sync,
) -> Result<Vec<T>> {
    let sequences = tokenizer.encode_batch(texts)?;
    let lengths: Vec<usize> = sequences.iter().map(Vec::len).collect();
    let workers = model.parallelism();
    run_sorted_parallel(&lengths, max_items, max_tokens, workers, |batch| {
        let seqs: Vec<&[u32]> = batch.iter().map(|&i| sequences[i].as_slice()).collect();
        let padded = PaddedBatch::new(&seqs, tokenizer.padding());
        let inputs = padded.onnx_inputs(model)?;
        finish(model.run_f32(inputs, output)?, &padded)
    })
}

/// The number of tokens of `texts`, tokenized 1024 at a time.
pub(crate) fn count_tokens<S: AsRef<str>>(
    texts: &[S],
    tokenize: impl Fn(&[&str]) -> Result<Vec<Vec<u32>>>,
) -> Result<usize> {
    let mut total = 0;
    for chunk in texts.chunks(1024) {
        let refs: Vec<&str> = chunk.iter().map(|t| t.as_ref()).collect();
        total += tokenize(&refs)?.iter().map(Vec::len).sum::<usize>();
    }
    Ok(total)
}

/// Computes the results of one window of texts.
type Compute<'a, T> = Box<dyn FnMut(&[&str]) -> Result<Vec<T>> + 'a>;

/// Texts in, results out, in input order and bounded memory: reads a window of inputs (a
/// few batches' worth), computes it, hands the results out, reads the next.
pub struct WindowStream<'a, S, T> {
    source: Box<dyn Iterator<Item = Result<S>> + 'a>,
    compute: Compute<'a, T>,
    window: usize,
    ready: VecDeque<T>,
    /// An input error, reported after the results of the inputs before it.
    pending_error: Option<Error>,
    finished: bool,
}

impl<'a, S: AsRef<str>, T> WindowStream<'a, S, T> {
    /// `compute` maps a window of texts to one result each. The window holds four
    /// batches, between 256 and 8192 texts.
    pub fn new(
        source: impl Iterator<Item = Result<S>> + 'a,
        batch_size: usize,
        compute: impl FnMut(&[&str]) -> Result<Vec<T>> + 'a,
    ) -> Self {
        WindowStream {
            source: Box::new(source),
            compute: Box::new(compute),
            window: (batch_size.max(1) * 4).clamp(256, 8192),
            ready: VecDeque::new(),
            pending_error: None,
            finished: false,
        }
    }

    fn fill(&mut self) -> Result<()> {
        let mut window: Vec<S> = Vec::new();
        while window.len() < self.window {
            match self.source.next() {
                Some(Ok(doc)) => window.push(doc),
                Some(Err(e)) => {
                    self.pending_error = Some(e);
                    self.finished = true;
                    break;
                }
                None => {
                    self.finished = true;
                    break;
                }
            }
        }
        if !window.is_empty() {
            let refs: Vec<&str> = window.iter().map(|s| s.as_ref()).collect();
            let results = (self.compute)(&refs)?;
            self.ready.extend(results);
        }
        Ok(())
    }
}

impl<S: AsRef<str>, T> Iterator for WindowStream<'_, S, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(v) = self.ready.pop_front() {
                return Some(Ok(v));
            }
            if let Some(e) = self.pending_error.take() {
                return Some(Err(e));
            }
            if self.finished {
                return None;
            }
            if let Err(e) = self.fill() {
                self.finished = true;
                self.ready.clear();
                return Some(Err(e));
            }
        }
    }
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
    fn plan_covers_every_item_once_and_respects_limits() {
        let lengths = [5, 100, 3, 100, 7, 1, 0, 50];
        let batches = plan(&lengths, 3, 200);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for b in &batches {
            assert!(b.len() <= 3);
            let longest = b.iter().map(|&i| lengths[i].max(1)).max().unwrap();
            assert!(b.len() == 1 || b.len() * longest <= 200, "{b:?}");
        }
        // Longest first, so the two 100-token items share the first batch.
        assert_eq!(batches[0], vec![1, 3]);
    }

    #[test]
    fn parallel_runs_keep_item_order_and_stop_at_the_first_error() {
        let lengths: Vec<usize> = (0..200).map(|i| (i * 37) % 50 + 1).collect();
        for workers in [1, 2, 4] {
            let out = run_sorted_parallel(&lengths, 8, 64, workers, |batch| {
                Ok(batch.iter().map(|&i| i * 10).collect())
            })
            .unwrap();
            assert_eq!(out, (0..200).map(|i| i * 10).collect::<Vec<_>>());
            let failed = run_sorted_parallel(&lengths, 8, 64, workers, |batch| {
                if batch.contains(&7) {
                    Err(Error::InvalidArgument("item 7".into()))
                } else {
                    Ok(batch.to_vec())
                }
            });
            assert!(matches!(failed, Err(Error::InvalidArgument(m)) if m == "item 7"));
            let short = run_sorted_parallel(&lengths, 8, 64, workers, |_| Ok(vec![0usize]));
            assert!(short.is_err(), "a batch with too few results is an error");
        }
    }

    #[test]
    fn an_item_over_budget_gets_a_batch_of_its_own() {
        let batches = plan(&[1000, 1000], 8, 10);
        assert_eq!(batches, vec![vec![0], vec![1]]);
        assert!(plan(&[], 8, 10).is_empty());
    }

    #[test]
    fn pads_right_and_left() {
        let a: &[u32] = &[1, 2, 3];
        let b: &[u32] = &[4];
        let right = PaddedBatch::new(&[a, b], &padding(PadSide::Right));
        assert_eq!(right.input_ids.row(1).to_vec(), vec![4, 9, 9]);
        assert_eq!(right.attention_mask.row(1).to_vec(), vec![1, 0, 0]);
        let left = PaddedBatch::new(&[a, b], &padding(PadSide::Left));
        assert_eq!(left.input_ids.row(1).to_vec(), vec![9, 9, 4]);
        assert_eq!(left.attention_mask.row(1).to_vec(), vec![0, 0, 1]);
        assert_eq!(left.input_ids.row(0).to_vec(), vec![1, 2, 3]);
    }

    #[test]
    fn fixed_length_and_multiple_of() {
        let a: &[u32] = &[1, 2, 3];
        let mut p = padding(PadSide::Right);
        p.fixed_length = Some(6);
        assert_eq!(PaddedBatch::new(&[a], &p).input_ids.ncols(), 6);
        p.fixed_length = None;
        p.pad_to_multiple_of = Some(4);
        assert_eq!(PaddedBatch::new(&[a], &p).input_ids.ncols(), 4);
    }
}
