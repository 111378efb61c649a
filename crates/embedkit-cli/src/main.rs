//! The `embedkit` command: a thin shell over the library's public API.

mod cache;
mod corpus;
mod docs;
mod embed;
mod embed_image;
mod env;
mod hybrid;
mod input;
mod job;
mod late;
mod models;
mod output;
mod rerank;
mod search;
mod serve;
mod sparse;
mod vectors;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use embedkit::{CallOptions, Capability, EmbeddingModel, LoadOptions, TruncationSide};

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
    /// Dense, sparse and token vectors of each document from one pass (BGE-M3), as one
    /// record: `embedding`, `indices`/`values`, `embeddings`.
    Hybrid(Box<hybrid::HybridArgs>),
    /// Score documents (one per line) against a query with a cross-encoder, as JSON Lines
    /// {"index", "score"}.
    Rerank(Box<rerank::RerankArgs>),
    /// Rank documents (one per line) for a query with a dense model: the best first, with
    /// their cosine similarity.
    Search(Box<search::SearchArgs>),
    /// Serve embeddings over HTTP (OpenAI /v1/embeddings and TEI routes).
    Serve(Box<serve::ServeArgs>),
    /// List the supported models.
    Models(models::ModelsArgs),
    /// Download a model into the cache.
    Download(cache::DownloadArgs),
    /// Inspect or clean the model cache.
    Cache(cache::CacheArgs),
    /// What a bug report needs: versions, the ONNX Runtime library and its providers, CPU
    /// features, a visible GPU, the cache.
    Env(env::EnvArgs),
    /// Print a completion script for a shell (e.g. `embedkit completions bash >
    /// ~/.local/share/bash-completion/completions/embedkit`).
    Completions(docs::CompletionsArgs),
    /// Print the man page (or write one per command with --dir).
    Man(docs::ManArgs),
}

/// Options every model-loading command shares: the model's name, then the library's
/// loading options (declared once, in `embedkit::LoadOptions`).
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model name from the registry (`embedkit models`); default BAAI/bge-small-en-v1.5
    /// for `embed` (as fastembed), prithivida/Splade_PP_en_v1 for `sparse`,
    /// colbert-ir/colbertv2.0 for `late`, Xenova/ms-marco-MiniLM-L-6-v2 for `rerank`,
    /// Qdrant/clip-ViT-B-32-vision for `embed-image`, BAAI/bge-m3 for `hybrid`.
    #[arg(long, short)]
    pub model: Option<String>,
    #[command(flatten)]
    pub load: LoadOptions,
}

impl ModelArgs {
    /// The model name, or the command's default.
    pub fn name<'a>(&'a self, default: &'a str) -> &'a str {
        self.model.as_deref().unwrap_or(default)
    }

    /// The library's loading options, checked.
    pub fn load_options(&self) -> anyhow::Result<LoadOptions> {
        self.load.validate()?;
        Ok(self.load.clone())
    }

    /// Loads the model (or the command's `default`) as the registry says it is, with the
    /// family's `settings`; it must offer `wanted`, which is checked before its graph is
    /// loaded. Every command that computes goes through here, so a new family is usable
    /// by every command its capabilities fit.
    pub fn load(
        &self,
        default: &str,
        settings: serde_json::Value,
        wanted: Capability,
    ) -> anyhow::Result<EmbeddingModel> {
        self.load_all(default, settings, &[wanted])
    }

    /// As [`load`](Self::load), for a model that must offer every capability in `wanted`.
    pub fn load_all(
        &self,
        default: &str,
        settings: serde_json::Value,
        wanted: &[Capability],
    ) -> anyhow::Result<EmbeddingModel> {
        let name = self.name(default);
        EmbeddingModel::load_offering(name, self.load_options()?, &settings, wanted)
            .with_context(|| format!("loading model {name}"))
    }
}

/// Where the text commands cut texts longer than the model takes.
#[derive(Args, Debug, Clone, Default)]
pub struct CutArgs {
    /// Cut over-long texts at the left (keep their end) or at the right (keep their
    /// start) [default: where the model's tokenizer configuration says: the right for
    /// almost every model].
    #[arg(long, value_enum, value_name = "SIDE")]
    pub truncation_side: Option<Side>,
}

/// [`CutArgs`], and whether texts are cut at all (for the commands that embed texts:
/// pairs are always cut).
#[derive(Args, Debug, Clone, Default)]
pub struct TextCutArgs {
    #[command(flatten)]
    pub cut: CutArgs,
    /// Fail on a text longer than the model takes, naming its position, instead of
    /// cutting it.
    #[arg(long)]
    pub no_truncate: bool,
}

impl TextCutArgs {
    /// `call` with this truncation side, truncating or not.
    pub fn apply(&self, call: CallOptions) -> CallOptions {
        self.cut.apply(call).truncate(!self.no_truncate)
    }
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum Side {
    Left,
    Right,
}

impl CutArgs {
    /// `call` with this truncation side.
    pub fn apply(&self, call: CallOptions) -> CallOptions {
        call.truncation(self.truncation_side.map(|s| match s {
            Side::Left => TruncationSide::Left,
            Side::Right => TruncationSide::Right,
        }))
    }
}

/// What every corpus job takes: the model, where documents come from and results go,
/// and how the input is read (ids, bad rows, `--resume`).
#[derive(Args, Debug, Clone)]
pub struct JobArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub io: IoArgs,
    #[command(flatten)]
    pub corpus: corpus::CorpusArgs,
}

/// The dense family's settings for `--add-prefix`.
pub fn prefix_settings(add_prefix: bool) -> serde_json::Value {
    if add_prefix {
        serde_json::json!({ "add_prefixes": true })
    } else {
        serde_json::Value::Null
    }
}

/// Where documents come from and results go, for the commands that embed.
#[derive(Args, Debug, Clone)]
pub struct IoArgs {
    /// Read documents from FILE, one per line (default: stdin).
    #[arg(long, short, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write results to FILE (default: stdout), JSON Lines, or by extension .parquet or
    /// .npy (dense vectors; ids beside it in NAME.ids.jsonl); it appears only when complete.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The output's format [default: by extension: .parquet, .npy; else JSON Lines].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub output_format: Option<vectors::OutputFormat>,
    /// No progress display and no summary line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Documents to embed; when given, stdin and --input are not read.
    pub texts: Vec<String>,
}

impl IoArgs {
    pub fn output_format(&self) -> vectors::OutputFormat {
        vectors::OutputFormat::of(self.output.as_deref(), self.output_format)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Serve(_)));
    let result = match cli.command {
        Command::Embed(args) => embed::run(*args),
        Command::EmbedImage(args) => embed_image::run(*args),
        Command::Sparse(args) => sparse::run(*args),
        Command::Late(args) => late::run(*args),
        Command::Hybrid(args) => hybrid::run(*args),
        Command::Rerank(args) => rerank::run(*args),
        Command::Search(args) => search::run(*args),
        Command::Serve(args) => serve::run(*args),
        Command::Models(args) => models::run(args),
        Command::Download(args) => cache::download(args),
        Command::Cache(args) => cache::run(args),
        Command::Env(args) => env::run(args),
        Command::Completions(args) => docs::completions::<Cli>(args),
        Command::Man(args) => docs::man::<Cli>(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The job said what it kept and how to go on.
        Err(e) if e.downcast_ref::<job::Interrupted>().is_some() => ExitCode::from(130),
        Err(e) => {
            eprintln!("embedkit: error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The exit status of a failure, by the library error's kind (the one place kinds become
/// statuses): 2 for what the caller can fix in the command or its input (as clap's usage
/// errors), 3 for model files that could not be had, 1 for anything else.
fn exit_code(e: &anyhow::Error) -> u8 {
    use embedkit::ErrorKind as K;
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<embedkit::Error>())
        .map(embedkit::Error::kind);
    match kind {
        Some(K::InvalidInput | K::UnknownModel | K::Unsupported) => 2,
        Some(K::Unavailable) => 3,
        _ => 1,
    }
}

fn init_logging(serving: bool) {
    // A server logs each request (and what it loaded) by default, as TEI does.
    let default = if serving {
        "warn,embedkit_server=info,embedkit::serve=info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("EMBEDKIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colors only on a terminal: escape codes in log files and pipes are noise.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
