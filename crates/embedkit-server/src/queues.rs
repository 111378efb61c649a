//! The inference thread's waiting jobs, one queue per model, operation and purpose, and
//! the scheduler that shares the compute between them by time:
//!
//! - Each queue is charged the compute time its batches take; the next batch goes to
//!   the waiting queue charged least (the oldest first job among equals), so a stream of
//!   short batches (rerank) gets as much time as a stream of long ones (dense), not as
//!   many turns. A queue that was idle starts level with the others: idleness earns no
//!   credit to spend later.
//! - While other queues are busy (waiting, or served within [`ACTIVE_WINDOW`]), a batch
//!   is sized to run about one time slice, estimated from its queue's own past batches,
//!   so a closed-loop client of a short stream is never held behind a long batch; alone,
//!   a queue's batches fill the whole budget.
//! - A batch is filled from its queue only, so interleaved traffic for several models
//!   still runs in full batches.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::batcher::{Job, Op};
use embedkit::{Purpose, TruncationSide};

/// How long after its last batch a queue still counts as busy: a closed-loop client
/// sends its next request within a few milliseconds of an answer, and its queue must
/// not look idle in between, or the next long batch would make it wait.
pub(crate) const ACTIVE_WINDOW: Duration = Duration::from_millis(250);

/// What jobs must share to run in one call.
#[derive(Clone, PartialEq)]
struct Key {
    model: usize,
    op: Op,
    purpose: Purpose,
    truncation: Option<TruncationSide>,
}

impl Key {
    fn of(job: &Job) -> Key {
        Key {
            model: job.model,
            op: job.work.op.clone(),
            purpose: job.work.purpose,
            truncation: job.work.truncation,
        }
    }
}

/// The budgets of one batch.
#[derive(Clone, Copy)]
pub(crate) struct Budget {
    /// Inputs per call, summed over its jobs.
    pub max_inputs: usize,
    /// Padded tokens per call (inputs × the longest input's tokens).
    pub max_tokens: usize,
}

/// A batch being filled: its jobs and what they cost so far.
pub(crate) struct Filling {
    pub jobs: Vec<Job>,
    /// Its queue (an index into the scheduler's queues, stable for the server's life).
    queue: usize,
    inputs: usize,
    longest: usize,
    /// Whether jobs may share the call (not for models whose outputs depend on the
    /// batch).
    shares: bool,
}

impl Filling {
    pub fn is_full(&self, budget: Budget) -> bool {
        !self.shares || self.inputs >= budget.max_inputs
    }

    /// Adds `job` if it fits the budget (the first job always does).
    fn fits(&self, job: &Job, budget: Budget) -> bool {
        let n = self.inputs + job.work.len();
        let l = self.longest.max(job.longest);
        n <= budget.max_inputs
            && n.saturating_mul(l) <= budget.max_tokens.max(self.inputs * self.longest)
    }

    /// Its queue and padded tokens (as the budgets count them), to charge it once run.
    pub fn account(&self) -> (usize, usize) {
        (self.queue, self.inputs.saturating_mul(self.longest))
    }
}

/// One queue and its account.
struct Queue {
    key: Key,
    jobs: VecDeque<Job>,
    /// Compute time charged, on the scheduler's clock (see [`Queues::clock`]).
    used: Duration,
    /// When a job last arrived or a batch last finished.
    active: Instant,
    /// Seconds per padded token of its batches (a moving average), once one has run.
    cost: Option<f64>,
}

impl Queue {
    /// Whether a job arrived or a batch finished within [`ACTIVE_WINDOW`] of `now`.
    fn recently_active(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.active) < ACTIVE_WINDOW
    }
}

pub(crate) struct Queues {
    /// Every queue seen: bounded by models × operations × purposes × truncation sides.
    queues: Vec<Queue>,
    /// The charge of the queue last given a batch: a queue that becomes busy again
    /// starts here, not below.
    clock: Duration,
    /// A batch's intended length while other queues are busy; `None`: batches fill
    /// their budget whatever else waits.
    slice: Option<Duration>,
}

impl Default for Queues {
    fn default() -> Self {
        Queues::new(None)
    }
}

impl Queues {
    pub fn new(slice: Option<Duration>) -> Self {
        Queues {
            queues: Vec::new(),
            clock: Duration::ZERO,
            slice: slice.filter(|s| !s.is_zero()),
        }
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.queues.iter().map(|q| q.jobs.len()).sum()
    }

    /// Files a job behind those it may share a call with.
    pub fn push(&mut self, job: Job) {
        let key = Key::of(&job);
        let now = Instant::now();
        let clock = self.clock;
        match self.queues.iter_mut().find(|q| q.key == key) {
            Some(q) => {
                if q.jobs.is_empty() {
                    q.used = q.used.max(clock);
                }
                q.active = now;
                q.jobs.push_back(job);
            }
            None => self.queues.push(Queue {
                key,
                jobs: VecDeque::from([job]),
                used: clock,
                active: now,
                cost: None,
            }),
        }
    }

    /// Starts a batch with the first job of the waiting queue charged least (of equals,
    /// the one whose first job has waited longest); jobs whose client has gone are
    /// dropped on the way and counted in `dropped`.
    pub fn start(&mut self, shares: impl Fn(usize) -> bool, dropped: &mut u64) -> Option<Filling> {
        self.prune(dropped);
        let i = self.pick()?;
        let q = &mut self.queues[i];
        let job = q.jobs.pop_front()?;
        self.clock = self.clock.max(q.used);
        Some(Filling {
            queue: i,
            inputs: job.work.len(),
            longest: job.longest,
            shares: shares(job.model),
            jobs: vec![job],
        })
    }

    /// Orders the jobs of the queue the scheduler would pick now by their longest input,
    /// when its jobs are about to be split between several free workers: each batch then
    /// holds inputs of like length and pads less (the library sorts its windows for the
    /// same reason). Only while its oldest job is younger than [`ACTIVE_WINDOW`], so that
    /// a long job passed over by shorter ones goes first in arrival order after that.
    pub fn group_by_length(&mut self, now: Instant) {
        let Some(i) = self.pick() else { return };
        let jobs = &mut self.queues[i].jobs;
        let oldest = jobs.iter().map(|j| j.queued).min();
        if oldest.is_some_and(|t| now.saturating_duration_since(t) < ACTIVE_WINDOW) {
            jobs.make_contiguous().sort_by_key(|j| j.longest);
        }
    }

    /// The waiting queue charged least (of equals, the one whose first job has waited
    /// longest): where the next batch comes from.
    pub fn pick(&self) -> Option<usize> {
        self.queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.jobs.front().map(|j| (i, (q.used, j.queued))))
            .min_by_key(|&(_, rank)| rank)
            .map(|(i, _)| i)
    }

    /// `budget` for `filling`'s batch: while another queue is busy, its padded tokens
    /// are cut to what its queue's past batches ran in one time slice.
    pub fn budget(&self, filling: &Filling, budget: Budget, now: Instant) -> Budget {
        let (Some(slice), Some(cost)) = (self.slice, self.queues[filling.queue].cost) else {
            return budget;
        };
        if !self.others_busy(filling, now) {
            return budget;
        }
        let tokens = (slice.as_secs_f64() / cost.max(1e-12)).min(usize::MAX as f64) as usize;
        Budget {
            max_tokens: budget.max_tokens.min(tokens.max(1)),
            ..budget
        }
    }

    /// Whether the next batch should wait a moment: another queue is owed compute (it
    /// was charged at least `slack` less than the queue the scheduler would pick now) and
    /// is busy but empty this instant (a closed-loop client between an answer and its
    /// next request). Without the wait the owed queue's share goes to whoever has work
    /// queued all the time, and a stream of short requests never gets its share.
    pub fn owed(&self, now: Instant, slack: Duration) -> bool {
        let Some(pick) = self.pick() else {
            return false;
        };
        let picked = self.queues[pick].used;
        self.queues
            .iter()
            .any(|q| q.jobs.is_empty() && q.recently_active(now) && q.used + slack < picked)
    }

    /// Whether a queue other than `filling`'s has jobs waiting or was served within
    /// [`ACTIVE_WINDOW`] of `now`.
    pub fn others_busy(&self, filling: &Filling, now: Instant) -> bool {
        self.busy_beside(filling.queue, now)
    }

    /// Whether a queue other than `queue` has jobs waiting or was served within
    /// [`ACTIVE_WINDOW`] of `now`.
    pub fn busy_beside(&self, queue: usize, now: Instant) -> bool {
        self.queues
            .iter()
            .enumerate()
            .any(|(i, q)| i != queue && (!q.jobs.is_empty() || q.recently_active(now)))
    }

    /// Charges a batch's queue the compute time the batch took (it ended at `now`), and
    /// learns the queue's cost per padded token from it.
    pub fn charge(&mut self, queue: usize, padded: usize, took: Duration, now: Instant) {
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        q.used += took;
        q.active = now;
        if padded > 0 {
            let sample = took.as_secs_f64() / padded as f64;
            q.cost = Some(match q.cost {
                Some(c) => 0.7 * c + 0.3 * sample,
                None => sample,
            });
        }
    }

    /// The inputs of `filling` and of the jobs still waiting in its queue.
    pub fn inputs_beside(&self, filling: &Filling) -> usize {
        let waiting: usize = self.queues[filling.queue]
            .jobs
            .iter()
            .map(|j| j.work.len())
            .sum();
        filling.inputs + waiting
    }

    /// Moves jobs that share `filling`'s call into it while they fit; true when the
    /// next such job did not fit (the batch is as full as it will get).
    pub fn fill(&mut self, filling: &mut Filling, budget: Budget, dropped: &mut u64) -> bool {
        if filling.is_full(budget) {
            return true;
        }
        let queue = &mut self.queues[filling.queue].jobs;
        while let Some(job) = queue.front() {
            if job.reply.is_closed() {
                queue.pop_front();
                *dropped += 1;
                continue;
            }
            if !filling.fits(job, budget) {
                return true;
            }
            let Some(job) = queue.pop_front() else { break };
            filling.inputs += job.work.len();
            filling.longest = filling.longest.max(job.longest);
            filling.jobs.push(job);
            if filling.is_full(budget) {
                return true;
            }
        }
        false
    }

    fn prune(&mut self, dropped: &mut u64) {
        for q in &mut self.queues {
            let before = q.jobs.len();
            q.jobs.retain(|j| !j.reply.is_closed());
            *dropped += (before - q.jobs.len()) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use embedkit::Capability;
    use tokio::sync::oneshot;

    use super::*;
    use crate::batcher::{Answered, Inputs, Work};

    const BUDGET: Budget = Budget {
        max_inputs: 256,
        max_tokens: 16384,
    };

    /// A job of one text for `model`, queued `age` ms before `t0`; keeps its receiver
    /// alive in `keep`.
    fn job(
        model: usize,
        op: Capability,
        age: u64,
        t0: Instant,
        keep: &mut Vec<oneshot::Receiver<Answered>>,
    ) -> Job {
        let (reply, rx) = oneshot::channel();
        keep.push(rx);
        Job {
            model,
            work: Work::new(op, Inputs::Texts(vec![format!("m{model}")])),
            longest: 8,
            queued: t0 - Duration::from_millis(age),
            reply,
        }
    }

    fn models(f: &Filling) -> Vec<usize> {
        f.jobs.iter().map(|j| j.model).collect()
    }

    #[test]
    fn interleaved_models_run_in_full_batches_oldest_first() {
        let (t0, mut keep, mut dropped) = (Instant::now(), Vec::new(), 0);
        let mut q = Queues::default();
        // A, B, A, B, A arriving in that order (older first).
        for (i, m) in [0, 1, 0, 1, 0].into_iter().enumerate() {
            q.push(job(m, Capability::DenseText, 100 - i as u64, t0, &mut keep));
        }
        let mut first = q.start(|_| true, &mut dropped).unwrap();
        q.fill(&mut first, BUDGET, &mut dropped);
        assert_eq!(models(&first), [0, 0, 0]);
        let mut second = q.start(|_| true, &mut dropped).unwrap();
        q.fill(&mut second, BUDGET, &mut dropped);
        assert_eq!(models(&second), [1, 1]);
        assert!(q.start(|_| true, &mut dropped).is_none());
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn operations_of_one_model_queue_apart_and_the_oldest_goes_first() {
        let (t0, mut keep, mut dropped) = (Instant::now(), Vec::new(), 0);
        let mut q = Queues::default();
        q.push(job(0, Capability::PairScores, 50, t0, &mut keep));
        q.push(job(0, Capability::DenseText, 90, t0, &mut keep));
        q.push(job(0, Capability::PairScores, 40, t0, &mut keep));
        let mut b = q.start(|_| true, &mut dropped).unwrap();
        q.fill(&mut b, BUDGET, &mut dropped);
        assert_eq!(b.jobs.len(), 1, "the dense job alone");
        assert_eq!(b.jobs[0].work.op, Op::One(Capability::DenseText));
        let mut b = q.start(|_| true, &mut dropped).unwrap();
        q.fill(&mut b, BUDGET, &mut dropped);
        assert_eq!(b.jobs.len(), 2, "both rerank jobs together");
    }

    /// Starts and fills the next batch with `budget` as the scheduler cuts it at `now`.
    fn next(q: &mut Queues, dropped: &mut u64, now: Instant) -> Filling {
        let mut b = q.start(|_| true, dropped).unwrap();
        let budget = q.budget(&b, BUDGET, now);
        q.fill(&mut b, budget, dropped);
        b
    }

    #[test]
    fn compute_is_shared_by_time_not_by_turns() {
        let (t0, mut keep, mut dropped) = (Instant::now(), Vec::new(), 0);
        let mut q = Queues::new(None);
        // Model 0's batches take 60 ms, model 1's 10 ms; both always have work.
        for i in 0..20 {
            q.push(job(0, Capability::DenseText, 1000 - i, t0, &mut keep));
            q.push(job(1, Capability::PairScores, 1000 - i, t0, &mut keep));
        }
        let mut turns = [0, 0];
        let mut time = [Duration::ZERO; 2];
        for _ in 0..14 {
            let mut b = q.start(|_| false, &mut dropped).unwrap();
            q.fill(&mut b, BUDGET, &mut dropped);
            let m = b.jobs[0].model;
            let took = Duration::from_millis([60, 10][m]);
            let (queue, padded) = b.account();
            q.charge(queue, padded, took, t0);
            turns[m] += 1;
            time[m] += took;
        }
        // Equal time: six short batches for each long one.
        assert_eq!(turns, [2, 12], "batches per model");
        assert_eq!(time[0], time[1]);
    }

    #[test]
    fn a_queue_that_was_idle_earns_no_credit() {
        let (t0, mut keep, mut dropped) = (Instant::now(), Vec::new(), 0);
        let mut q = Queues::new(None);
        // Model 0 runs alone for a second of compute.
        for i in 0..10 {
            q.push(job(0, Capability::DenseText, 100 - i, t0, &mut keep));
            let mut b = q.start(|_| false, &mut dropped).unwrap();
            q.fill(&mut b, BUDGET, &mut dropped);
            let (queue, padded) = b.account();
            q.charge(queue, padded, Duration::from_millis(100), t0);
        }
        // Then model 1 arrives beside it: it starts level with model 0's last batch,
        // so they alternate instead of model 1 running for a second while model 0 waits.
        for i in 0..4 {
            q.push(job(0, Capability::DenseText, 50 - i, t0, &mut keep));
            q.push(job(1, Capability::DenseText, 50 - i, t0, &mut keep));
        }
        let mut order = Vec::new();
        for _ in 0..6 {
            let mut b = q.start(|_| false, &mut dropped).unwrap();
            q.fill(&mut b, BUDGET, &mut dropped);
            order.push(b.jobs[0].model);
            let (queue, padded) = b.account();
            q.charge(queue, padded, Duration::from_millis(100), t0);
        }
        assert_eq!(order, [1, 0, 1, 0, 1, 0]);
    }

    #[test]
    fn a_batch_beside_busy_queues_runs_about_one_slice() {
        let (t0, mut keep, mut dropped) = (Instant::now(), Vec::new(), 0);
        let mut q = Queues::new(Some(Duration::from_millis(20)));
        for i in 0..40 {
            q.push(job(0, Capability::DenseText, 1000 - i, t0, &mut keep));
        }
        // Alone, and before any cost is known, a batch takes the whole budget.
        let b = next(&mut q, &mut dropped, t0);
        assert_eq!(b.jobs.len(), 40);
        // It ran 40 texts of 8 tokens in 400 ms: 1.25 ms a padded token.
        let (queue, padded) = b.account();
        q.charge(queue, padded, Duration::from_millis(400), t0);
        for i in 0..40 {
            q.push(job(0, Capability::DenseText, 500 - i, t0, &mut keep));
        }
        // Still alone: the whole budget again.
        let b = next(&mut q, &mut dropped, t0);
        assert_eq!(b.jobs.len(), 40);
        let (queue, padded) = b.account();
        q.charge(queue, padded, Duration::from_millis(400), t0);
        for i in 0..40 {
            q.push(job(0, Capability::DenseText, 300 - i, t0, &mut keep));
        }
        // A rerank arrives: charged least, it goes first.
        q.push(job(1, Capability::PairScores, 0, t0, &mut keep));
        let b = next(&mut q, &mut dropped, t0);
        assert_eq!(models(&b), [1]);
        let (queue, padded) = b.account();
        let done = Instant::now();
        q.charge(queue, padded, Duration::from_millis(1), done);
        // Its queue is empty now but counts as busy for a while, so that its client's
        // next request does not find a long batch in the way: 16 padded tokens (20 ms),
        // two texts.
        let b = next(&mut q, &mut dropped, done + ACTIVE_WINDOW / 2);
        assert_eq!(models(&b), [0, 0]);
        // Once it has been idle longer, batches fill the budget again.
        let b = next(&mut q, &mut dropped, done + ACTIVE_WINDOW * 2);
        assert_eq!(b.jobs.len(), 38);
    }

    #[test]
    fn a_queue_owed_compute_is_waited_for_while_its_client_is_between_requests() {
        let (t0, mut keep, mut dropped) = (Instant::now(), Vec::new(), 0);
        let mut q = Queues::new(None);
        let slack = Duration::from_millis(20);
        // Dense has had 200 ms, rerank 10 ms; rerank's queue is empty, dense's is not.
        q.push(job(0, Capability::DenseText, 10, t0, &mut keep));
        q.push(job(1, Capability::PairScores, 10, t0, &mut keep));
        for (took, model) in [(200, 0), (10, 1)] {
            let b = next(&mut q, &mut dropped, t0);
            assert_eq!(b.jobs[0].model, model);
            let (queue, padded) = b.account();
            q.charge(queue, padded, Duration::from_millis(took), t0);
        }
        q.push(job(0, Capability::DenseText, 0, t0, &mut keep));
        // Rerank was served just now: wait for its next request.
        assert!(q.owed(t0 + Duration::from_millis(1), slack));
        // Not once it has been idle a while, nor when it is owed less than the slack.
        assert!(!q.owed(t0 + ACTIVE_WINDOW * 2, slack));
        assert!(!q.owed(t0, Duration::from_millis(500)));
        // Once its request is in, it is picked, no wait.
        q.push(job(1, Capability::PairScores, 0, t0, &mut keep));
        assert!(!q.owed(t0, slack));
        assert_eq!(next(&mut q, &mut dropped, t0).jobs[0].model, 1);
    }

    #[test]
    fn jobs_split_between_workers_are_grouped_by_length_while_young() {
        let (t0, mut keep, mut dropped) = (Instant::now(), Vec::new(), 0);
        let mut q = Queues::default();
        let mut push = |q: &mut Queues, longest: usize, age: u64| {
            let mut j = job(0, Capability::DenseText, age, t0, &mut keep);
            j.longest = longest;
            q.push(j);
        };
        for (i, longest) in [50, 10, 60, 12].into_iter().enumerate() {
            push(&mut q, longest, 10 - i as u64);
        }
        let half = Budget {
            max_inputs: 2,
            max_tokens: usize::MAX,
        };
        let lengths = |b: &Filling| b.jobs.iter().map(|j| j.longest).collect::<Vec<_>>();
        q.group_by_length(t0);
        let mut b = q.start(|_| true, &mut dropped).unwrap();
        q.fill(&mut b, half, &mut dropped);
        assert_eq!(lengths(&b), [10, 12]);
        let mut b = q.start(|_| true, &mut dropped).unwrap();
        q.fill(&mut b, half, &mut dropped);
        assert_eq!(lengths(&b), [50, 60]);

        // Once the oldest job has waited the active window, arrival order holds.
        push(&mut q, 50, 300);
        push(&mut q, 10, 200);
        q.group_by_length(t0);
        let mut b = q.start(|_| true, &mut dropped).unwrap();
        q.fill(&mut b, half, &mut dropped);
        assert_eq!(lengths(&b), [50, 10]);
    }

    #[test]
    fn budgets_models_that_do_not_share_and_gone_clients() {
        let (t0, mut keep, mut dropped) = (Instant::now(), Vec::new(), 0);
        let mut q = Queues::default();
        for i in 0..5 {
            q.push(job(0, Capability::DenseText, 100 - i, t0, &mut keep));
        }
        let small = Budget {
            max_inputs: 2,
            max_tokens: 16384,
        };
        let mut b = q.start(|_| true, &mut dropped).unwrap();
        assert!(q.fill(&mut b, small, &mut dropped), "full at two inputs");
        assert_eq!(b.jobs.len(), 2);
        // A model whose outputs depend on the batch runs each job alone.
        let mut b = q.start(|_| false, &mut dropped).unwrap();
        assert!(q.fill(&mut b, BUDGET, &mut dropped));
        assert_eq!(b.jobs.len(), 1);
        // A job whose client left is dropped, not run.
        keep.remove(3);
        let mut b = q.start(|_| true, &mut dropped).unwrap();
        q.fill(&mut b, BUDGET, &mut dropped);
        assert_eq!(b.jobs.len(), 1);
        assert_eq!(dropped, 1);
        assert_eq!(q.len(), 0);
    }
}
