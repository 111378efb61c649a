//! BGE-M3's one pass for three outputs against three passes, in one process: the
//! capability handle's `embed_all` (dense, sparse and token vectors from one forward
//! pass) against `embed_dense`, `embed_sparse` and `embed_multi` one after another, on the
//! same texts, rounds alternating; prints the median seconds of each and the ratio with
//! the CPU. `make bench-m3` runs it on the seeded model of BGE-M3's width.
//!
//! usage: m3_passes MODEL_DIR TEXTS_FILE [ROUNDS] [MODEL]

use std::time::Instant;

use embedkit::{CallOptions, Capability, EmbeddingModel, LoadOptions, Operations};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(file)) = (args.get(1), args.get(2)) else {
        return Err("usage: m3_passes MODEL_DIR TEXTS_FILE [ROUNDS] [MODEL]".into());
    };
    let rounds: usize = args.get(3).map_or(Ok(5), |r| r.parse())?;
    let name = args.get(4).map_or("BAAI/bge-m3", String::as_str);
    let texts: Vec<String> = std::fs::read_to_string(file)?
        .lines()
        .map(str::to_string)
        .collect();
    let mut load = LoadOptions::default();
    load.cache.specific_model_path = Some(dir.into());
    let model = EmbeddingModel::load(name, load)?;
    let o = CallOptions::new();
    let all = [
        Capability::DenseText,
        Capability::SparseText,
        Capability::MultiVectorText,
    ];
    // One warm-up of each, then alternate.
    model.embed_all(&texts[..texts.len().min(16)], &all, &o)?;
    let (mut one, mut three) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let out = model.embed_all(&texts, &all, &o)?;
        one.push(t.elapsed().as_secs_f64());
        assert_eq!(out.dense.map(|d| d.len()), Some(texts.len()));
        let t = Instant::now();
        model.embed_dense(&texts, &o)?;
        model.embed_sparse(&texts, &o)?;
        model.embed_multi(&texts, &o)?;
        three.push(t.elapsed().as_secs_f64());
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let (one, three) = (median(one), median(three));
    println!(
        "{{\"cpu\": {cpu:?}, \"model\": {name:?}, \"texts\": {}, \"rounds\": {rounds}, \
         \"one_pass_s\": {one:.3}, \"three_passes_s\": {three:.3}, \"three_over_one\": {:.2}}}",
        texts.len(),
        three / one
    );
    Ok(())
}
