//! The GPU build of ONNX Runtime (the `onnxruntime-gpu` wheel's library, fetched by
//! `make setup-gpu-runtime`) on this machine. Without a GPU: `auto` runs on the CPU with
//! the same vectors as the CPU build, and `cuda` in any spelling is an error that says
//! what is missing. With an NVIDIA GPU and the CUDA libraries (`make setup-gpu`): `cuda`
//! gives the CPU build's vectors within 1e-4.

use crate::common;

use std::path::{Path, PathBuf};

use common::repo_root;
use std::process::{Command, Output};

fn gpu_library() -> PathBuf {
    let lib = embedkit::unstable::runtime::embedkit_home().join("runtime-gpu/libonnxruntime.so");
    assert!(
        lib.is_file(),
        "{} is missing: run `make setup-gpu-runtime` (scripts/setup_gpu.sh --runtime-only)",
        lib.display()
    );
    lib
}

/// `embedkit embed` of two texts with the seeded BGE model, with `library` (None: the
/// CPU build found as usual) and extra flags.
fn embed(library: Option<&Path>, flags: &[&str]) -> Output {
    let dir = repo_root().join("target/test-models/cls-384");
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_embedkit"));
    cmd.args(["embed", "--model", "BAAI/bge-small-en-v1.5", "--model-path"])
        .arg(&dir)
        .args(flags)
        .args(["hello world", "GPUs and CPUs give the same vectors"])
        .env("EMBEDKIT_LOG", "embedkit=info");
    match library {
        Some(lib) => cmd.env("ORT_DYLIB_PATH", lib),
        None => cmd.env_remove("ORT_DYLIB_PATH"),
    };
    cmd.output().unwrap()
}

fn vectors(out: &Output) -> Vec<Vec<f32>> {
    assert!(
        out.status.success(),
        "embedkit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::from_value(v["embedding"].clone()).unwrap()
        })
        .collect()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn the_gpu_build_follows_the_device_rule() {
    let gpu_lib = gpu_library();
    let cpu = vectors(&embed(None, &["--device", "cpu"]));
    if embedkit::unstable::runtime::gpu_present() {
        // A machine with a GPU: the CUDA path itself, against the CPU build.
        let on_gpu = vectors(&embed(Some(&gpu_lib), &["--device", "cuda"]));
        assert!(max_diff(&cpu, &on_gpu) < 1e-4);
        return;
    }
    // auto: the library has the CUDA provider, the machine has no GPU: the CPU, said so.
    let auto = embed(Some(&gpu_lib), &["--device", "auto"]);
    let log = String::from_utf8_lossy(&auto.stderr).to_string();
    assert!(
        log.contains("cuda_provider=true") && log.contains("using CPU"),
        "{log}"
    );
    assert!(max_diff(&cpu, &vectors(&auto)) < 1e-6);
    // cuda, as a device, a provider list or with device ids: an error naming the cause.
    for flags in [
        &["--device", "cuda"][..],
        &["--providers", "CUDAExecutionProvider,CPUExecutionProvider"],
        &["--device", "cuda", "--device-ids", "0,1"],
    ] {
        let out = embed(Some(&gpu_lib), flags);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} ran without a GPU");
        assert!(err.contains("no NVIDIA GPU is visible"), "{flags:?}: {err}");
    }
    // The CPU build has no CUDA provider: `cuda` says which library to use instead.
    let out = embed(None, &["--device", "cuda"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("onnxruntime-gpu"), "{err}");
}
