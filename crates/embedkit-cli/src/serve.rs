//! `embedkit serve`: a thin call into `embedkit-server` with the models and limits
//! given on the command line.

use embedkit::Operations;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use embedkit::LoadOptions;
use embedkit_server::{
    self as server, BatchPolicy, Config, DefaultPrompt, Limits, Models, Security, Served, Transport,
};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A model to serve, by registry name, optionally with the folder of its files
    /// (NAME=DIR). Repeat for several; the family comes from the registry and the first
    /// of each family is its routes' default. Default: BAAI/bge-small-en-v1.5.
    #[arg(long = "model", short, value_name = "NAME[=DIR]")]
    pub models: Vec<String>,
    /// More models, each with its own options, from a JSON file: `{"models": [{"name":
    /// NAME, "path": DIR, "threads": N, "parallel": N, "precision": "int8", "device":
    /// "cpu", "batch_size": N, "max_batch_tokens": N}]}` (all but `name` optional; what
    /// an entry leaves out comes from the flags; also "default_prompt_name" or
    /// "default_prompt"). Served after the --model ones.
    #[arg(long, value_name = "FILE")]
    pub models_config: Option<PathBuf>,
    /// TEI's: the prompt of this name (from each model's
    /// `config_sentence_transformers.json`) before every text of a request that names no
    /// `prompt_name`, for the models that embed texts; a model without it fails the start.
    #[arg(long, value_name = "NAME", conflicts_with = "default_prompt")]
    pub default_prompt_name: Option<String>,
    /// TEI's: this text before every text of a request that names no `prompt_name`, for
    /// the models that embed texts.
    #[arg(long, value_name = "TEXT")]
    pub default_prompt: Option<String>,
    #[command(flatten)]
    pub load: LoadOptions,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Every route but /health needs `Authorization: Bearer KEY`.
    #[arg(
        long,
        env = "EMBEDKIT_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// On a loopback address, also answer this Host name (a reverse proxy's); repeatable.
    #[arg(long, value_name = "NAME")]
    pub allow_host: Vec<String>,
    /// Accept HTTP/2 (cleartext, prior knowledge) beside HTTP/1.1.
    #[arg(long)]
    pub http2: bool,
    /// Also serve this sparse model (as --model NAME).
    #[arg(long, value_name = "NAME", hide = true)]
    pub sparse_model: Option<String>,
    #[arg(long, value_name = "DIR", hide = true)]
    pub sparse_model_path: Option<PathBuf>,
    /// Also serve this reranker (as --model NAME).
    #[arg(long, value_name = "NAME", hide = true)]
    pub rerank_model: Option<String>,
    #[arg(long, value_name = "DIR", hide = true)]
    pub rerank_model_path: Option<PathBuf>,
    /// Jobs waiting for inference at most; beyond, 503 with Retry-After.
    #[arg(long, default_value_t = 256)]
    pub queue_size: usize,
    /// Requests with work in progress at once, counted before their bodies are read;
    /// beyond, 503 with Retry-After. Body memory is at most this × --max-body-bytes.
    #[arg(long, default_value_t = 64)]
    pub max_concurrent_requests: usize,
    /// Inputs gathered across requests into one inference call.
    #[arg(long, default_value_t = 256)]
    pub max_batch_texts: usize,
    /// Padded tokens (inputs × the longest input) gathered across requests into one
    /// inference call, which the model then runs in batches of --max-batch-tokens.
    #[arg(long, default_value_t = 16384)]
    pub max_gather_tokens: usize,
    /// How long a request waits for others to share its batch, in milliseconds.
    #[arg(long, default_value_t = 2)]
    pub max_wait_ms: u64,
    /// Batches that may run at once, each on one single-threaded session of its model
    /// (a lone batch with nothing else waiting still takes every core). Default: the
    /// --threads value, else one per core.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub workers: Option<u64>,
    /// How long one batch is meant to run while other models or operations have work
    /// waiting, in milliseconds: compute is shared between them by time, and a batch
    /// beside others is sized to about this, so short requests never wait behind a
    /// long batch. 0: batches fill --max-batch-texts / --max-gather-tokens regardless.
    #[arg(long, default_value_t = server::DEFAULT_TIME_SLICE.as_millis() as u64)]
    pub time_slice_ms: u64,
    /// How the batches of a model that alone has work share the cores: side by side,
    /// one core each (no core waits for another batch's slowest part; the faster way
    /// where measured), or together, one batch at a time on every core holding all
    /// that waits (answers in arrival order: a lower p99, for up to 28% less
    /// throughput where measured).
    #[arg(long, value_enum, default_value_t = CoreSharingArg::SideBySide)]
    pub core_sharing: CoreSharingArg,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most inputs per request (422 beyond); TEI's name is accepted too.
    #[arg(long, alias = "max-client-batch-size", default_value_t = 512)]
    pub max_inputs: usize,
    /// Numbers in one answer of vectors per token (/embed_all, /embed_late for texts and
    /// images, and /embed_hybrid's multi-vectors): a request that could exceed it is
    /// refused with 413 before any work. /tokenize counts 4 per token, checked before
    /// its answer is built. Default 2^24 (64 MiB of floats).
    #[arg(long, default_value_t = 1 << 24, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_output_numbers: u64,
    /// Longest input in characters (422 beyond).
    #[arg(long, default_value_t = 100_000)]
    pub max_input_chars: usize,
    /// Seconds a request may take: 408 if its body has not arrived by then, 504 if its
    /// answer is not ready.
    #[arg(long, default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Seconds a connection may stay silent (before its first request too), or go without
    /// a request in flight (headers trickled a byte at a time count as none), before it
    /// is closed.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout_secs: u64,
    /// Connections open at once at most; one more is answered 503 and closed.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// Seconds to wait at shutdown for requests in flight; then the server exits anyway.
    #[arg(long, default_value_t = 20)]
    pub shutdown_timeout_secs: u64,
}

/// `--core-sharing` (the server's `CoreSharing`, which knows nothing of clap).
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum CoreSharingArg {
    SideBySide,
    Together,
}

/// `--models-config`'s file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelsConfig {
    models: Vec<ModelEntry>,
}

/// One model of `--models-config`: its name, files and the options that differ from
/// the flags'.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelEntry {
    name: String,
    path: Option<PathBuf>,
    threads: Option<usize>,
    parallel: Option<usize>,
    precision: Option<embedkit::Precision>,
    device: Option<embedkit::Device>,
    batch_size: Option<usize>,
    max_batch_tokens: Option<usize>,
    default_prompt_name: Option<String>,
    default_prompt: Option<String>,
}

/// `--default-prompt-name` or `--default-prompt` (or an entry's own), if any.
fn default_prompt(
    name: &Option<String>,
    text: &Option<String>,
) -> anyhow::Result<Option<DefaultPrompt>> {
    match (name, text) {
        (Some(_), Some(_)) => {
            anyhow::bail!("default_prompt_name and default_prompt: give one or the other")
        }
        (Some(n), None) => Ok(Some(DefaultPrompt::Name(n.clone()))),
        (None, Some(t)) => Ok(Some(DefaultPrompt::Text(t.clone()))),
        (None, None) => Ok(None),
    }
}

/// Whether a model embeds texts (where a default prompt applies; not rerankers' pairs).
fn embeds_texts(model: &Served) -> bool {
    use embedkit::Capability as C;
    [
        C::DenseText,
        C::SparseText,
        C::MultiVectorText,
        C::TokenVectors,
    ]
    .iter()
    .any(|&c| model.model.can(c))
}

impl ModelEntry {
    /// `load` (the flags') with this entry's options over it.
    fn apply(&self, mut load: LoadOptions) -> LoadOptions {
        load.cache.specific_model_path = self.path.clone();
        if self.threads.is_some() {
            load.runtime.threads = self.threads;
        }
        if self.parallel.is_some() {
            load.runtime.parallel = self.parallel;
        }
        if let Some(p) = self.precision {
            load.runtime.precision = p;
        }
        if let Some(d) = self.device {
            load.runtime.device = d;
        }
        if self.batch_size.is_some() {
            load.batch_size = self.batch_size;
        }
        if let Some(n) = self.max_batch_tokens {
            load.max_batch_tokens = n;
        }
        load
    }
}

fn read_models_config(path: &std::path::Path) -> anyhow::Result<Vec<ModelEntry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --models-config {}", path.display()))?;
    let config: ModelsConfig = serde_json::from_str(&text)
        .with_context(|| format!("--models-config {}", path.display()))?;
    Ok(config.models)
}

/// `NAME[=DIR]`.
fn split_model(spec: &str) -> (String, Option<PathBuf>) {
    match spec.split_once('=') {
        Some((name, dir)) => (name.to_string(), Some(PathBuf::from(dir))),
        None => (spec.to_string(), None),
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    args.load.validate()?;
    let mut specs: Vec<(String, Option<PathBuf>)> =
        args.models.iter().map(|s| split_model(s)).collect();
    if specs.is_empty() && args.models_config.is_none() {
        specs.push(("BAAI/bge-small-en-v1.5".into(), None));
    }
    // --model-path is the folder of the first model given without one.
    if let Some(dir) = &args.load.cache.specific_model_path {
        if let Some(spec) = specs.iter_mut().find(|s| s.1.is_none()) {
            spec.1 = Some(dir.clone());
        }
    }
    if let Some(name) = &args.sparse_model {
        specs.push((name.clone(), args.sparse_model_path.clone()));
    }
    if let Some(name) = &args.rerank_model {
        specs.push((name.clone(), args.rerank_model_path.clone()));
    }
    let mut entries: Vec<ModelEntry> = specs
        .into_iter()
        .map(|(name, path)| ModelEntry {
            name,
            path,
            ..ModelEntry::default()
        })
        .collect();
    if let Some(file) = &args.models_config {
        entries.extend(read_models_config(file)?);
    }
    let flag_prompt = default_prompt(&args.default_prompt_name, &args.default_prompt)?;
    let mut served = Vec::new();
    for entry in &entries {
        let load = entry.apply(args.load.clone());
        load.validate()
            .with_context(|| format!("options of model {}", entry.name))?;
        let (threads, precision) = (load.runtime.threads, load.runtime.precision);
        let mut model = Served::load(&entry.name, load)
            .with_context(|| format!("loading model {}", entry.name))?;
        let own = default_prompt(&entry.default_prompt_name, &entry.default_prompt)
            .with_context(|| format!("options of model {}", entry.name))?;
        let prompt = own.or_else(|| flag_prompt.clone().filter(|_| embeds_texts(&model)));
        if let Some(prompt) = prompt {
            model = model
                .with_default_prompt(prompt)
                .with_context(|| format!("model {}", entry.name))?;
        }
        tracing::info!(model = %model.name, kind = ?model.kind(), ?threads, ?precision, "loaded");
        served.push(model);
    }
    let models = Models::new(served)?;
    let config = Config {
        limits: Limits {
            max_body_bytes: args.max_body_bytes,
            max_inputs: args.max_inputs.max(1),
            max_input_chars: args.max_input_chars.max(1),
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            max_concurrent_requests: args.max_concurrent_requests.max(1),
            max_output_numbers: usize::try_from(args.max_output_numbers).unwrap_or(usize::MAX),
        },
        policy: BatchPolicy {
            queue_size: args.queue_size.max(1),
            max_batch_texts: args.max_batch_texts.max(1),
            max_batch_tokens: args.max_gather_tokens.max(1),
            max_wait: Duration::from_millis(args.max_wait_ms),
            time_slice: Duration::from_millis(args.time_slice_ms),
            core_sharing: match args.core_sharing {
                CoreSharingArg::SideBySide => server::CoreSharing::SideBySide,
                CoreSharingArg::Together => server::CoreSharing::Together,
            },
            workers: args
                .workers
                .and_then(|n| usize::try_from(n).ok())
                .or(args.load.runtime.threads)
                .unwrap_or(0),
            // The fault tests' hook (an input that panics inference); unset in use.
            panic_on_input: std::env::var("EMBEDKIT_FAULT_PANIC_ON_INPUT").ok(),
        },
        security: Security {
            api_key: args.api_key.filter(|k| !k.is_empty()),
            loopback_only: false,
            allowed_hosts: args.allow_host,
        },
        transport: Transport {
            idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout_secs),
            http2: args.http2,
            max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        },
    };
    let addr = SocketAddr::new(args.host, args.port);
    server::run(addr, models, config)?;
    Ok(())
}
