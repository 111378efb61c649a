//! `embedkit download` and `embedkit cache list|remove`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use embedkit::registry;
use embedkit::unstable::hub;

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
    let files = registry::files_of(&args.model)?;
    let cache = hub::CacheOptions {
        cache_dir: args.cache_dir,
        ..Default::default()
    };
    let dir = hub::resolve_model_dir(&files, &cache)?;
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
            let files = registry::files_of(&model)?;
            let removed = hub::remove_cached(&files, &dir)?;
            if removed.is_empty() {
                anyhow::bail!("{} is not in the cache {}", files.model, dir.display());
            }
            for p in removed {
                eprintln!("removed {}", p.display());
            }
            Ok(())
        }
    }
}
