//! One benchmark run of embedkit, driven by `scripts/bench/run.py`: load a model, embed
//! one workload, print one JSON line of timings. The same protocol is spoken by the
//! fastembed (Python) and fastembed-rs runners, so the driver treats all alike.
//!
//! Workloads: `docs` embeds every line of the input (timed as a whole); `queries`
//! embeds each line alone and records each call's latency; `cold` embeds the first
//! line right after loading and reports at once (the driver times process start to
//! that report).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use embedkit::TextEmbedding;

#[derive(Parser)]
struct Args {
    /// Folder with model.onnx (or model_optimized.onnx) and the tokenizer files.
    #[arg(long)]
    model_dir: PathBuf,
    /// Registry entry describing the files (pooling, normalization).
    #[arg(long, default_value = "sentence-transformers/all-MiniLM-L6-v2")]
    model: String,
    #[arg(long, value_parser = ["docs", "queries", "cold"])]
    workload: String,
    /// One text per line.
    #[arg(long)]
    input: PathBuf,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Texts per batch; the library's default when absent.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Sessions run in parallel; the library's default when absent.
    #[arg(long)]
    parallel: Option<usize>,
    /// Padded tokens per batch; the library's default when absent.
    #[arg(long)]
    max_batch_tokens: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let text = std::fs::read_to_string(&args.input)
        .with_context(|| format!("reading {}", args.input.display()))?;
    let docs: Vec<&str> = text.lines().collect();
    if docs.is_empty() {
        bail!("{} has no lines", args.input.display());
    }
    let mut builder = TextEmbedding::builder(&args.model)
        .specific_model_path(&args.model_dir)
        .threads(args.threads);
    if let Some(n) = args.batch_size {
        builder = builder.batch_size(n);
    }
    if let Some(n) = args.parallel {
        builder = builder.parallel(n);
    }
    if let Some(n) = args.max_batch_tokens {
        builder = builder.max_batch_tokens(n);
    }
    let model = builder.build()?;
    let load_s = started.elapsed().as_secs_f64();
    let mut report = serde_json::json!({ "load_s": load_s, "docs": docs.len() });
    match args.workload.as_str() {
        "cold" => {
            let v = model.embed(&docs[..1], None)?;
            report["checksum"] = v[0].iter().map(|x| f64::from(*x)).sum::<f64>().into();
        }
        "queries" => {
            let mut latencies = Vec::with_capacity(docs.len());
            for q in &docs {
                let t = Instant::now();
                let v = model.embed(&[q], None)?;
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
                std::hint::black_box(v);
            }
            report["latencies_ms"] = latencies.into();
        }
        _ => {
            let t = Instant::now();
            let mut n = 0usize;
            let mut checksum = 0f64;
            for v in model.embed_iter(docs.iter().copied(), None) {
                let v = v?;
                checksum += v.iter().map(|x| f64::from(*x)).sum::<f64>();
                n += 1;
            }
            report["embed_s"] = t.elapsed().as_secs_f64().into();
            if n != docs.len() {
                bail!("{n} vectors for {} texts", docs.len());
            }
            report["checksum"] = checksum.into();
            let t = Instant::now();
            report["tokens"] = model.token_count(&docs)?.into();
            report["tokenize_s"] = t.elapsed().as_secs_f64().into();
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{report}")?;
    out.flush()?;
    Ok(())
}
