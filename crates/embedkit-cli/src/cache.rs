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

fn cache_dir(arg: Option<PathBuf>) -> PathBuf {
    arg.unwrap_or_else(hub::default_cache_dir)
}

pub fn download(args: DownloadArgs) -> anyhow::Result<()> {
    let mut builder = embedkit::TextEmbedding::builder(&args.model).lazy_load(true);
    if let Some(dir) = &args.cache_dir {
        builder = builder.cache_dir(dir);
    }
    let model = builder.build()?;
    println!("{}", model.model_dir().display());
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
            let desc = registry::dense_model(&model)?;
            let removed = hub::remove_cached(&text::model_files(&desc), &dir)?;
            if removed.is_empty() {
                anyhow::bail!("{} is not in the cache {}", desc.model, dir.display());
            }
            for p in removed {
                eprintln!("removed {}", p.display());
            }
            Ok(())
        }
    }
}
