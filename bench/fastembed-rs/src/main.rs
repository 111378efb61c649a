//! One benchmark run of fastembed-rs 7.5.0, in the protocol of crates/embedkit-bench:
//! load the model files as a user-defined model, embed one workload, print one JSON
//! line. Arguments: --model-dir D --workload docs|queries|cold --input F
//! [--threads N] [--batch-size N] (fastembed-rs's default batch size is 256).
//! ONNX Runtime comes from ORT_DYLIB_PATH.

use std::time::Instant;

use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(arg(&args, "--model-dir").ok_or("--model-dir")?);
    let workload = arg(&args, "--workload").ok_or("--workload")?;
    let input = arg(&args, "--input").ok_or("--input")?;
    let threads: usize = arg(&args, "--threads").map_or(Ok(2), |t| t.parse())?;
    let batch_size: Option<usize> = arg(&args, "--batch-size").map(|b| b.parse()).transpose()?;

    let text = std::fs::read_to_string(&input)?;
    let docs: Vec<&str> = text.lines().collect();
    let read = |f: &str| std::fs::read(dir.join(f));
    let tokenizer = TokenizerFiles {
        tokenizer_file: read("tokenizer.json")?,
        config_file: read("config.json")?,
        special_tokens_map_file: read("special_tokens_map.json")?,
        tokenizer_config_file: read("tokenizer_config.json")?,
    };
    let model = UserDefinedEmbeddingModel::new(read("model.onnx")?, tokenizer)
        .with_pooling(Pooling::Mean);
    let options = InitOptionsUserDefined::new()
        .with_max_length(512)
        .with_intra_threads(threads);
    let mut model = TextEmbedding::try_new_from_user_defined(model, options)?;
    let mut report = serde_json::json!({
        "load_s": started.elapsed().as_secs_f64(),
        "docs": docs.len(),
    });
    match workload.as_str() {
        "cold" => {
            let v = model.embed(&docs[..1], None)?;
            report["checksum"] = v[0].iter().map(|x| f64::from(*x)).sum::<f64>().into();
        }
        "queries" => {
            let mut latencies = Vec::with_capacity(docs.len());
            for q in &docs {
                let t = Instant::now();
                let v = model.embed([q], None)?;
                latencies.push(t.elapsed().as_secs_f64() * 1e3);
                std::hint::black_box(v);
            }
            report["latencies_ms"] = latencies.into();
        }
        _ => {
            let t = Instant::now();
            let v = model.embed(&docs, batch_size)?;
            report["embed_s"] = t.elapsed().as_secs_f64().into();
            if v.len() != docs.len() {
                return Err(format!("{} vectors for {} texts", v.len(), docs.len()).into());
            }
            let checksum: f64 = v.iter().flatten().map(|x| f64::from(*x)).sum();
            report["checksum"] = checksum.into();
        }
    }
    println!("{report}");
    Ok(())
}
