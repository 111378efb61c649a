//! `embedkit download` and `embedkit cache list|remove`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use embedkit::{hub, registry, text};

#[derive(Args, Debug)]
pub struct DownloadArgs {
    /// Model name from the registry (`embedkit models`).
    pub model: String,
    /// Cache folder (default: $FASTEMBED_CACHE_PATH or <tmp>/fastembed_cache).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
    /// Cache folder (default: $FASTEMBED_CACHE_PATH or <tmp>/fastembed_cache).
    #[arg(long, value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// List the models in the cache.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a model's files from the cache.
    Remove {
        /// Model name from the registry.
        model: String,
    },
}

/// A registry entry of any family.
enum Described {
    Dense(registry::DenseModelDescription),
    Sparse(registry::SparseModelDescription),
    Late(registry::LateInteractionModelDescription),
    Rerank(registry::RerankerModelDescription),
    Image(registry::ImageModelDescription),
}

impl Described {
    fn find(name: &str) -> anyhow::Result<Described> {
        match registry::dense_model(name) {
            Ok(d) => Ok(Described::Dense(d)),
            Err(dense_err) => registry::sparse_model(name)
                .map(Described::Sparse)
                .or_else(|_| registry::late_interaction_model(name).map(Described::Late))
                .or_else(|_| registry::reranker_model(name).map(Described::Rerank))
                .or_else(|_| registry::image_model(name).map(Described::Image))
                .map_err(|_| dense_err.into()),
        }
    }

    fn files(&self) -> hub::ModelFiles<'_> {
        match self {
            Described::Dense(d) => text::model_files(d),
            Described::Sparse(d) => embedkit::sparse::model_files(d),
            Described::Late(d) => embedkit::late_interaction::model_files(d),
            Described::Rerank(d) => embedkit::rerank::model_files(d),
            Described::Image(d) => embedkit::image::model_files(d),
        }
    }

    fn name(&self) -> &str {
        match self {
            Described::Dense(d) => &d.model,
            Described::Sparse(d) => &d.model,
            Described::Late(d) => &d.model,
            Described::Rerank(d) => &d.model,
            Described::Image(d) => &d.model,
        }
    }
}

fn cache_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(hub::default_cache_dir)
}

pub fn download(args: DownloadArgs) -> anyhow::Result<()> {
    let described = Described::find(&args.model)?;
    let cache = hub::CacheOptions {
        cache_dir: args.cache_dir,
        ..Default::default()
    };
    let dir = hub::resolve_model_dir(&described.files(), &cache)?;
    println!("{}", dir.display());
    Ok(())
}

pub fn run(args: CacheArgs) -> anyhow::Result<()> {
    let dir = cache_dir(args.cache_dir);
    match args.command {
        CacheCommand::List { json } => {
            let models = hub::list_cache(&dir)?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &models)?;
                writeln!(out)?;
                return Ok(());
            }
            writeln!(out, "cache: {}", dir.display())?;
            if models.is_empty() {
                writeln!(out, "(empty)")?;
            }
            for m in models {
                writeln!(
                    out,
                    "{:<60} {:>10.1} MB  {}",
                    m.name,
                    m.size as f64 / 1e6,
                    m.snapshots.join(",")
                )?;
            }
            Ok(())
        }
        CacheCommand::Remove { model } => {
            let described = Described::find(&model)?;
            let removed = hub::remove_cached(&described.files(), &dir)?;
            if removed.is_empty() {
                anyhow::bail!("{} is not in the cache {}", described.name(), dir.display());
            }
            for p in removed {
                eprintln!("removed {}", p.display());
            }
            Ok(())
        }
    }
}
