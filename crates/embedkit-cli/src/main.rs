//! The `embedkit` command: a thin shell over the library's public API.

mod cache;
mod embed;
mod embed_image;
mod input;
mod late;
mod models;
mod output;
mod rerank;
mod serve;
mod sparse;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use embedkit::options::LoadOptions;
use embedkit::{Device, Provider};

#[derive(Parser)]
#[command(
    name = "embedkit",
    version,
    about = "Embeddings with fastembed's models and vectors, from Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embed documents (one per line, or as arguments) into JSON Lines of vectors.
    Embed(Box<embed::EmbedArgs>),
    /// Embed image files into JSON Lines of vectors.
    EmbedImage(Box<embed_image::EmbedImageArgs>),
    /// Sparse vectors (SPLADE, BM25, BM42, MiniCOIL) of documents, as JSON Lines of indices
    /// and values.
    Sparse(Box<sparse::SparseArgs>),
    /// Token-vector matrices (ColBERT family) of documents or queries, or their MUVERA
    /// encodings, as JSON Lines.
    Late(Box<late::LateArgs>),
    /// Score documents (one per line) against a query with a cross-encoder, as JSON Lines
    /// {"index", "score"}.
    Rerank(Box<rerank::RerankArgs>),
    /// Serve embeddings over HTTP (OpenAI /v1/embeddings and TEI routes).
    Serve(Box<serve::ServeArgs>),
    /// List the supported models.
    Models(models::ModelsArgs),
    /// Download a model into the cache.
    Download(cache::DownloadArgs),
    /// Inspect or clean the model cache.
    Cache(cache::CacheArgs),
}

/// Options every model-loading command shares.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model name from the registry (`embedkit models`); default BAAI/bge-small-en-v1.5
    /// for `embed` (as fastembed), prithivida/Splade_PP_en_v1 for `sparse`,
    /// colbert-ir/colbertv2.0 for `late`, Xenova/ms-marco-MiniLM-L-6-v2 for `rerank`,
    /// Qdrant/clip-ViT-B-32-vision for `embed-image`.
    #[arg(long, short)]
    pub model: Option<String>,
    /// Load the model files from this folder; the description comes from --model.
    #[arg(long, value_name = "DIR")]
    pub model_path: Option<PathBuf>,
    /// Model cache folder (default: $FASTEMBED_CACHE_PATH or <tmp>/fastembed_cache).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Use cached files only, never the network.
    #[arg(long)]
    pub local_files_only: bool,
    /// ONNX Runtime threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Execution providers, comma-separated (e.g. CUDAExecutionProvider,CPUExecutionProvider);
    /// overrides --device.
    #[arg(long, value_delimiter = ',')]
    pub providers: Vec<String>,
    /// GPUs to run on, comma-separated (e.g. 0,1): one session on each, batches shared
    /// between them.
    #[arg(long, value_delimiter = ',')]
    pub device_ids: Vec<i32>,
    /// Sessions running batches side by side (default: by device and cores).
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Texts per batch (batches are also capped by tokens).
    #[arg(long, default_value_t = embedkit::options::DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
    /// Cap on texts × padded tokens per batch (bounds memory; small batches are fastest
    /// on CPUs).
    #[arg(long, default_value_t = embedkit::batching::DEFAULT_MAX_BATCH_TOKENS)]
    pub max_batch_tokens: usize,
}

impl ModelArgs {
    /// The library's loading options.
    pub fn load_options(&self) -> anyhow::Result<LoadOptions> {
        if self.batch_size == 0 {
            anyhow::bail!("--batch-size must be at least 1");
        }
        let mut load = LoadOptions::default();
        load.cache.specific_model_path = self.model_path.clone();
        load.cache.cache_dir = self.cache_dir.clone();
        load.cache.local_files_only = self.local_files_only;
        load.runtime.threads = self.threads;
        load.runtime.device = self.device.parse::<Device>()?;
        if !self.providers.is_empty() {
            load.runtime.providers = Some(
                self.providers
                    .iter()
                    .map(|p| p.parse::<Provider>())
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        if !self.device_ids.is_empty() {
            load.runtime.device_ids = Some(self.device_ids.clone());
        }
        load.runtime.parallel = self.parallel;
        load.batch_size = self.batch_size;
        load.max_batch_tokens = self.max_batch_tokens.max(1);
        Ok(load)
    }
}

/// Where documents come from and results go, for the commands that embed.
#[derive(Args, Debug, Clone)]
pub struct IoArgs {
    /// Read documents from FILE, one per line (default: stdin).
    #[arg(long, short, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write JSON Lines to FILE (default: stdout); the file appears only when complete.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Documents to embed; when given, stdin and --input are not read.
    pub texts: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Embed(args) => embed::run(*args),
        Command::EmbedImage(args) => embed_image::run(*args),
        Command::Sparse(args) => sparse::run(*args),
        Command::Late(args) => late::run(*args),
        Command::Rerank(args) => rerank::run(*args),
        Command::Serve(args) => serve::run(*args),
        Command::Models(args) => models::run(args),
        Command::Download(args) => cache::download(args),
        Command::Cache(args) => cache::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embedkit: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EMBEDKIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colors only on a terminal: escape codes in log files and pipes are noise.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
