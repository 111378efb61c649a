//! Forming batches and running them: items are grouped as their family allows (sorted
//! by length under a count and a budget of padded tokens, equal lengths only, or input
//! order), the batches run one at a time or side by side on a graph's session pool, and
//! results come back in input order. [`WindowStream`] feeds any iterator through this a
//! window at a time, in bounded memory.
//!
//! Sorting keeps padding small (a batch of similar lengths), and the token budget keeps
//! the activations of a batch of long documents bounded, whatever `batch_size` says.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::runtime::Lane;

/// Default cap on `batch rows × padded length` per batch. Measured on a 2-core x86 CPU
/// with all-MiniLM-L6-v2 (fp32 and int8), 1000 paragraphs of mixed length: 512 was as
/// fast as any budget and 1.4× faster than batches of one text; 2048 was 1.7× slower on
/// paragraphs (large activations fall out of cache), and 3000 short queries ran 2.3×
/// faster than one at a time. Larger budgets pay off on GPUs; set it there.
pub const DEFAULT_MAX_BATCH_TOKENS: usize = 512;

/// What one model call costs besides its rows, in padded tokens: each call reads every
/// weight matrix once, whatever its rows. all-MiniLM-L6-v2 fp32 on one thread costs
/// ~2.4 ms a call plus ~0.2 ms a token on an AMD EPYC, ~1.9 ms plus ~0.18 ms on an Intel
/// Xeon (`scripts/bench/call_cost.py`; BENCHMARKS.md); splade-tiny's call is ~5 tokens.
/// A padded position costs as much as a real one, so a batch of mixed lengths can cost
/// more than its texts run apart: [`plan`] weighs the two. One figure for every model:
/// a wrong one only moves a cut between near-equal costs.
pub const CALL_COST_TOKENS: usize = 12;

/// How a family's items may share a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// Padding does not change an item's result: longest first, cut into the batches
    /// that cost least (padded tokens plus [`CALL_COST_TOKENS`] a call) under the count
    /// and the padded-token budget.
    Sorted,
    /// Only items of equal length share a batch (padding would change their results);
    /// batches as full as the count and the budget allow.
    EqualLength,
    /// Consecutive items, exactly `batch_size` a batch, no budget: the batch's
    /// composition is part of each result, so it must be the one fastembed forms.
    InputOrder,
}

/// Groups item indices into batches of at most `max_items` whose padded size (rows ×
/// longest) stays within `max_tokens`; an item over the budget gets a batch of its own.
/// Items are taken longest first (stable for equal lengths). Every item is in exactly
/// one batch.
///
/// In [`Batching::Sorted`] mode the longest-first order is cut where the total cost —
/// padded tokens plus [`CALL_COST_TOKENS`] per batch — is least (a shortest path over
/// the cut points, at most `max_items` back from each). A greedy cut with a padding
/// allowance did well on a large corpus, where neighbours have near-equal lengths, but
/// on the few dozen texts a server holds it cost 5-10% more than the best cut.
pub fn plan(
    lengths: &[usize],
    max_items: usize,
    max_tokens: usize,
    mode: Batching,
) -> Vec<Vec<usize>> {
    let max_items = max_items.max(1);
    if lengths.is_empty() {
        return Vec::new();
    }
    if mode == Batching::InputOrder {
        let all: Vec<usize> = (0..lengths.len()).collect();
        return all.chunks(max_items).map(<[usize]>::to_vec).collect();
    }
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
    let len = |k: usize| lengths[order[k]].max(1);
    // Rows sharing a batch with `len(first)` as its longest: within the count and budget.
    let fits = |rows: usize, first: usize| {
        rows <= max_items && (rows == 1 || rows.saturating_mul(len(first)) <= max_tokens)
    };
    let cuts = if mode == Batching::EqualLength {
        let mut cuts = vec![0];
        let mut first = 0;
        for k in 1..order.len() {
            if len(k) != len(first) || !fits(k - first + 1, first) {
                cuts.push(k);
                first = k;
            }
        }
        cuts.push(order.len());
        cuts
    } else {
        cheapest_cuts(order.len(), len, fits)
    };
    cuts.windows(2)
        .map(|w| order[w[0]..w[1]].to_vec())
        .collect()
}

/// The cut points (0 first, `n` last) of `n` items sorted longest first into batches
/// `fits` allows, at the least total of padded tokens plus [`CALL_COST_TOKENS`] a batch.
/// Ties go to fewer, larger batches.
fn cheapest_cuts(
    n: usize,
    len: impl Fn(usize) -> usize,
    fits: impl Fn(usize, usize) -> bool,
) -> Vec<usize> {
    // best[j]: the least cost of the first j items; from[j]: where their last batch starts.
    let mut best = vec![u128::MAX; n + 1];
    let mut from = vec![0usize; n + 1];
    best[0] = 0;
    for j in 1..=n {
        // Earlier starts make larger batches with longer first items: once one does not
        // fit, none before it does.
        for i in (0..j).rev() {
            let rows = j - i;
            if !fits(rows, i) {
                break;
            }
            let cost =
                best[i].saturating_add(CALL_COST_TOKENS as u128 + rows as u128 * len(i) as u128);
            if cost <= best[j] {
                best[j] = cost;
                from[j] = i;
            }
        }
    }
    let mut cuts = vec![n];
    let mut j = n;
    while j > 0 {
        j = from[j];
        cuts.push(j);
    }
    cuts.reverse();
    cuts
}

/// What running a window's batches gave: the results of the leading items in input
/// order, and, when a batch failed, its error. Nothing before the first failed item is
/// lost.
#[derive(Debug)]
pub struct Ran<T> {
    pub results: Vec<T>,
    pub error: Option<Error>,
}

impl<T> Ran<T> {
    /// All results, or the error.
    pub fn into_result(self) -> Result<Vec<T>> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.results),
        }
    }
}

thread_local! {
    /// Set by [`on_one_session`] for the calls of this thread.
    static ONE_SESSION: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every model call it makes on this thread running its batches one after
/// another on one single-threaded session of the model's pool (`Lane::Pool`) instead
/// of spreading them over all the sessions (or all the threads): for a caller that runs
/// several calls side by side, one per core (the server's inference workers), so that
/// the calls share the cores instead of each taking them all. Results are the same.
pub fn on_one_session<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ONE_SESSION.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(ONE_SESSION.with(|c| c.replace(true)));
    f()
}

/// Runs `run` on each batch of item indices and returns the results in item order
/// (`items` in all). With `workers > 1` and more than one batch, that many threads take
/// batches in turn, each on a pool session ([`Lane::Pool`]); otherwise batches run one
/// after another on the all-threads session ([`Lane::Solo`]). A batch must give one
/// result per item. After a batch fails, only batches holding an earlier item still
/// run, so that every item before the first failed one gets its result.
pub fn run_batches<T: Send>(
    items: usize,
    batches: &[Vec<usize>],
    workers: usize,
    run: impl Fn(&[usize], Lane) -> Result<Vec<T>> + Sync,
) -> Ran<T> {
    // The smallest item index of any failed batch, and that batch's error.
    let first_bad = AtomicUsize::new(usize::MAX);
    let failure: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    let run_one = |batch: &[usize], lane: Lane| -> Option<Vec<T>> {
        let first = batch.iter().copied().min().unwrap_or(usize::MAX);
        if first > first_bad.load(Ordering::Relaxed) {
            return None;
        }
        let outcome = run(batch, lane).and_then(|results| {
            if results.len() == batch.len() {
                Ok(results)
            } else {
                Err(Error::Internal(format!(
                    "the model returned {} results for a batch of {}",
                    results.len(),
                    batch.len()
                )))
            }
        });
        match outcome {
            Ok(results) => Some(results),
            Err(e) => {
                first_bad.fetch_min(first, Ordering::Relaxed);
                let mut slot = failure.lock().unwrap_or_else(|p| p.into_inner());
                if slot.as_ref().is_none_or(|(at, _)| first < *at) {
                    *slot = Some((first, e));
                }
                None
            }
        }
    };
    let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None).take(items).collect();
    let mut place = |batch: &[usize], results: Vec<T>| {
        for (&i, r) in batch.iter().zip(results) {
            out[i] = Some(r);
        }
    };
    let workers = workers.clamp(1, batches.len().max(1));
    if ONE_SESSION.with(|c| c.get()) {
        for batch in batches {
            if let Some(results) = run_one(batch, Lane::Pool) {
                place(batch, results);
            }
        }
    } else if workers == 1 {
        for batch in batches {
            if let Some(results) = run_one(batch, Lane::Solo) {
                place(batch, results);
            }
        }
    } else {
        let next = AtomicUsize::new(0);
        let worker = || -> Vec<(usize, Vec<T>)> {
            let mut mine = Vec::new();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                let Some(batch) = batches.get(b) else { break };
                if let Some(results) = run_one(batch, Lane::Pool) {
                    mine.push((b, results));
                }
            }
            mine
        };
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(worker)).collect();
            for h in handles {
                match h.join() {
                    Ok(done) => {
                        for (b, r) in done {
                            place(&batches[b], r);
                        }
                    }
                    Err(_) => {
                        let mut slot = failure.lock().unwrap_or_else(|p| p.into_inner());
                        slot.get_or_insert((0, Error::Internal("a batch worker panicked".into())));
                    }
                }
            }
        });
    }
    let failure = failure.into_inner().unwrap_or_else(|p| p.into_inner());
    let results: Vec<T> = out.into_iter().map_while(|r| r).collect();
    let error = match failure {
        Some((_, e)) => Some(e),
        None if results.len() < items => Some(Error::Internal(format!(
            "{} of {items} items were in no batch",
            items - results.len()
        ))),
        None => None,
    };
    Ran { results, error }
}

/// How many inputs a stream reads ahead: four batches, between 256 and 8192 inputs; for
/// [`Batching::InputOrder`] families rounded up to whole batches, so that windows never
/// cut a batch fastembed would form.
pub fn window_len(batch_size: usize, mode: Batching) -> usize {
    let batch_size = batch_size.max(1);
    let window = batch_size.saturating_mul(4).clamp(256, 8192);
    match mode {
        Batching::InputOrder => window.div_ceil(batch_size).saturating_mul(batch_size),
        _ => window,
    }
}

/// Computes the results of one window of inputs: those of its leading inputs, and the
/// error that stopped it, if any.
type Compute<'a, S, T> = Box<dyn FnMut(Vec<S>) -> Ran<T> + 'a>;

/// Inputs in, results out, in input order and bounded memory: reads a window of inputs,
/// computes it, hands the results out, reads the next.
pub struct WindowStream<'a, S, T> {
    source: Box<dyn Iterator<Item = Result<S>> + 'a>,
    compute: Compute<'a, S, T>,
    window: usize,
    ready: VecDeque<T>,
    /// An input error, reported after the results of the inputs before it.
    pending_error: Option<Error>,
    finished: bool,
    /// Inputs handed to `compute` so far, to number an error's input within the call.
    taken: usize,
}

impl<'a, S: 'a, T: 'a> WindowStream<'a, S, T> {
    /// `compute` maps a window of `window` inputs (fewer at the end) to one result
    /// each, or the results before the first input that failed and its error.
    pub fn new(
        source: impl Iterator<Item = Result<S>> + 'a,
        window: usize,
        compute: impl FnMut(Vec<S>) -> Ran<T> + 'a,
    ) -> Self {
        WindowStream {
            source: Box::new(source),
            compute: Box::new(compute),
            window: window.max(1),
            ready: VecDeque::new(),
            pending_error: None,
            finished: false,
            taken: 0,
        }
    }

    /// A stream that yields `error` and ends, for arguments refused up front.
    pub fn failed(error: Error) -> Self {
        WindowStream {
            source: Box::new(std::iter::empty()),
            compute: Box::new(|_| Ran {
                results: Vec::new(),
                error: None,
            }),
            window: 1,
            ready: VecDeque::new(),
            pending_error: Some(error),
            finished: true,
            taken: 0,
        }
    }

    fn fill(&mut self) {
        let mut window: Vec<S> = Vec::new();
        while window.len() < self.window {
            match self.source.next() {
                Some(Ok(input)) => window.push(input),
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
            let expected = window.len();
            let before = self.taken;
            self.taken += expected;
            let Ran { results, error } = (self.compute)(window);
            let error = error.map(|e| e.at_input(|k| before + k));
            let error = error.or_else(|| {
                (results.len() != expected).then(|| {
                    Error::Internal(format!(
                        "{} results for a window of {expected} inputs",
                        results.len()
                    ))
                })
            });
            self.ready.extend(results);
            if let Some(e) = error {
                // The window's error comes before any input error after it.
                self.pending_error = Some(e);
                self.finished = true;
            }
        }
    }
}

impl<'a, S: 'a, T: 'a> Iterator for WindowStream<'a, S, T> {
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
            self.fill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_session_runs_every_batch_on_the_pool_on_the_calling_thread() {
        let batches = vec![vec![0, 1], vec![2], vec![3, 4]];
        let lanes = Mutex::new(Vec::new());
        let caller = std::thread::current().id();
        let run = |batch: &[usize], lane: Lane| {
            lanes
                .lock()
                .unwrap()
                .push((lane, std::thread::current().id()));
            Ok(batch.to_vec())
        };
        let ran = on_one_session(|| run_batches(5, &batches, 2, run));
        assert_eq!(ran.into_result().unwrap(), [0, 1, 2, 3, 4]);
        let seen = std::mem::take(&mut *lanes.lock().unwrap());
        assert_eq!(seen, vec![(Lane::Pool, caller); 3]);
        // Outside the scope, two workers take the batches on pool sessions, and a lone
        // worker takes them on the all-threads session.
        run_batches(5, &batches, 2, run).into_result().unwrap();
        let seen = std::mem::take(&mut *lanes.lock().unwrap());
        assert!(seen
            .iter()
            .all(|&(lane, t)| lane == Lane::Pool && t != caller));
        run_batches(5, &batches, 1, run).into_result().unwrap();
        let seen = std::mem::take(&mut *lanes.lock().unwrap());
        assert_eq!(seen, vec![(Lane::Solo, caller); 3]);
    }

    #[test]
    fn an_input_error_is_numbered_within_the_whole_stream() {
        // Windows of 3; the input at 7 (the second of the third window) fails.
        let stream = WindowStream::new((0..10usize).map(Ok), 3, |window: Vec<usize>| match window
            .iter()
            .position(|&x| x == 7)
        {
            Some(k) => Ran {
                results: window[..k].to_vec(),
                error: Some(
                    Error::Image {
                        image: "from bytes".into(),
                        reason: "bad".into(),
                        input: None,
                    }
                    .for_input(k),
                ),
            },
            None => Ran {
                results: window,
                error: None,
            },
        });
        let out: Vec<Result<usize>> = stream.collect();
        assert_eq!(out.len(), 8);
        assert!(out[..7].iter().all(|r| r.is_ok()));
        let err = out[7].as_ref().unwrap_err();
        assert_eq!(err.input_index(), Some(7));
        assert!(err.to_string().contains("(input 7)"), "{err}");
    }

    #[test]
    fn plan_covers_every_item_once_and_respects_limits() {
        let lengths = [5, 100, 3, 100, 7, 1, 0, 50];
        let batches = plan(&lengths, 3, 200, Batching::Sorted);
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

    /// The cost [`plan`] minimizes, written out: padded tokens plus a call per batch.
    fn cost(lengths: &[usize], batches: &[Vec<usize>]) -> usize {
        batches
            .iter()
            .map(|b| CALL_COST_TOKENS + b.len() * b.iter().map(|&i| lengths[i]).max().unwrap())
            .sum()
    }

    #[test]
    fn sorted_batches_weigh_padding_against_calls() {
        // Mixed lengths, as a few requests' texts are. Longest first: 100 98 95 41 40 39
        // 12 11. [100 98 95] pads 7 tokens, less than a call (12); 41 40 39 with 12 11
        // would pad 82 (a call is cheaper), 12 with 11 pads 1.
        let lengths = [40, 100, 95, 12, 41, 11, 98, 39];
        let batches = plan(&lengths, 256, 512, Batching::Sorted);
        assert_eq!(
            batches,
            vec![vec![1, 6, 2], vec![4, 0, 7], vec![3, 5]],
            "{batches:?}"
        );
        assert_eq!(cost(&lengths, &batches), 3 * 12 + 300 + 123 + 24);
        // Equal lengths fill a batch up to the budget.
        assert_eq!(plan(&[64; 16], 256, 512, Batching::Sorted).len(), 2);
        // Lengths 2 apart share a batch (2 padded tokens a row cost less than a call)...
        assert_eq!(plan(&[30, 28, 26, 24], 256, 512, Batching::Sorted).len(), 1);
        // ...and lengths far apart do not.
        assert_eq!(plan(&[200, 20, 2], 256, 512, Batching::Sorted).len(), 3);
    }

    #[test]
    fn sorted_batches_cost_no_more_than_any_other_cut() {
        // Every way to cut the longest-first order into batches within the limits, tried
        // one by one on small inputs: none costs less than the plan.
        let mut seed = 7u64;
        let mut next = move |below: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % below) as usize
        };
        for _ in 0..300 {
            let n = 1 + next(10);
            let lengths: Vec<usize> = (0..n).map(|_| 1 + next(120)).collect();
            let (max_items, max_tokens) = (1 + next(6), 40 + next(400));
            let planned = plan(&lengths, max_items, max_tokens, Batching::Sorted);
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
            let mut least = usize::MAX;
            // Bit k of `mask` set: a batch starts after the k-th item.
            for mask in 0u32..(1 << (n - 1)) {
                let mut batches = vec![vec![order[0]]];
                for (k, &item) in order.iter().enumerate().skip(1) {
                    if mask & (1 << (k - 1)) != 0 {
                        batches.push(Vec::new());
                    }
                    batches.last_mut().unwrap().push(item);
                }
                let within = batches.iter().all(|b| {
                    let longest = lengths[b[0]];
                    b.len() <= max_items && (b.len() == 1 || b.len() * longest <= max_tokens)
                });
                if within {
                    least = least.min(cost(&lengths, &batches));
                }
            }
            assert_eq!(cost(&lengths, &planned), least, "{lengths:?} {planned:?}");
            for b in &planned {
                let longest = b.iter().map(|&i| lengths[i]).max().unwrap();
                assert!(b.len() <= max_items);
                assert!(b.len() == 1 || b.len() * longest <= max_tokens, "{b:?}");
            }
        }
    }

    #[test]
    fn equal_length_batches_never_mix_lengths() {
        let lengths = [4, 6, 4, 6, 6, 5, 4];
        let batches = plan(&lengths, 2, 512, Batching::EqualLength);
        for b in &batches {
            assert!(b.iter().all(|&i| lengths[i] == lengths[b[0]]), "{b:?}");
            assert!(b.len() <= 2);
        }
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), lengths.len());
    }

    #[test]
    fn input_order_batches_are_consecutive_and_ignore_the_budget() {
        let batches = plan(&[900, 1, 900, 1, 1], 2, 10, Batching::InputOrder);
        assert_eq!(batches, vec![vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[test]
    fn huge_limits_do_not_overflow() {
        let batches = plan(
            &[usize::MAX, usize::MAX, 3],
            usize::MAX,
            usize::MAX,
            Batching::Sorted,
        );
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 3);
        assert_eq!(window_len(usize::MAX, Batching::Sorted), 8192);
        assert_eq!(window_len(usize::MAX, Batching::InputOrder), usize::MAX);
        assert_eq!(window_len(3, Batching::InputOrder), 258);
        assert_eq!(window_len(0, Batching::Sorted), 256);
    }

    #[test]
    fn parallel_runs_keep_item_order_and_stop_at_the_first_error() {
        let lengths: Vec<usize> = (0..200).map(|i| (i * 37) % 50 + 1).collect();
        let batches = plan(&lengths, 8, 64, Batching::Sorted);
        for workers in [1, 2, 4] {
            let lanes = std::sync::Mutex::new(Vec::new());
            let out = run_batches(lengths.len(), &batches, workers, |batch, lane| {
                lanes.lock().unwrap().push(lane);
                Ok(batch.iter().map(|&i| i * 10).collect())
            })
            .into_result()
            .unwrap();
            assert_eq!(out, (0..200).map(|i| i * 10).collect::<Vec<_>>());
            let expected = if workers == 1 { Lane::Solo } else { Lane::Pool };
            assert!(lanes.into_inner().unwrap().iter().all(|&l| l == expected));
            // Every item before the failed batch's first comes out, whatever order the
            // batches ran in, then that batch's error.
            let failed = run_batches(lengths.len(), &batches, workers, |batch, _| {
                if batch.contains(&37) || batch.contains(&180) {
                    Err(Error::InvalidArgument(format!("batch of {}", batch[0])))
                } else {
                    Ok(batch.to_vec())
                }
            });
            let bad = batches
                .iter()
                .filter(|b| b.contains(&37) || b.contains(&180))
                .min_by_key(|b| b.iter().min())
                .unwrap();
            let first = *bad.iter().min().unwrap();
            assert!(first > 0, "the test wants items before the failed batch");
            assert_eq!(failed.results, (0..first).collect::<Vec<_>>());
            assert!(
                matches!(&failed.error, Some(Error::InvalidArgument(m)) if *m == format!("batch of {}", bad[0])),
                "{:?}",
                failed.error
            );
            let short = run_batches(lengths.len(), &batches, workers, |_, _| Ok(vec![0usize]));
            assert!(
                short.into_result().is_err(),
                "a batch with too few results is an error"
            );
        }
    }

    #[test]
    fn an_item_over_budget_gets_a_batch_of_its_own() {
        let batches = plan(&[1000, 1000], 8, 10, Batching::Sorted);
        assert_eq!(batches, vec![vec![0], vec![1]]);
        for mode in [
            Batching::Sorted,
            Batching::EqualLength,
            Batching::InputOrder,
        ] {
            assert!(plan(&[], 8, 10, mode).is_empty(), "{mode:?}");
        }
    }

    #[test]
    fn a_stream_reads_one_window_ahead_and_reports_input_errors_in_place() {
        let read = std::cell::Cell::new(0usize);
        let source = (0..10).map(|i| {
            read.set(read.get() + 1);
            if i == 7 {
                Err(Error::Input {
                    line: 8,
                    reason: "bad".into(),
                })
            } else {
                Ok(i)
            }
        });
        let mut stream = WindowStream::new(source, 3, |w: Vec<i32>| Ran {
            results: w,
            error: None,
        });
        assert_eq!(stream.next().unwrap().unwrap(), 0);
        assert_eq!(read.get(), 3);
        let rest: Vec<Result<i32>> = stream.collect();
        assert_eq!(rest.len(), 7);
        assert!(matches!(rest[6], Err(Error::Input { line: 8, .. })));
    }
}
