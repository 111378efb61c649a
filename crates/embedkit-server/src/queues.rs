//! The inference thread's waiting jobs, one queue per model, operation and purpose: the
//! scheduler gives the next batch to the queue whose first job has waited longest, and
//! fills it from that queue only, so interleaved traffic for several models (or a dense
//! and a rerank stream on one model) still runs in full batches and no queue starves
//! another.

use std::collections::VecDeque;

use crate::batcher::{Job, Op};
use embedkit::{Purpose, TruncationSide};

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
}

#[derive(Default)]
pub(crate) struct Queues {
    queues: Vec<(Key, VecDeque<Job>)>,
}

impl Queues {
    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.queues.iter().map(|(_, q)| q.len()).sum()
    }

    /// Files a job behind those it may share a call with.
    pub fn push(&mut self, job: Job) {
        let key = Key::of(&job);
        match self.queues.iter_mut().find(|(k, _)| *k == key) {
            Some((_, q)) => q.push_back(job),
            None => self.queues.push((key, VecDeque::from([job]))),
        }
    }

    /// Starts a batch with the job that has waited longest (of any queue); jobs whose
    /// client has gone are dropped on the way and counted in `dropped`.
    pub fn start(&mut self, shares: impl Fn(usize) -> bool, dropped: &mut u64) -> Option<Filling> {
        self.prune(dropped);
        let (i, _) = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, (_, q))| q.front().map(|j| (i, j.queued)))
            .min_by_key(|&(_, queued)| queued)?;
        let job = self.queues[i].1.pop_front()?;
        let filling = Filling {
            inputs: job.work.len(),
            longest: job.longest,
            shares: shares(job.model),
            jobs: vec![job],
        };
        self.queues.retain(|(_, q)| !q.is_empty());
        Some(filling)
    }

    /// Moves jobs that share `filling`'s call into it while they fit; true when the
    /// next such job did not fit (the batch is as full as it will get).
    pub fn fill(&mut self, filling: &mut Filling, budget: Budget, dropped: &mut u64) -> bool {
        if filling.is_full(budget) {
            return true;
        }
        let key = Key::of(&filling.jobs[0]);
        let Some(pos) = self.queues.iter().position(|(k, _)| *k == key) else {
            return false;
        };
        let queue = &mut self.queues[pos].1;
        let mut stopped = false;
        while let Some(job) = queue.front() {
            if job.reply.is_closed() {
                queue.pop_front();
                *dropped += 1;
                continue;
            }
            if !filling.fits(job, budget) {
                stopped = true;
                break;
            }
            let Some(job) = queue.pop_front() else { break };
            filling.inputs += job.work.len();
            filling.longest = filling.longest.max(job.longest);
            filling.jobs.push(job);
            if filling.is_full(budget) {
                stopped = true;
                break;
            }
        }
        self.queues.retain(|(_, q)| !q.is_empty());
        stopped
    }

    fn prune(&mut self, dropped: &mut u64) {
        for (_, q) in &mut self.queues {
            let before = q.len();
            q.retain(|j| !j.reply.is_closed());
            *dropped += (before - q.len()) as u64;
        }
        self.queues.retain(|(_, q)| !q.is_empty());
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
