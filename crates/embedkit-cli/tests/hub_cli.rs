//! The CLI against a local hub server: downloads on first use, no requests once cached,
//! one transfer for two processes, and the cache commands.

use crate::common;
#[path = "../../embedkit/tests/common/hub_server.rs"]
mod hub_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::tmpdir;
use hub_server::{bge_small_repo, Fault, HubServer};

const MODEL: &str = "BAAI/bge-small-en-v1.5";
const REPO: &str = "Qdrant/bge-small-en-v1.5-onnx-Q";

fn tiny_dir() -> PathBuf {
    let dir = std::env::var("EMBEDKIT_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-models"))
        .join("cls-384");
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models` first",
        dir.display()
    );
    dir
}

fn serve(fault: Fault) -> HubServer {
    let dir = tiny_dir();
    let server = HubServer::start();
    server.add_repo(
        REPO,
        bge_small_repo(&dir, "89abcdef0123456789abcdef0123456789abcdef", fault),
    );
    server
}

fn embedkit(server: &HubServer, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_embedkit"));
    cmd.args(args)
        .env("HF_ENDPOINT", &server.endpoint)
        .env("HF_HUB_DOWNLOAD_TIMEOUT", "5")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN");
    cmd
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn embed_downloads_on_first_use_and_then_makes_no_request() {
    let server = serve(Fault::None);
    let cache = tmpdir("first-use");
    let c = cache.to_str().unwrap();
    let first = ok(embedkit(
        &server,
        &["embed", "--model", MODEL, "--cache-dir", c, "hello"],
    )
    .output()
    .unwrap());
    let reference = ok(Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args([
            "embed",
            "--model",
            MODEL,
            "--model-path",
            tiny_dir().to_str().unwrap(),
            "hello",
        ])
        .output()
        .unwrap());
    assert_eq!(first, reference);
    assert!(!server.log().is_empty());

    server.clear_log();
    let second = ok(embedkit(
        &server,
        &["embed", "--model", MODEL, "--cache-dir", c, "hello"],
    )
    .output()
    .unwrap());
    assert_eq!(second, reference);
    assert!(server.log().is_empty(), "{:?}", server.log());
}

#[test]
fn two_processes_share_one_transfer() {
    let server = serve(Fault::Slow);
    let cache = tmpdir("two-procs");
    let c = cache.to_str().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            embedkit(&server, &["download", MODEL, "--cache-dir", c])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let dirs: Vec<String> = children
        .into_iter()
        .map(|ch| ok(ch.wait_with_output().unwrap()))
        .collect();
    assert_eq!(dirs[0], dirs[1]);
    assert_eq!(
        server.gets_of("model_optimized.onnx").len(),
        1,
        "{:?}",
        server.log()
    );
}

#[test]
fn cache_list_and_remove() {
    let server = serve(Fault::None);
    let cache = tmpdir("list");
    let c = cache.to_str().unwrap();
    ok(embedkit(&server, &["download", MODEL, "--cache-dir", c])
        .output()
        .unwrap());
    let list = ok(embedkit(&server, &["cache", "list", "--cache-dir", c])
        .output()
        .unwrap());
    assert!(list.contains(REPO), "{list}");
    ok(
        embedkit(&server, &["cache", "remove", MODEL, "--cache-dir", c])
            .output()
            .unwrap(),
    );
    let list = ok(embedkit(&server, &["cache", "list", "--cache-dir", c])
        .output()
        .unwrap());
    assert!(!list.contains(REPO), "{list}");
    let again = embedkit(&server, &["cache", "remove", MODEL, "--cache-dir", c])
        .output()
        .unwrap();
    assert!(!again.status.success());
}

#[test]
fn hf_hub_offline_makes_no_request() {
    let server = serve(Fault::None);
    let cache = tmpdir("offline");
    let out = embedkit(
        &server,
        &[
            "embed",
            "--model",
            MODEL,
            "--cache-dir",
            cache.to_str().unwrap(),
            "x",
        ],
    )
    .env("HF_HUB_OFFLINE", "1")
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("offline"), "{err}");
    assert!(server.log().is_empty());
}
