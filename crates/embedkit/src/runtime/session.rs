//! ONNX Runtime sessions: opening one, and [`OnnxModel`], a graph with its sessions.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::ep::ExecutionProviderDispatch;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use super::cuda::preload_cuda_libraries;
use super::device::{dispatch, resolve_providers};
use super::library::environment;
use super::plan::{model_bytes, session_options, session_plan, SessionPlan};
use super::{Provider, RuntimeOptions};
use crate::error::{Error, Result};

fn open_session(
    model_path: &Path,
    opts: &RuntimeOptions,
    threads: Option<usize>,
    shared: Option<&ort::session::builder::PrepackedWeights>,
) -> Result<Session> {
    let env = environment(opts.library_path.as_deref())?;
    if !model_path.is_file() {
        let dir = model_path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let file = model_path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Err(Error::MissingFile { file, dir });
    }
    let providers = resolve_providers(opts)?;
    if providers.iter().any(|p| matches!(p, Provider::Cuda { .. })) {
        preload_cuda_libraries();
    }
    let eps: Vec<ExecutionProviderDispatch> = providers.iter().map(dispatch).collect();
    let ort_err = Error::from;
    let mut builder = Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(ort_err)?
        .with_execution_providers(eps)
        .map_err(ort_err)?;
    if let Some(shared) = shared {
        builder = builder.with_prepacked_weights(shared).map_err(ort_err)?;
    }
    if let Some(n) = threads {
        if n == 0 {
            return Err(Error::InvalidArgument("threads must be at least 1".into()));
        }
        builder = builder
            .with_intra_threads(n)
            .map_err(ort_err)?
            .with_inter_threads(n)
            .map_err(ort_err)?;
    }
    builder
        .commit_from_file(model_path)
        .map_err(|e| Error::UnloadableModel {
            path: model_path.to_path_buf(),
            source: e,
        })
}

/// One ONNX graph ready to run (see [`SessionPlan`]): its sessions, and the graph's
/// input and output names.
///
/// A process made by `fork()` has none of its parent's threads, so the parent's sessions
/// (whose thread pools would wait forever on threads that are not there) are never run,
/// nor dropped, in a child: the child opens its own on its first call.
pub struct OnnxModel {
    /// The process that opened `home`.
    pid: u32,
    home: std::mem::ManuallyDrop<Arc<Sessions>>,
    /// Sessions opened by a forked child, with its pid. Only a child ever locks this,
    /// so no parent thread can hold it at a fork.
    forked: Mutex<Option<(u32, Arc<Sessions>)>>,
    plan: SessionPlan,
    opts: RuntimeOptions,
    on_gpu: bool,
    path: PathBuf,
    inputs: Vec<String>,
    outputs: Vec<String>,
    /// The last dimension of each output where the graph fixes it.
    output_widths: Vec<Option<usize>>,
}

/// One process's sessions of a graph: the session for lone batches, and the pool for
/// batches that run side by side (opened on first use), each behind a lock since running
/// needs exclusive access.
struct Sessions {
    solo: Mutex<Session>,
    pool: Mutex<Option<Arc<Vec<Mutex<Session>>>>>,
    /// CPU sessions share their prepacked weights: one copy however many run.
    prepacked: Option<ort::session::builder::PrepackedWeights>,
}

impl Drop for OnnxModel {
    fn drop(&mut self) {
        if std::process::id() == self.pid {
            // SAFETY: `home` is dropped once, here, and never used after.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.home) };
        }
        // In a forked child the parent's sessions are left alone: releasing them would
        // join thread-pool threads that do not exist in this process.
    }
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("path", &self.path)
            .field("plan", &self.plan)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

impl Sessions {
    /// The solo session (the pool opens on first use).
    fn open(path: &Path, opts: &RuntimeOptions, plan: &SessionPlan, on_gpu: bool) -> Result<Self> {
        // GPU sessions hold their weights on their own device; CPU ones share them.
        let prepacked =
            (plan.pool > 1 && !on_gpu).then(ort::session::builder::PrepackedWeights::new);
        let solo = open_session(path, opts, plan.solo_threads, prepacked.as_ref())?;
        Ok(Sessions {
            solo: Mutex::new(solo),
            pool: Mutex::new(None),
            prepacked,
        })
    }
}

/// Which of a graph's sessions runs a batch, chosen by the caller that plans the
/// batches: [`Lane::Solo`] for a lone batch (every thread on one batch), [`Lane::Pool`]
/// when batches run side by side, one per worker thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Solo,
    Pool,
}

impl OnnxModel {
    pub fn load(path: &Path, opts: &RuntimeOptions) -> Result<Self> {
        if opts.parallel == Some(0) {
            return Err(Error::InvalidArgument("parallel must be at least 1".into()));
        }
        // The library first: asking for providers goes through it.
        environment(opts.library_path.as_deref())?;
        let on_gpu = resolve_providers(opts)?
            .iter()
            .any(|p| !matches!(p, Provider::Cpu));
        let plan = session_plan(opts, on_gpu, model_bytes(path));
        let home = Sessions::open(path, opts, &plan, on_gpu)?;
        let (inputs, outputs, output_widths) = {
            let solo = home.solo.lock().unwrap_or_else(|e| e.into_inner());
            let inputs = solo.inputs().iter().map(|i| i.name().to_string()).collect();
            let outputs = solo
                .outputs()
                .iter()
                .map(|o| o.name().to_string())
                .collect();
            let output_widths = solo
                .outputs()
                .iter()
                .map(|o| {
                    o.dtype()
                        .tensor_shape()
                        .and_then(|s| s.last().copied())
                        .and_then(|d| usize::try_from(d).ok())
                        .filter(|&d| d > 0)
                })
                .collect();
            (inputs, outputs, output_widths)
        };
        Ok(OnnxModel {
            pid: std::process::id(),
            home: std::mem::ManuallyDrop::new(Arc::new(home)),
            forked: Mutex::new(None),
            plan,
            opts: opts.clone(),
            on_gpu,
            path: path.to_path_buf(),
            inputs,
            outputs,
            output_widths,
        })
    }

    /// How many batches can run at once.
    pub fn parallelism(&self) -> usize {
        self.plan.pool
    }

    /// This process's sessions: the ones opened at load, or, in a forked child, its own
    /// (opened on its first call).
    fn sessions(&self) -> Result<Arc<Sessions>> {
        let pid = std::process::id();
        if pid == self.pid {
            return Ok(Arc::clone(&self.home));
        }
        let mut slot = self.forked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((owner, sessions)) = slot.as_ref() {
            if *owner == pid {
                return Ok(sessions.clone());
            }
        }
        // A grandchild: its parent's (the child's) sessions are as unusable as the first.
        if let Some(stale) = slot.take() {
            std::mem::forget(stale);
        }
        tracing::info!(path = %self.path.display(), "forked process: opening its own sessions");
        let sessions = Arc::new(Sessions::open(
            &self.path,
            &self.opts,
            &self.plan,
            self.on_gpu,
        )?);
        *slot = Some((pid, sessions.clone()));
        Ok(sessions)
    }

    /// The pool of `sessions`, opened on first use.
    fn pool(&self, sessions: &Sessions) -> Result<Arc<Vec<Mutex<Session>>>> {
        let mut slot = sessions.pool.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = slot.as_ref() {
            return Ok(pool.clone());
        }
        let threads = self.plan.pool_threads;
        let pool = (0..self.plan.pool)
            .map(|i| {
                let opts = session_options(&self.opts, self.on_gpu, i);
                open_session(&self.path, &opts, threads, sessions.prepacked.as_ref())
                    .map(Mutex::new)
            })
            .collect::<Result<Vec<_>>>()?;
        let pool = Arc::new(pool);
        *slot = Some(pool.clone());
        Ok(pool)
    }

    pub fn input_names(&self) -> &[String] {
        &self.inputs
    }

    pub fn output_names(&self) -> &[String] {
        &self.outputs
    }

    /// The last dimension of output `name` when the graph fixes it (not symbolic).
    pub fn output_width(&self, name: &str) -> Option<usize> {
        let i = self.outputs.iter().position(|o| o == name)?;
        self.output_widths[i]
    }

    /// Fails before any inference when the graph declares output `name` with a last
    /// dimension other than `dim`, the registry's width.
    pub fn check_output_width(&self, model_name: &str, name: &str, dim: usize) -> Result<()> {
        match self.output_width(name) {
            Some(width) if width != dim => Err(Error::ModelMismatch {
                model: model_name.to_string(),
                reason: format!(
                    "the ONNX graph {} declares output {name:?} {width} wide, but the model \
                     is registered with {dim} dimensions",
                    self.path.display()
                ),
            }),
            _ => Ok(()),
        }
    }

    pub fn has_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|i| i == name)
    }

    /// The graph's first output, or an error naming the model when it has none.
    pub fn first_output(&self, model_name: &str) -> Result<String> {
        self.outputs
            .first()
            .cloned()
            .ok_or_else(|| Error::ModelMismatch {
                model: model_name.to_string(),
                reason: format!("the ONNX graph {} has no outputs", self.path.display()),
            })
    }

    /// Output `name`, or an error listing the outputs the graph has.
    pub fn require_output(&self, model_name: &str, name: &str) -> Result<String> {
        if self.outputs.iter().any(|o| o == name) {
            return Ok(name.to_string());
        }
        Err(Error::ModelMismatch {
            model: model_name.to_string(),
            reason: format!(
                "the ONNX graph {} has no output {name:?} (it has {:?})",
                self.path.display(),
                self.outputs
            ),
        })
    }

    /// Fails before any inference unless the graph takes `input_ids` and nothing outside
    /// `known`.
    pub fn check_inputs(&self, model_name: &str, known: &[&str]) -> Result<()> {
        let mismatch = |reason: String| Error::ModelMismatch {
            model: model_name.to_string(),
            reason,
        };
        if !self.has_input("input_ids") {
            return Err(mismatch(format!(
                "the ONNX graph {} has no `input_ids` input (its inputs: {:?})",
                self.path.display(),
                self.inputs
            )));
        }
        if let Some(unknown) = self.inputs.iter().find(|n| !known.contains(&n.as_str())) {
            return Err(mismatch(format!(
                "the ONNX graph needs an input {unknown:?} that this model is not given \
                 (known inputs: {known:?})"
            )));
        }
        Ok(())
    }

    /// Runs the graph on named inputs and returns one float output, computing only what
    /// that output needs.
    pub fn run_f32(
        &self,
        lane: Lane,
        inputs: Vec<(String, ort::value::DynValue)>,
        output: &str,
    ) -> Result<ndarray::ArrayD<f32>> {
        let mut outs = self.run_many_f32(lane, inputs, &[output.to_string()])?;
        outs.pop().ok_or_else(|| {
            Error::Internal(format!("the model produced no output named {output:?}"))
        })
    }

    /// Runs the graph on named inputs and returns the float outputs named, in order.
    pub fn run_many_f32(
        &self,
        lane: Lane,
        inputs: Vec<(String, ort::value::DynValue)>,
        names: &[String],
    ) -> Result<Vec<ndarray::ArrayD<f32>>> {
        self.run_views(lane, inputs, names, |views| {
            Ok(views.into_iter().map(|v| v.to_owned()).collect())
        })
    }

    /// Runs the graph and hands `f` a view of one float output where ONNX Runtime wrote
    /// it: no copy of outputs as large as SPLADE's `[batch, tokens, 30522]` logits. The
    /// session stays taken while `f` runs.
    pub fn run_f32_view<R>(
        &self,
        lane: Lane,
        inputs: Vec<(String, ort::value::DynValue)>,
        output: &str,
        f: impl FnOnce(ndarray::ArrayViewD<'_, f32>) -> Result<R>,
    ) -> Result<R> {
        self.run_views(lane, inputs, &[output.to_string()], |mut views| {
            let view = views.pop().ok_or_else(|| {
                Error::Internal(format!("the model produced no output named {output:?}"))
            })?;
            f(view)
        })
    }

    /// Runs the graph on named inputs and hands `f` views of the float outputs named, in
    /// order.
    pub(crate) fn run_views<R>(
        &self,
        lane: Lane,
        inputs: Vec<(String, ort::value::DynValue)>,
        names: &[String],
        f: impl FnOnce(Vec<ndarray::ArrayViewD<'_, f32>>) -> Result<R>,
    ) -> Result<R> {
        let mut selector = ort::session::OutputSelector::no_default();
        for name in names {
            selector = selector.with(name.as_str());
        }
        let run_options = ort::session::RunOptions::new()?.with_outputs(selector);
        // Lent, not moved: an output that is a graph input is handed back as a view of
        // the input's buffer, which must outlive the views given to `f`.
        let lent: Vec<(
            std::borrow::Cow<'_, str>,
            ort::session::SessionInputValue<'_>,
        )> = inputs
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.into()))
            .collect();
        let sessions = self.sessions()?;
        let pool = if self.plan.pool > 1 && lane == Lane::Pool {
            Some(self.pool(&sessions)?)
        } else {
            None
        };
        // The pool's first free session (else wait for the first), or the solo session.
        let mut session = match pool.as_deref() {
            Some(pool) => pool
                .iter()
                .find_map(|s| s.try_lock().ok())
                .unwrap_or_else(|| pool[0].lock().unwrap_or_else(|e| e.into_inner())),
            None => sessions.solo.lock().unwrap_or_else(|e| e.into_inner()),
        };
        let outputs = session.run_with_options(lent, &run_options)?;
        let views = names
            .iter()
            .map(|output| {
                let value = outputs.get(output.as_str()).ok_or_else(|| {
                    Error::Internal(format!("the model produced no output named {output:?}"))
                })?;
                let array =
                    value
                        .try_extract_array::<f32>()
                        .map_err(|source| Error::OutputType {
                            output: output.clone(),
                            path: self.path.clone(),
                            source,
                        })?;
                Ok(array)
            })
            .collect::<Result<Vec<_>>>()?;
        f(views)
    }
}
