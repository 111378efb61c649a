//! Dynamic batching across requests: handlers queue jobs on a bounded channel; inference
//! workers take turns at the gate: the one there takes a job, gathers more for the same
//! model and operation until a text count or padded-token budget is reached or a short
//! wait runs out, leaves the gate and runs them as one call while the next worker
//! gathers the next batch, and answers each job.
//!
//! - The cores are leased to batches: `workers` units, one per single-threaded session
//!   of a model's pool. A batch with nothing else waiting and no other batch running
//!   takes them all (the library spreads it over every session, as when called alone);
//!   otherwise it takes one and runs on one session, so that batches run side by side
//!   and a core never waits for the next request to arrive. While units are free, a
//!   batch leaves the work of its queue for them (it takes its share, not all).
//! - With [`CoreSharing::Together`], a queue that alone has work runs its batches one
//!   at a time on every core instead, each holding all that waits: the worker waits at
//!   the gate for every unit, so that no batch starts beside it, and gathers when they
//!   are free.
//!
//! - A full queue is refused at once (backpressure), never buffered.
//! - A job whose client has gone (timed out, disconnected) is dropped before inference.
//! - A failing batch is retried job by job, so a bad input fails its own request only.
//! - A panic in inference is caught: the jobs in hand are answered, the server reports
//!   itself unhealthy and shuts down so that it exits non-zero (an orchestrator restarts it).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use embedkit::{CallOptions, Capability, EmbeddingModel, Error, Operations, Purpose, Result};
use tokio::sync::watch;

use crate::lease::{Held, Lease};
use crate::metrics::Metrics;
use crate::models::Models;
use crate::queues::{Budget, Filling, Queues};

pub(crate) use crate::work::{Answered, Inputs, Job, Op, Output, Work};

/// A batch's intended length beside other busy queues. About one call of a small
/// embedding model on a few texts: shorter slices cost throughput in per-call overhead,
/// longer ones hold short requests (a rerank, a query) behind long batches.
pub const DEFAULT_TIME_SLICE: Duration = Duration::from_millis(20);

/// How the batches of a model whose queue alone has work share the cores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CoreSharing {
    /// Side by side, one core each (a batch with nothing else waiting still takes
    /// every core): no core waits for another batch's slowest part. The faster way
    /// where measured (BENCHMARKS.md).
    #[default]
    SideBySide,
    /// One batch at a time on every core, holding all that waits: answers come in
    /// arrival order, with a lower p99 for up to 28% less throughput where measured.
    Together,
}

/// How requests are grouped.
#[derive(Debug, Clone)]
pub struct BatchPolicy {
    /// Jobs waiting at most; a full queue answers 503.
    pub queue_size: usize,
    /// Inputs per inference call, summed over the jobs gathered.
    pub max_batch_texts: usize,
    /// Padded tokens gathered into one inference call (inputs × the longest input's
    /// tokens); the model runs the call in batches of its own `max_batch_tokens`.
    pub max_batch_tokens: usize,
    /// How long the first job of a batch waits for company.
    pub max_wait: Duration,
    /// How long a batch is meant to run while other queues (models, operations) are
    /// busy: a stream of short requests then waits at most about this behind a stream
    /// of long ones. Zero: batches fill their budgets whatever else waits.
    pub time_slice: Duration,
    /// Inference workers: batches that may run at once, each on one single-threaded
    /// session (a lone batch takes every core). 0: one per core.
    pub workers: usize,
    /// Whether a busy queue's batches run side by side or on every core in turn.
    pub core_sharing: CoreSharing,
    /// Fault injection for tests: a job with this input text panics inference.
    #[doc(hidden)]
    pub panic_on_input: Option<String>,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy {
            queue_size: 256,
            max_batch_texts: 256,
            max_batch_tokens: 16384,
            max_wait: Duration::from_millis(2),
            time_slice: DEFAULT_TIME_SLICE,
            workers: 0,
            core_sharing: CoreSharing::SideBySide,
            panic_on_input: None,
        }
    }
}

/// The handlers' side of the queue.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: SyncSender<Job>,
    metrics: Arc<Metrics>,
    alive: Arc<AtomicBool>,
    depth: Arc<AtomicI64>,
    /// Set (with the panic's message) when inference panicked.
    fatal: watch::Receiver<Option<String>>,
}

/// Why a job was not queued.
pub(crate) enum Refused {
    Full,
    Stopped,
}

/// The channel's far end and the queues: one worker at a time gathers a batch here.
struct Gate {
    rx: mpsc::Receiver<Job>,
    queues: Queues,
}

/// A batch's compute time, to be charged to its queue by the next gatherer.
struct Charge {
    queue: usize,
    padded: usize,
    took: Duration,
    at: Instant,
}

/// What the workers share.
struct Shared {
    gate: Mutex<Gate>,
    /// Batches run since the gatherer last charged them.
    charges: Mutex<Vec<Charge>>,
    lease: Lease,
}

/// One inference worker's state.
struct Worker {
    models: Arc<Models>,
    policy: BatchPolicy,
    metrics: Arc<Metrics>,
    depth: Arc<AtomicI64>,
    shared: Arc<Shared>,
    /// Test hook for the fault tests: an input equal to this text panics inference.
    panic_on: Option<String>,
}

impl Batcher {
    /// Starts the inference workers.
    pub fn start(
        models: Arc<Models>,
        policy: BatchPolicy,
        metrics: Arc<Metrics>,
    ) -> crate::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Job>(policy.queue_size.max(1));
        let alive = Arc::new(AtomicBool::new(true));
        let depth = Arc::new(AtomicI64::new(0));
        let (fatal_tx, fatal) = watch::channel(None);
        let fatal_tx = Arc::new(fatal_tx);
        let workers = match policy.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let shared = Arc::new(Shared {
            gate: Mutex::new(Gate {
                rx,
                queues: Queues::new(Some(policy.time_slice)),
            }),
            charges: Mutex::new(Vec::new()),
            lease: Lease::new(workers),
        });
        let running = Arc::new(AtomicUsize::new(workers));
        for i in 0..workers {
            let worker = Worker {
                models: models.clone(),
                policy: policy.clone(),
                metrics: metrics.clone(),
                depth: depth.clone(),
                shared: shared.clone(),
                panic_on: policy.panic_on_input.clone(),
            };
            let (alive, running, fatal_tx) = (alive.clone(), running.clone(), fatal_tx.clone());
            std::thread::Builder::new()
                .name(format!("embedkit-inference-{i}"))
                .spawn(move || {
                    if let Err(message) = worker.serve() {
                        alive.store(false, Ordering::SeqCst);
                        tracing::error!(panic = ?message, "inference panicked; shutting down");
                        let _ = fatal_tx.send(Some(message));
                    }
                    // The last worker out (the channel closed: the server is stopping).
                    if running.fetch_sub(1, Ordering::SeqCst) == 1 {
                        alive.store(false, Ordering::SeqCst);
                    }
                })
                .map_err(|source| crate::ServerError::Start {
                    what: "inference thread",
                    source,
                })?;
        }
        Ok(Batcher {
            tx,
            metrics,
            alive,
            depth,
            fatal,
        })
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Resolves when inference has panicked, with the panic's message.
    pub fn fatal(&self) -> watch::Receiver<Option<String>> {
        self.fatal.clone()
    }

    /// Queues a job without waiting; a full queue is refused.
    pub fn submit(&self, job: Job) -> std::result::Result<(), Refused> {
        if !self.is_alive() {
            return Err(Refused::Stopped);
        }
        self.depth.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(job) {
            Ok(()) => {
                self.metrics
                    .queue_depth
                    .set(self.depth.load(Ordering::Relaxed));
                Ok(())
            }
            Err(e) => {
                self.depth.fetch_sub(1, Ordering::Relaxed);
                Err(match e {
                    TrySendError::Full(_) => Refused::Full,
                    TrySendError::Disconnected(_) => Refused::Stopped,
                })
            }
        }
    }
}

impl Worker {
    /// Gathers and runs batches until the channel closes; `Err` with the message of a
    /// panic in inference.
    fn serve(&self) -> std::result::Result<(), String> {
        let units = self.shared.lease.units;
        loop {
            let (batch, held, alone) = {
                let mut gate = self.shared.gate.lock().unwrap_or_else(|e| e.into_inner());
                let Some((batch, held)) = self.gather(&mut gate) else {
                    return Ok(());
                };
                // Side by side, every core for a batch only when nothing else waits,
                // no other batch runs and no other stream was served lately (its next
                // request is probably on its way): a batch on all cores makes
                // everything wait.
                let alone = gate.queues.len() == 0
                    && self.shared.lease.free() == units
                    && !gate.queues.others_busy(&batch, Instant::now());
                (batch, held, alone)
            };
            let (queue, padded) = batch.account();
            let held = match held {
                Some(held) => held,
                None => self.shared.lease.take(if alone { units } else { 1 }),
            };
            let started = Instant::now();
            let ran = if held.n < units {
                embedkit::unstable::on_one_session(|| self.run(batch.jobs, "one"))
            } else {
                self.run(batch.jobs, "all")
            };
            drop(held);
            let at = Instant::now();
            self.shared
                .charges
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Charge {
                    queue,
                    padded,
                    took: at - started,
                    at,
                });
            ran?;
        }
    }

    /// One job from the channel into its queue, waiting until `until` (for good when
    /// `None`); false when none came (timeout, or the server is stopping).
    fn receive(&self, gate: &mut Gate, until: Option<Instant>) -> bool {
        let job = match until {
            None => gate.rx.recv().ok(),
            Some(t) => gate
                .rx
                .recv_timeout(t.saturating_duration_since(Instant::now()))
                .ok(),
        };
        let Some(job) = job else { return false };
        self.admit(gate, job);
        true
    }

    /// A job taken from the channel into its queue.
    fn admit(&self, gate: &mut Gate, job: Job) {
        self.depth.fetch_sub(1, Ordering::Relaxed);
        gate.queues.push(job);
    }

    /// Jobs waiting, in the channel and in the queues.
    fn report_depth(&self, gate: &Gate) {
        self.metrics
            .queue_depth
            .set(self.depth.load(Ordering::Relaxed) + gate.queues.len() as i64);
    }

    /// Every job already in the channel into its queue.
    fn drain(&self, gate: &mut Gate) {
        while let Ok(job) = gate.rx.try_recv() {
            self.admit(gate, job);
        }
    }

    /// A batch: the next job as the scheduler picks it, and the jobs of its queue that
    /// fit the budgets, waiting up to `max_wait` for company when its queue runs dry;
    /// with every unit already leased to it when it is to run on all cores in turn.
    fn gather(&self, gate: &mut Gate) -> Option<(Filling, Option<Held<'_>>)> {
        let models = self.models.clone();
        let shares = |m: usize| models.get(m).model.shares_batches();
        // How long this batch may wait for a queue that is owed compute.
        let mut owed_until: Option<Instant> = None;
        loop {
            if gate.queues.len() == 0 && !self.receive(gate, None) {
                return None;
            }
            self.drain(gate);
            self.charge(gate);
            let now = Instant::now();
            let slice = self.policy.time_slice;
            if !slice.is_zero() && gate.queues.owed(now, slice) {
                let until = *owed_until.get_or_insert(now + slice / 2);
                if now < until {
                    self.receive(gate, Some(until));
                    continue;
                }
            }
            // Together, a queue alone with work: wait here for the running batches to
            // end, holding the gate so that none starts beside, then take all that has
            // come. If another queue got work meanwhile, side by side after all (and
            // the batches that ran meanwhile are charged first, so it gets its turn).
            let alone = |g: &Gate| {
                g.queues
                    .pick()
                    .is_some_and(|q| !g.queues.busy_beside(q, Instant::now()))
            };
            let mut held = None;
            let units = self.shared.lease.units;
            if self.policy.core_sharing == CoreSharing::Together && units > 1 && alone(gate) {
                let all = self.shared.lease.take(units);
                self.drain(gate);
                self.charge(gate);
                held = alone(gate).then_some(all);
            }
            // Free units get their share of what waits: the batch takes its part only.
            let free = self.shared.lease.free().max(1);
            if free > 1 {
                gate.queues.group_by_length(now);
            }
            let mut dropped = 0;
            let started = gate.queues.start(shares, &mut dropped);
            let Some(mut filling) = started else {
                // Only jobs whose clients had gone.
                self.metrics.jobs_dropped.inc_by(dropped);
                self.report_depth(gate);
                continue;
            };
            let deadline = Instant::now() + self.policy.max_wait;
            let budget = gate.queues.budget(
                &filling,
                Budget {
                    max_inputs: self.policy.max_batch_texts,
                    max_tokens: self.policy.max_batch_tokens,
                },
                Instant::now(),
            );
            let budget = Budget {
                max_inputs: budget
                    .max_inputs
                    .min(gate.queues.inputs_beside(&filling).div_ceil(free))
                    .max(1),
                ..budget
            };
            // Holding every core, a batch does not wait for company: all that came
            // while the cores were busy is in it already.
            while !gate.queues.fill(&mut filling, budget, &mut dropped) {
                if held.is_some() || !self.receive(gate, Some(deadline)) {
                    break;
                }
                self.drain(gate);
            }
            self.metrics.jobs_dropped.inc_by(dropped);
            self.report_depth(gate);
            return Some((filling, held));
        }
    }

    /// Charges their queues the batches that ran since the last gatherer did.
    fn charge(&self, gate: &mut Gate) {
        let charges = std::mem::take(
            &mut *self
                .shared
                .charges
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for c in charges {
            gate.queues.charge(c.queue, c.padded, c.took, c.at);
        }
    }

    /// Runs a batch's jobs as one call on `cores` ("all" or "one", as counted) and
    /// answers each; `Err` with the message of a panic.
    fn run(&self, batch: Vec<Job>, cores: &str) -> std::result::Result<(), String> {
        // Clients may have left while the batch was gathered.
        let (batch, gone): (Vec<Job>, Vec<Job>) =
            batch.into_iter().partition(|j| !j.reply.is_closed());
        self.metrics.jobs_dropped.inc_by(gone.len() as u64);
        if batch.is_empty() {
            return Ok(());
        }
        self.metrics.batches.with_label_values(&[cores]).inc();
        let model = batch[0].model;
        let lens: Vec<usize> = batch.iter().map(|j| j.work.len()).collect();
        let mut replies = Vec::with_capacity(batch.len());
        let mut works = Vec::with_capacity(batch.len());
        let started = Instant::now();
        for job in batch {
            replies.push((job.reply, started.saturating_duration_since(job.queued)));
            works.push(job.work);
        }
        let single = works.len() == 1;
        let mut merged = works.into_iter();
        let Some(mut work) = merged.next() else {
            return Ok(());
        };
        for w in merged {
            work.absorb(w);
        }
        self.metrics.batch_size.observe(work.len() as f64);
        let (result, tokenization) = self.guarded(model, &work)?;
        let spent = started.elapsed();
        self.metrics.inference_seconds.observe(spent.as_secs_f64());
        let answer = |result, queue, tokenization: Duration, spent: Duration| Answered {
            result,
            queue,
            tokenization,
            inference: spent.saturating_sub(tokenization),
        };
        match (result, single) {
            (Ok(out), _) => {
                for ((reply, queue), part) in replies.into_iter().zip(out.split(&lens)) {
                    // The client may have gone; its answer is dropped.
                    let _ = reply.send(answer(Ok(part), queue, tokenization, spent));
                }
            }
            (Err(e), true) => {
                if let Some((reply, queue)) = replies.pop() {
                    let _ = reply.send(answer(Err(e), queue, tokenization, spent));
                }
            }
            (Err(_), false) => {
                // One input failed the call: each job alone, so only its own fails.
                for ((reply, queue), part) in replies.into_iter().zip(work.split(&lens)) {
                    if reply.is_closed() {
                        self.metrics.jobs_dropped.inc();
                        continue;
                    }
                    let alone = Instant::now();
                    let (r, tokenization) = self.guarded(model, &part)?;
                    let spent = spent + alone.elapsed();
                    let _ = reply.send(answer(r, queue, tokenization, spent));
                }
            }
        }
        Ok(())
    }

    /// Runs `work` on `model`, catching a panic (`Err` with its message); with the time
    /// spent tokenizing.
    fn guarded(
        &self,
        model: usize,
        work: &Work,
    ) -> std::result::Result<(Result<Output>, Duration), String> {
        catch_unwind(AssertUnwindSafe(|| {
            if let Some(p) = &self.panic_on {
                if work.texts().any(|t| t == p) {
                    panic!("fault injection: input {p:?}");
                }
            }
            compute(&self.models.get(model).model, work)
        }))
        .map_err(|payload| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic without a message".into())
        })
    }
}

/// One library call, chosen by the job's capability and inputs; with the time spent
/// tokenizing where that is a step of its own.
fn compute(model: &EmbeddingModel, work: &Work) -> (Result<Output>, Duration) {
    let mut tokenization = Duration::ZERO;
    let out = compute_timed(model, work, &mut tokenization);
    (out, tokenization)
}

fn compute_timed(
    model: &EmbeddingModel,
    work: &Work,
    tokenization: &mut Duration,
) -> Result<Output> {
    use Capability as C;
    let o = CallOptions::new()
        .purpose(work.purpose)
        .truncation(work.truncation);
    let op = match &work.op {
        Op::One(c) => *c,
        Op::Outputs(wanted) => {
            let Inputs::Texts(t) = &work.inputs else {
                return Err(Error::Unsupported("outputs of texts take texts".into()));
            };
            let texts = t.iter().map(|t| Ok(t.as_str()));
            return model
                .embed_all_iter(texts, wanted, &o)
                .collect::<Result<_>>()
                .map(Output::Texts);
        }
    };
    match (op, &work.inputs) {
        // Tokenized here (once: the counts come back for `usage`) where the model takes
        // token ids. On the inference thread rather than the handlers': tokenizer
        // threads beside ONNX Runtime's cost more throughput on a few cores than they
        // bring.
        (C::DenseText, Inputs::Texts(t))
            if work.purpose == Purpose::Document
                && model.can(C::DenseTokenIds)
                && model.can(C::Tokens) =>
        {
            let started = Instant::now();
            let ids = model.tokenize_at(t, work.truncation)?;
            *tokenization = started.elapsed();
            let counts = ids.iter().map(Vec::len).collect();
            model
                .embed_token_ids(&ids, &o)
                .map(|v| Output::DenseCounted(v, counts))
        }
        (C::DenseText, Inputs::Texts(t)) => model.embed_dense(t, &o).map(Output::Dense),
        (C::DenseTokenIds, Inputs::Ids(ids)) => model.embed_token_ids(ids, &o).map(Output::Dense),
        (C::DenseImage, Inputs::Images(v)) => model.embed_images(v, &o).map(Output::Dense),
        (C::SparseText, Inputs::Texts(t)) => model.embed_sparse(t, &o).map(Output::Sparse),
        (C::MultiVectorText, Inputs::Texts(t)) => model.embed_multi(t, &o).map(Output::Multi),
        (C::TokenVectors, Inputs::Texts(t)) => model.embed_token_vectors(t, &o).map(Output::Multi),
        (C::MultiVectorImage, Inputs::Images(v)) => {
            model.embed_images_multi(v, &o).map(Output::Multi)
        }
        (C::PairScores, Inputs::Pairs(p)) => model.score_pairs(p, &o).map(Output::Scores),
        (op, _) => Err(Error::Unsupported(format!(
            "{op} does not take these inputs"
        ))),
    }
}
