//! Shared by the integration tests: where the test models and oracle outputs live.
#![allow(dead_code)]

pub mod hub_server;
pub mod m3;
pub mod tmp;
pub mod twin;
pub use tmp::TmpDir;

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The device the parity tests run on: `EMBEDKIT_TEST_DEVICE` (`make test-gpu` sets
/// `cuda`), else the CPU.
pub fn device() -> embedkit::Device {
    match std::env::var("EMBEDKIT_TEST_DEVICE") {
        Ok(d) if !d.is_empty() => d.parse().expect("EMBEDKIT_TEST_DEVICE: auto, cpu or cuda"),
        _ => embedkit::Device::Cpu,
    }
}

/// The parity tolerance on the test device: the oracle's on the CPU; on a GPU, where
/// kernels sum in other orders (and may use TF32), 1e-3.
pub fn tolerance(oracle: f32) -> f32 {
    match device() {
        embedkit::Device::Cpu => oracle,
        _ => oracle.max(1e-3),
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A model folder named as in cases.json (`shared:`, `setup:`, `tiny:`). A missing folder
/// fails the test with what to run: these tests never pass by skipping.
pub fn model_dir(symbolic: &str) -> PathBuf {
    let (kind, name) = symbolic.split_once(':').expect("kind:name");
    let root = match kind {
        "shared" => std::env::var("EMBEDKIT_SHARED_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join("../shared/models")),
        "setup" => embedkit::unstable::runtime::embedkit_home().join("models"),
        "tiny" => std::env::var("EMBEDKIT_TEST_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join("target/test-models")),
        other => panic!("unknown model root {other}"),
    };
    let dir = root.join(name);
    if !dir.is_dir() {
        let how = match kind {
            "shared" => "the shared models folder (../shared/models) must be present",
            "setup" => "run `make setup` (scripts/setup.sh) first",
            _ => "run `make test-models` (scripts/oracle/make_models.py) first",
        };
        panic!("test model folder {} is missing: {how}", dir.display());
    }
    dir
}

/// The model folder of an oracle case, after checking that its model file is the one
/// the oracle ran (`model_file`, `model_file_sha256`).
pub fn checked_model_dir(case: &serde_json::Value) -> PathBuf {
    let dir = model_dir(case["dir"].as_str().unwrap());
    let file = dir.join(case["model_file"].as_str().unwrap());
    assert_eq!(
        sha256_file(&file),
        case["model_file_sha256"].as_str().unwrap(),
        "{} is not the file the oracle ran; regenerate the test models or the expected outputs",
        file.display()
    );
    dir
}

pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{:x}", Sha256::digest(bytes))
}

pub fn cases() -> Value {
    let p = repo_root().join("tests/expected/cases.json");
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

pub fn inputs(kind: &str) -> Vec<String> {
    let data = repo_root().join("tests/data");
    match kind {
        "edge" => {
            serde_json::from_str(&std::fs::read_to_string(data.join("edge_inputs.json")).unwrap())
                .unwrap()
        }
        "corpus" => {
            let text = std::fs::read_to_string(data.join("corpus.txt")).unwrap();
            text.lines().map(str::to_string).collect()
        }
        "corpus40" => inputs("corpus").into_iter().take(40).collect(),
        // The edge inputs but the two long documents.
        "edge_short" => inputs("edge")
            .into_iter()
            .filter(|t| t.split_whitespace().count() < 100)
            .collect(),
        other => panic!("unknown input set {other}"),
    }
}

/// The oracle's vectors of a case.
pub fn expected(case: &Value) -> Vec<Vec<f32>> {
    let path = repo_root()
        .join("tests/expected")
        .join(case["data_file"].as_str().unwrap());
    let bytes = std::fs::read(&path).unwrap();
    let dim = case["shape"][1].as_u64().unwrap() as usize;
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(
        floats.len(),
        case["shape"][0].as_u64().unwrap() as usize * dim
    );
    floats.chunks(dim).map(<[f32]>::to_vec).collect()
}

/// The largest absolute difference, and where it is.
pub fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> (f32, usize, usize) {
    assert_eq!(a.len(), b.len(), "different numbers of vectors");
    let mut worst = (0f32, 0, 0);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.len(), y.len(), "vector {i} has a different dimension");
        for (j, (p, q)) in x.iter().zip(y).enumerate() {
            let d = (p - q).abs();
            if d > worst.0 || d.is_nan() {
                worst = (if d.is_nan() { f32::INFINITY } else { d }, i, j);
            }
        }
    }
    worst
}

/// The variable that makes a re-run of a test binary do one workload and report its
/// memory (see [`child_peak_rss_mb`]).
const CHILD_WORKLOAD: &str = "EMBEDKIT_TEST_CHILD_WORKLOAD";

/// The workload this process was started for, when it is such a child.
pub fn child_workload() -> Option<String> {
    std::env::var(CHILD_WORKLOAD).ok()
}

/// Prints this process's peak resident memory for the parent (Linux's VmHWM).
pub fn report_peak_rss() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    println!("peak_rss_kb={kb}");
}

/// Runs the test `test` of module `module` (its `module_path!()`) of this test binary
/// again in a child process, alone, with the workload `workload`, and returns the child's
/// peak resident memory in MB: a figure no other test running in parallel can move.
pub fn child_peak_rss_mb(module: &str, test: &str, workload: &str) -> u64 {
    // libtest names a test by its path without the crate: `resource_bounds::name`.
    let name = match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{test}"),
        None => test.to_string(),
    };
    let test = name.as_str();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_WORKLOAD, workload)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child {test} ({workload}) failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // libtest prints the test's name on the same line, before the report.
    let kb: u64 = stdout
        .split("peak_rss_kb=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("child {test} ({workload}) reported no peak:\n{stdout}"));
    kb / 1024
}

/// A fresh, empty folder for one test, removed when it passes.
pub fn tmp_dir(name: &str) -> TmpDir {
    TmpDir::new("embedkit-test", name)
}
