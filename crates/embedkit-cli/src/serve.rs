//! `embedkit serve`: the embedding server (OpenAI and TEI routes) over one dense model,
//! and optionally a sparse model and a reranker.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use embedkit::{SparseTextEmbedding, TextCrossEncoder, TextEmbedding};
use embedkit_server::{self as server, BatchPolicy, Limits, Models};

use crate::ModelArgs;

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Also serve this sparse model at /embed_sparse.
    #[arg(long, value_name = "NAME")]
    pub sparse_model: Option<String>,
    /// Files of the sparse model.
    #[arg(long, value_name = "DIR")]
    pub sparse_model_path: Option<std::path::PathBuf>,
    /// Also serve this reranker at /rerank.
    #[arg(long, value_name = "NAME")]
    pub rerank_model: Option<String>,
    /// Files of the reranker.
    #[arg(long, value_name = "DIR")]
    pub rerank_model_path: Option<std::path::PathBuf>,
    /// Requests waiting at most; beyond, 503 with Retry-After.
    #[arg(long, default_value_t = 256)]
    pub queue_size: usize,
    /// Texts per inference call, gathered across requests.
    #[arg(long, default_value_t = 256)]
    pub max_batch_texts: usize,
    /// How long a request waits for others to share its batch, in milliseconds.
    #[arg(long, default_value_t = 2)]
    pub max_wait_ms: u64,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most inputs per request (422 beyond).
    #[arg(long, default_value_t = 512)]
    pub max_inputs: usize,
    /// Longest input in characters (422 beyond).
    #[arg(long, default_value_t = 100_000)]
    pub max_input_chars: usize,
    /// Seconds a request may take, body upload included (408/504 beyond).
    #[arg(long, default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Seconds a connection may stay idle, or take to send a request's headers, before
    /// it is closed.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout_secs: u64,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let name = args.model.name("BAAI/bge-small-en-v1.5");
    let load = args.model.load_options()?;
    let dense = TextEmbedding::builder(name)
        .load_options(load.clone())
        .build()
        .with_context(|| format!("loading model {name}"))?;
    let sparse = match &args.sparse_model {
        Some(n) => {
            let mut l = load.clone();
            l.cache.specific_model_path = args.sparse_model_path.clone();
            Some(
                SparseTextEmbedding::builder(n)
                    .load_options(l)
                    .build()
                    .with_context(|| format!("loading sparse model {n}"))?,
            )
        }
        None => None,
    };
    let rerank = match &args.rerank_model {
        Some(n) => {
            let mut l = load.clone();
            l.cache.specific_model_path = args.rerank_model_path.clone();
            l.batch_size = None;
            Some(
                TextCrossEncoder::builder(n)
                    .load_options(l)
                    .build()
                    .with_context(|| format!("loading reranker {n}"))?,
            )
        }
        None => None,
    };
    let limits = Limits {
        max_body_bytes: args.max_body_bytes,
        max_inputs: args.max_inputs.max(1),
        max_input_chars: args.max_input_chars.max(1),
        request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs.max(1)),
    };
    let policy = BatchPolicy {
        queue_size: args.queue_size.max(1),
        max_batch_texts: args.max_batch_texts.max(1),
        max_wait: Duration::from_millis(args.max_wait_ms),
    };
    let addr = SocketAddr::new(args.host, args.port);
    server::run(
        addr,
        Models {
            dense,
            sparse,
            rerank,
        },
        limits,
        policy,
    )?;
    Ok(())
}
