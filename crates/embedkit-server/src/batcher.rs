//! Dynamic batching across requests: handlers queue jobs on a bounded channel, one
//! inference thread takes a job, gathers more of the same kind until a text budget is
//! reached or a short wait runs out, runs them as one call and answers each job.
//! A full queue is refused at once (backpressure), never buffered.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::metrics::Metrics;
use super::Models;
use embedkit::{Error, Result, SparseEmbedding};

/// What a job asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum JobKind {
    Dense,
    /// Dense vectors of token ids (OpenAI's token-array input).
    DenseIds,
    Sparse,
    Rerank {
        query: String,
    },
}

/// A job's answer.
#[derive(Debug)]
pub enum JobOutput {
    Dense(Vec<Vec<f32>>),
    Sparse(Vec<SparseEmbedding>),
    Scores(Vec<f32>),
}

pub struct Job {
    pub kind: JobKind,
    pub texts: Vec<String>,
    /// The inputs of a [`JobKind::DenseIds`] job.
    pub ids: Vec<Vec<u32>>,
    pub reply: oneshot::Sender<Result<JobOutput>>,
}

impl Job {
    /// Inputs in the job, texts or token sequences.
    pub(crate) fn len(&self) -> usize {
        self.texts.len().max(self.ids.len())
    }
}

/// How requests are grouped.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// Jobs waiting at most; a full queue answers 503.
    pub queue_size: usize,
    /// Texts per inference call, summed over the jobs gathered.
    pub max_batch_texts: usize,
    /// How long the first job of a batch waits for company.
    pub max_wait: Duration,
}

/// The handlers' side of the queue.
#[derive(Clone)]
pub struct Batcher {
    tx: SyncSender<Job>,
    metrics: Arc<Metrics>,
    alive: Arc<AtomicBool>,
    depth: Arc<AtomicI64>,
}

/// Why a job was not queued.
pub enum Refused {
    Full,
    Stopped,
}

impl Batcher {
    /// Starts the inference thread.
    pub fn start(models: Arc<Models>, policy: BatchPolicy, metrics: Arc<Metrics>) -> Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Job>(policy.queue_size.max(1));
        let alive = Arc::new(AtomicBool::new(true));
        let depth = Arc::new(AtomicI64::new(0));
        let thread_alive = alive.clone();
        let thread_depth = depth.clone();
        let thread_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("embedkit-inference".into())
            .spawn(move || {
                let mut pending: Option<Job> = None;
                loop {
                    let first = match pending.take() {
                        Some(j) => j,
                        None => match rx.recv() {
                            Ok(j) => j,
                            Err(_) => break,
                        },
                    };
                    thread_depth.fetch_sub(1, Ordering::Relaxed);
                    let mut batch = vec![first];
                    let mut texts = batch[0].len();
                    let deadline = Instant::now() + policy.max_wait;
                    while texts < policy.max_batch_texts {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match rx.recv_timeout(left) {
                            Ok(j) => {
                                thread_depth.fetch_sub(1, Ordering::Relaxed);
                                if j.kind == batch[0].kind
                                    && texts + j.len() <= policy.max_batch_texts
                                {
                                    texts += j.len();
                                    batch.push(j);
                                } else {
                                    // Counted as taken; put back in front of the queue.
                                    thread_depth.fetch_add(1, Ordering::Relaxed);
                                    pending = Some(j);
                                    break;
                                }
                            }
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => break,
                        }
                    }
                    thread_metrics
                        .queue_depth
                        .set(thread_depth.load(Ordering::Relaxed));
                    run_batch(&models, batch, &thread_metrics);
                }
                thread_alive.store(false, Ordering::Relaxed);
            })
            .map_err(|source| Error::Io {
                path: "inference thread".into(),
                source,
            })?;
        Ok(Batcher {
            tx,
            metrics,
            alive,
            depth,
        })
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Queues a job without waiting; a full queue is refused.
    pub fn submit(&self, job: Job) -> std::result::Result<(), Refused> {
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

/// Runs one kind of job over all the batch's texts and splits the answer back.
fn run_batch(models: &Models, batch: Vec<Job>, metrics: &Metrics) {
    let kind = batch[0].kind.clone();
    let texts: Vec<&str> = batch
        .iter()
        .flat_map(|j| j.texts.iter().map(String::as_str))
        .collect();
    let ids: Vec<Vec<u32>> = batch.iter().flat_map(|j| j.ids.iter().cloned()).collect();
    metrics
        .batch_size
        .observe(texts.len().max(ids.len()) as f64);
    let started = Instant::now();
    let result: Result<JobOutput> = match &kind {
        JobKind::Dense => models.dense.embed(&texts, None).map(JobOutput::Dense),
        JobKind::DenseIds => models
            .dense
            .embed_token_ids(&ids, None)
            .map(JobOutput::Dense),
        JobKind::Sparse => match &models.sparse {
            Some(m) => m.embed(&texts, None).map(JobOutput::Sparse),
            None => Err(Error::Unsupported("no sparse model is served".into())),
        },
        JobKind::Rerank { query } => match &models.rerank {
            Some(m) => m.rerank(query, &texts, None).map(JobOutput::Scores),
            None => Err(Error::Unsupported("no reranker is served".into())),
        },
    };
    metrics
        .inference_seconds
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(JobOutput::Dense(v)) => answer(batch, v, JobOutput::Dense),
        Ok(JobOutput::Sparse(v)) => answer(batch, v, JobOutput::Sparse),
        Ok(JobOutput::Scores(v)) => answer(batch, v, JobOutput::Scores),
        Err(e) => {
            let message = e.to_string();
            for job in batch {
                let _ = job.reply.send(Err(Error::Ort(message.clone())));
            }
        }
    }
}

/// Hands each job its slice of the results, in order.
fn answer<T>(batch: Vec<Job>, results: Vec<T>, wrap: fn(Vec<T>) -> JobOutput) {
    let mut results = results.into_iter();
    for job in batch {
        let part: Vec<T> = results.by_ref().take(job.len()).collect();
        // The client may have gone; its answer is dropped.
        let _ = job.reply.send(Ok(wrap(part)));
    }
}
