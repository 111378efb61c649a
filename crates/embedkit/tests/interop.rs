//! The cache is shared with the reference: fastembed 0.9.1 (Python, with huggingface_hub)
//! downloads a model from the local hub server and embedkit loads it offline; embedkit
//! downloads one and fastembed loads it offline. Needs the oracle's virtualenv
//! (`.venv-oracle`, made by `make test`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use embedkit::HubOptions;
use embedkit::TextEmbedding;

use common::hub_server::{bge_small_repo, Fault, HubServer};
use common::*;

const MODEL: &str = "BAAI/bge-small-en-v1.5";
const REPO: &str = "Qdrant/bge-small-en-v1.5-onnx-Q";

fn python() -> PathBuf {
    let py = repo_root().join(".venv-oracle/bin/python");
    assert!(
        py.is_file(),
        "{} is missing: `make test` creates the oracle's virtualenv",
        py.display()
    );
    py
}

fn serve() -> HubServer {
    let dir = model_dir("tiny:cls-384");
    let server = HubServer::start();
    server.add_repo(
        REPO,
        bge_small_repo(
            &dir,
            "fedcba9876543210fedcba9876543210fedcba98",
            Fault::None,
        ),
    );
    server
}

/// fastembed's vector for `text`, with the cache at `cache`.
fn fastembed(cache: &Path, endpoint: &str, offline: bool, text: &str) -> Vec<f32> {
    let script = r#"
import json, sys
from fastembed import TextEmbedding
m = TextEmbedding(sys.argv[1], cache_dir=sys.argv[2], local_files_only=sys.argv[3] == "1", threads=1)
print(json.dumps([float(x) for x in next(iter(m.embed([sys.argv[4]])))]))
"#;
    let mut cmd = Command::new(python());
    cmd.args(["-c", script, MODEL, cache.to_str().unwrap()])
        .arg(if offline { "1" } else { "0" })
        .arg(text)
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_TOKEN");
    if offline {
        cmd.env("HF_HUB_OFFLINE", "1");
    } else {
        cmd.env_remove("HF_HUB_OFFLINE");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "fastembed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5, "{x} vs {y}");
    }
}

#[test]
fn embedkit_reads_offline_what_fastembed_downloaded() {
    let server = serve();
    let cache = tmp_dir("fe-first");
    let theirs = fastembed(&cache, &server.endpoint, false, "shared cache");
    assert!(
        server.gets_of("model_optimized.onnx").len() == 1,
        "fastembed did not download from the test server: {:?}",
        server.log()
    );
    server.clear_log();
    let ours = TextEmbedding::builder(MODEL)
        .cache_dir(&cache)
        .local_files_only(true)
        .build()
        .unwrap()
        .embed(&["shared cache"], None)
        .unwrap()
        .remove(0);
    close(&ours, &theirs);
    assert!(server.log().is_empty());
}

#[test]
fn fastembed_reads_offline_what_embedkit_downloaded() {
    let server = serve();
    let cache = tmp_dir("ek-first");
    let mut hub = HubOptions::from_env();
    hub.endpoint = server.endpoint.clone();
    hub.progress = false;
    let ours = TextEmbedding::builder(MODEL)
        .cache_dir(&cache)
        .hub_options(hub)
        .build()
        .unwrap()
        .embed(&["shared cache"], None)
        .unwrap()
        .remove(0);
    server.clear_log();
    let theirs = fastembed(&cache, &server.endpoint, true, "shared cache");
    close(&ours, &theirs);
    assert!(server.log().is_empty(), "{:?}", server.log());
}
