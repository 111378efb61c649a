//! How many sessions a graph gets and how many threads each: the session plan.

use std::path::Path;

use super::{Provider, RuntimeOptions};

/// How a graph's sessions are laid out: a pool of sessions that run batches side by
/// side, and how many intra-op threads each has. A pool of one is also the session
/// that runs lone batches; a larger pool gets a separate session with all the threads
/// for those (a single query is fastest on every thread, a stream of batches on
/// separate single-threaded sessions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPlan {
    pub pool: usize,
    pub pool_threads: Option<usize>,
    /// Threads of the session for lone batches (all of them).
    pub solo_threads: Option<usize>,
}

/// Chooses the [`SessionPlan`].
///
/// Measured on 2 cores (BENCHMARKS.md): two single-threaded sessions, each running its
/// own length-sorted batch, embed 5-24% more texts per second than one session with two
/// threads (ONNX Runtime's intra-op threads wait on each other at every operator;
/// separate sessions never do), while a lone query takes 40% less time on two threads
/// than on one. So by default a CPU gets a pool of one single-threaded session per
/// thread plus the all-threads session, as long as these copies of the weights stay
/// within [`PARALLEL_WEIGHT_BUDGET`]; else one session. A GPU gets one session per
/// id in `device_ids` (batches spread over the GPUs; [`session_options`] places them).
pub fn session_plan(opts: &RuntimeOptions, on_gpu: bool, model_bytes: u64) -> SessionPlan {
    if on_gpu && opts.parallel.is_none() {
        let gpus = opts.device_ids.as_ref().map_or(1, |ids| ids.len().max(1));
        return SessionPlan {
            pool: gpus,
            pool_threads: opts.threads,
            solo_threads: opts.threads,
        };
    }
    let (pool, pool_threads) = match opts.parallel {
        Some(p) => {
            let p = p.max(1);
            (
                p,
                opts.threads
                    .unwrap_or_else(|| (available_threads() / p).max(1)),
            )
        }
        None => {
            let total = opts.threads.unwrap_or_else(available_threads).max(1);
            // Sessions that fit the budget, the pool's plus the solo one; a session held
            // about 4x its file in memory here (weights unpacked, folded and prepacked).
            let copies = (PARALLEL_WEIGHT_BUDGET / (4 * model_bytes.max(1))) as usize;
            if total == 1 || copies < 3 {
                return SessionPlan {
                    pool: 1,
                    pool_threads: Some(total),
                    solo_threads: Some(total),
                };
            }
            let pool = total.min(copies - 1);
            (pool, (total / pool).max(1))
        }
    };
    SessionPlan {
        pool,
        pool_threads: Some(pool_threads),
        solo_threads: Some(pool * pool_threads),
    }
}

/// The options of the `index`-th session of a pool: on GPUs, session `i` runs on the
/// `i`-th of `device_ids` (round robin when the pool is larger), so that several GPUs
/// share the batches; elsewhere the options as given.
pub fn session_options(opts: &RuntimeOptions, on_gpu: bool, index: usize) -> RuntimeOptions {
    let mut out = opts.clone();
    if let (true, Some(ids)) = (on_gpu, &opts.device_ids) {
        if !ids.is_empty() {
            let id = ids[index % ids.len()];
            out.device_ids = Some(vec![id]);
            if let Some(list) = &mut out.providers {
                for p in list.iter_mut() {
                    if let Provider::Cuda { device_id } = p {
                        *device_id = Some(id);
                    }
                }
            }
        }
    }
    out
}

/// The size of an ONNX file with its external data (`<file>_data` or `<file>.data`).
pub(super) fn model_bytes(path: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut total = size(path);
    for suffix in ["_data", ".data"] {
        let mut p = path.as_os_str().to_os_string();
        p.push(suffix);
        total += size(Path::new(&p));
    }
    total
}

/// Memory that the sessions of one graph may take between them (estimated as 4x the
/// file per session); past it, one session runs everything.
pub const PARALLEL_WEIGHT_BUDGET: u64 = 2 << 30;

fn available_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::device::choose_providers;
    use crate::runtime::Device;

    fn opts(device: Device) -> RuntimeOptions {
        RuntimeOptions {
            device,
            ..RuntimeOptions::default()
        }
    }
    #[test]
    fn several_gpus_get_a_session_each() {
        let two = RuntimeOptions {
            device_ids: Some(vec![0, 1]),
            ..opts(Device::Cuda)
        };
        let plan = session_plan(&two, true, 100 << 20);
        assert_eq!(plan.pool, 2);
        let ids: Vec<_> = (0..4)
            .map(|i| session_options(&two, true, i).device_ids.unwrap())
            .collect();
        assert_eq!(ids, [vec![0], vec![1], vec![0], vec![1]]);
        assert_eq!(
            choose_providers(&session_options(&two, true, 1), true, true, "lib.so").unwrap()[0],
            Provider::Cuda { device_id: Some(1) }
        );
        // An explicit CUDA provider is moved to the session's GPU too.
        let listed = RuntimeOptions {
            providers: Some(vec![Provider::Cuda { device_id: Some(0) }]),
            ..two.clone()
        };
        assert_eq!(
            session_options(&listed, true, 1).providers.unwrap(),
            [Provider::Cuda { device_id: Some(1) }]
        );
        // One GPU, or none given: one session. On the CPU the ids do nothing.
        assert_eq!(session_plan(&opts(Device::Cuda), true, 100 << 20).pool, 1);
        assert_eq!(session_options(&two, false, 1).device_ids, two.device_ids);
    }
    #[test]
    fn session_plan_splits_threads_into_a_pool_within_the_memory_budget() {
        let opts = |threads: Option<usize>, parallel: Option<usize>| RuntimeOptions {
            threads,
            parallel,
            ..Default::default()
        };
        let small = 23 << 20;
        // Two threads, a small model: two single-threaded sessions and a solo one.
        let p = session_plan(&opts(Some(2), None), false, small);
        assert_eq!(
            (p.pool, p.pool_threads, p.solo_threads),
            (2, Some(1), Some(2))
        );
        // One thread: one session.
        let p = session_plan(&opts(Some(1), None), false, small);
        assert_eq!((p.pool, p.solo_threads), (1, Some(1)));
        // A model too large for three copies: one session with every thread.
        let p = session_plan(&opts(Some(8), None), false, 300 << 20);
        assert_eq!(
            (p.pool, p.pool_threads, p.solo_threads),
            (1, Some(8), Some(8))
        );
        // The budget caps the pool: 2 GiB / (4 x 100 MiB) = 5 copies, so 4 in the pool.
        let p = session_plan(&opts(Some(16), None), false, 100 << 20);
        assert_eq!(
            (p.pool, p.pool_threads, p.solo_threads),
            (4, Some(4), Some(16))
        );
        // An explicit `parallel` is obeyed, with `threads` per session as fastembed.
        let p = session_plan(&opts(Some(2), Some(3)), false, small);
        assert_eq!((p.pool, p.pool_threads), (3, Some(2)));
        // A GPU: one session.
        assert_eq!(session_plan(&opts(None, None), true, small).pool, 1);
    }
}
