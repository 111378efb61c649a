//! `embedkit env`: what a bug report needs — versions, the runtime library and where it
//! came from, its providers, the CPU features inference speed depends on, a visible GPU,
//! and the cache. Never fails on the broken part: a runtime that does not load is
//! reported as such, with the rest.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use embedkit::unstable::{hub, runtime};
use serde_json::{json, Value};

#[derive(Args, Debug)]
pub struct EnvArgs {
    /// Cache folder to report (default: $FASTEMBED_CACHE_PATH or <tmp>/fastembed_cache).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The CPU features ONNX Runtime's kernels choose between (int8 matmuls use VNNI or AMX).
const FEATURES: [&str; 6] = [
    "avx2",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "amx_int8",
    "amx_bf16",
];

pub fn run(args: EnvArgs) -> anyhow::Result<()> {
    let report = report(args.cache_dir);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        write_text(&mut out, &report)?;
    }
    Ok(())
}

fn report(cache_dir: Option<PathBuf>) -> Value {
    let runtime = match runtime::runtime_info(None) {
        Ok(info) => json!({
            "version": info.version,
            "library": info.library,
            "found_by": info.source,
            "build": info.build,
            "providers": info.providers,
        }),
        Err(e) => json!({ "error": e.to_string() }),
    };
    let cache = cache_dir.unwrap_or_else(hub::default_cache_dir);
    let cache_report = match hub::list_cache(&cache) {
        Ok(models) => json!({
            "path": cache,
            "models": models.len(),
            "bytes": models.iter().map(|m| m.size).sum::<u64>(),
        }),
        Err(e) => json!({ "path": cache, "error": e.to_string() }),
    };
    let (model, flags) = cpu();
    json!({
        "embedkit": env!("CARGO_PKG_VERSION"),
        "onnxruntime_expected": runtime::ORT_VERSION,
        "runtime": runtime,
        "os": format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        "cpu": {
            "model": model,
            "logical_cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "features": FEATURES.iter().map(|f| (f.to_string(), json!(flags.contains(&f.to_string())))).collect::<serde_json::Map<_, _>>(),
        },
        "gpu_visible": runtime::gpu_present(),
        "cache": cache_report,
        "embedkit_home": runtime::embedkit_home(),
    })
}

/// The CPU's name and the feature flags the kernel reports as usable (Linux lists AMX
/// only when the OS enabled its registers); elsewhere, what the CPU itself reports.
fn cpu() -> (String, Vec<String>) {
    if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") {
        let field = |name: &str| {
            info.lines()
                .find(|l| l.split(':').next().map(str::trim) == Some(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let flags = field("flags")
            .map(|f| f.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        return (field("model name").unwrap_or_default(), flags);
    }
    let mut flags = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        for (name, on) in [
            ("avx2", std::is_x86_feature_detected!("avx2")),
            ("avx512f", std::is_x86_feature_detected!("avx512f")),
            ("avx512_vnni", std::is_x86_feature_detected!("avx512vnni")),
        ] {
            if on {
                flags.push(name.to_string());
            }
        }
    }
    (String::new(), flags)
}

fn write_text(out: &mut impl Write, r: &Value) -> std::io::Result<()> {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    writeln!(out, "embedkit      {}", s(&r["embedkit"]))?;
    let rt = &r["runtime"];
    if rt.get("error").is_some() {
        writeln!(out, "onnxruntime   not loaded: {}", s(&rt["error"]))?;
    } else {
        writeln!(out, "onnxruntime   {}", s(&rt["version"]))?;
        writeln!(out, "  build       {}", s(&rt["build"]))?;
        writeln!(
            out,
            "  library     {} (found by: {})",
            s(&rt["library"]),
            s(&rt["found_by"])
        )?;
        let providers: Vec<String> = rt["providers"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        writeln!(out, "  providers   {}", providers.join(", "))?;
    }
    writeln!(out, "os            {}", s(&r["os"]))?;
    let cpu = &r["cpu"];
    writeln!(
        out,
        "cpu           {} ({} logical cores)",
        s(&cpu["model"]),
        s(&cpu["logical_cores"])
    )?;
    let features: Vec<String> = FEATURES
        .iter()
        .map(|f| {
            let on = cpu["features"][*f].as_bool().unwrap_or(false);
            format!("{f} {}", if on { "yes" } else { "no" })
        })
        .collect();
    writeln!(out, "  features    {}", features.join(", "))?;
    let gpu = r["gpu_visible"].as_bool().unwrap_or(false);
    writeln!(
        out,
        "gpu           {}",
        if gpu {
            "an NVIDIA GPU is visible"
        } else {
            "none visible"
        }
    )?;
    let cache = &r["cache"];
    if cache.get("error").is_some() {
        writeln!(
            out,
            "cache         {} ({})",
            s(&cache["path"]),
            s(&cache["error"])
        )?;
    } else {
        let mb = cache["bytes"].as_u64().unwrap_or(0) as f64 / 1e6;
        let n = cache["models"].as_u64().unwrap_or(0);
        let noun = if n == 1 { "model" } else { "models" };
        writeln!(
            out,
            "cache         {} ({n} {noun}, {mb:.1} MB)",
            s(&cache["path"])
        )?;
    }
    writeln!(out, "embedkit home {}", s(&r["embedkit_home"]))
}
