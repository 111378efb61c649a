//! Every command that writes records × every output format: the file loads in the
//! format's own reader (pyarrow for Parquet, numpy for `.npy`, json for JSON Lines) with
//! one row per input (or per hit) and its id — or the command refuses the format before
//! any work and leaves no file at all.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::common::{repo_root, tmpdir};

pub(crate) fn embedkit(args: &[String], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading its input closes the pipe: not an error here.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

pub(crate) fn tiny(name: &str) -> String {
    crate::common::server::tiny(name)
        .to_string_lossy()
        .into_owned()
}

/// Rows and ids of an output file, read by pyarrow, numpy or json in the oracle venv.
fn read_back(path: &Path) -> Value {
    let python = repo_root().join(".venv-oracle/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: `make test-models` creates the oracle venv (numpy, pyarrow)",
        python.display()
    );
    const READER: &str = r#"
import json, sys
path = sys.argv[1]
if path.endswith(".parquet"):
    import pyarrow.parquet as pq
    t = pq.read_table(path)
    out = {"rows": t.num_rows, "ids": t.column("id").to_pylist(), "columns": t.column_names}
elif path.endswith(".npy"):
    import numpy as np
    a = np.load(path)
    with open(path[:-len(".npy")] + ".ids.jsonl") as f:
        ids = [json.loads(line) for line in f]
    out = {"rows": int(a.shape[0]), "ids": ids, "columns": [str(a.dtype), a.ndim]}
else:
    with open(path) as f:
        recs = [json.loads(line) for line in f]
    out = {"rows": len(recs), "ids": [r["id"] for r in recs], "columns": sorted(recs[0]) if recs else []}
print(json.dumps(out))
"#;
    let out = Command::new(python)
        .args(["-c", READER])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} did not load: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every file in `dir`, hidden ones included.
pub(crate) fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    stdin: String,
    /// The ids the records carry, in order.
    ids: Vec<Value>,
    /// The formats whose layout fits the records.
    npy_fits: bool,
    /// Columns a JSON Lines record has besides `id`.
    fields: &'static [&'static str],
}

pub(crate) fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn every_command_writes_every_format_that_fits_and_refuses_the_rest_before_work() {
    let docs = [
        "first document",
        "second, a little longer document",
        "third",
    ];
    let stdin = docs.join("\n") + "\n";
    let line_ids: Vec<Value> = (0..docs.len()).map(|i| Value::from(i as u64)).collect();
    let image_files: Vec<String> = ["photo.png", "gray.png"]
        .iter()
        .map(|f| {
            repo_root()
                .join("tests/data/images")
                .join(f)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let cases = vec![
        Case {
            name: "embed",
            args: s(&[
                "embed",
                "-m",
                "BAAI/bge-small-en-v1.5",
                "--model-path",
                &tiny("cls-384"),
            ]),
            stdin: stdin.clone(),
            ids: line_ids.clone(),
            npy_fits: true,
            fields: &["embedding"],
        },
        Case {
            name: "sparse",
            args: s(&["sparse", "-m", "Qdrant/bm25", "--model-path", &tiny("bm25")]),
            stdin: stdin.clone(),
            ids: line_ids.clone(),
            npy_fits: false,
            fields: &["indices", "values"],
        },
        Case {
            name: "late",
            args: s(&[
                "late",
                "-m",
                "colbert-ir/colbertv2.0",
                "--model-path",
                &tiny("colbert-128"),
            ]),
            stdin: stdin.clone(),
            ids: line_ids.clone(),
            npy_fits: false,
            fields: &["embeddings"],
        },
        Case {
            name: "hybrid",
            args: s(&[
                "hybrid",
                "-m",
                "BAAI/bge-m3",
                "--model-path",
                &tiny("bge-m3"),
            ]),
            stdin: stdin.clone(),
            ids: line_ids.clone(),
            npy_fits: false,
            fields: &["embedding", "embeddings", "indices", "values"],
        },
        Case {
            name: "hybrid-dense",
            args: s(&[
                "hybrid",
                "-m",
                "BAAI/bge-m3",
                "--model-path",
                &tiny("bge-m3"),
                "--outputs",
                "dense",
            ]),
            stdin: stdin.clone(),
            ids: line_ids.clone(),
            npy_fits: true,
            fields: &["embedding"],
        },
        // The test family (a dense and a sparse output from one pass), which this crate
        // knows nothing of: each command whose capability it offers writes it.
        Case {
            name: "twin-embed",
            args: s(&[
                "embed",
                "-m",
                "embedkit/test-twin",
                "--model-path",
                &tiny("twin-64"),
            ]),
            stdin: stdin.clone(),
            ids: line_ids.clone(),
            npy_fits: true,
            fields: &["embedding"],
        },
        Case {
            name: "twin-sparse",
            args: s(&[
                "sparse",
                "-m",
                "embedkit/test-twin",
                "--model-path",
                &tiny("twin-64"),
            ]),
            stdin: stdin.clone(),
            ids: line_ids.clone(),
            npy_fits: false,
            fields: &["indices", "values"],
        },
        Case {
            name: "twin-hybrid",
            args: s(&[
                "hybrid",
                "-m",
                "embedkit/test-twin",
                "--model-path",
                &tiny("twin-64"),
                "--outputs",
                "dense,sparse",
            ]),
            stdin: stdin.clone(),
            ids: line_ids.clone(),
            npy_fits: false,
            fields: &["embedding", "indices", "values"],
        },
        Case {
            name: "late-muvera",
            args: s(&[
                "late",
                "-m",
                "colbert-ir/colbertv2.0",
                "--model-path",
                &tiny("colbert-128"),
                "--muvera",
            ]),
            stdin: stdin.clone(),
            ids: line_ids.clone(),
            npy_fits: true,
            fields: &["embedding"],
        },
        Case {
            name: "rerank",
            args: s(&[
                "rerank",
                "-m",
                "Xenova/ms-marco-MiniLM-L-6-v2",
                "--model-path",
                &tiny("rerank-bert"),
                "-q",
                "a query",
            ]),
            stdin: stdin.clone(),
            ids: line_ids.clone(),
            npy_fits: true,
            fields: &["index", "score"],
        },
        Case {
            name: "rerank-top-k",
            args: s(&[
                "rerank",
                "-m",
                "Xenova/ms-marco-MiniLM-L-6-v2",
                "--model-path",
                &tiny("rerank-bert"),
                "-q",
                "a query",
                "--top-k",
                "2",
            ]),
            stdin: stdin.clone(),
            // The best two, whichever they are: checked by count below.
            ids: Vec::new(),
            npy_fits: true,
            fields: &["index", "score"],
        },
        Case {
            name: "search",
            args: s(&[
                "search",
                "-m",
                "BAAI/bge-small-en-v1.5",
                "--model-path",
                &tiny("cls-384"),
                "-q",
                "a query",
                "--top-k",
                "2",
            ]),
            stdin: stdin.clone(),
            ids: Vec::new(),
            npy_fits: false,
            fields: &["index", "rank", "score", "text"],
        },
        Case {
            name: "embed-image",
            args: {
                let mut a = s(&[
                    "embed-image",
                    "-m",
                    "Qdrant/clip-ViT-B-32-vision",
                    "--model-path",
                    &tiny("vision-clip-512"),
                ]);
                a.extend(image_files.iter().cloned());
                a
            },
            stdin: String::new(),
            ids: image_files
                .iter()
                .map(|f| Value::from(f.as_str()))
                .collect(),
            npy_fits: true,
            fields: &["embedding"],
        },
    ];
    let mut failures = Vec::new();
    for case in &cases {
        for ext in ["jsonl", "parquet", "npy"] {
            let dir = tmpdir(&format!("formats-{}-{ext}", case.name));
            let dest = dir.join(format!("out.{ext}"));
            let mut args = case.args.clone();
            args.extend([
                "--quiet".into(),
                "--output".into(),
                dest.to_string_lossy().into(),
            ]);
            let out = embedkit(&args, case.stdin.as_bytes());
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            let what = format!("{} → .{ext}", case.name);
            let fits = ext != "npy" || case.npy_fits;
            if !fits {
                if out.status.success() {
                    failures.push(format!("{what}: accepted a format that does not fit"));
                } else if !stderr.contains(".npy") {
                    failures.push(format!(
                        "{what}: the refusal does not name the format: {stderr}"
                    ));
                }
                let left = files_in(&dir);
                if !left.is_empty() {
                    failures.push(format!("{what}: refused but left {left:?}"));
                }
                continue;
            }
            if !out.status.success() {
                failures.push(format!("{what}: failed: {stderr}"));
                continue;
            }
            let got = read_back(&dest);
            let rows = got["rows"].as_u64().unwrap() as usize;
            let want_rows = match case.name {
                "rerank-top-k" | "search" => 2,
                _ => case.ids.len(),
            };
            if rows != want_rows {
                failures.push(format!("{what}: {rows} rows, want {want_rows}"));
            }
            let ids = got["ids"].as_array().unwrap();
            if ids.len() != rows {
                failures.push(format!("{what}: {} ids for {rows} rows", ids.len()));
            }
            if !case.ids.is_empty() && ids != &case.ids {
                failures.push(format!("{what}: ids {ids:?}, want {:?}", case.ids));
            }
            if ext != "npy" {
                let columns: Vec<&str> = got["columns"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap())
                    .collect();
                for f in case.fields {
                    if !columns.contains(f) {
                        failures.push(format!("{what}: no {f} in {columns:?}"));
                    }
                }
            }
            // Only the output (and the .npy's ids beside it): no partial left behind.
            let left = files_in(&dir);
            let want: Vec<String> = if ext == "npy" {
                vec!["out.ids.jsonl".into(), "out.npy".into()]
            } else {
                vec![format!("out.{ext}")]
            };
            if left != want {
                failures.push(format!("{what}: left {left:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_command_refuses_a_model_without_its_capability_before_work() {
    // `embed` needs dense vectors of texts; BM25 computes sparse ones.
    let dir = tmpdir("formats-wrong-kind");
    let dest = dir.join("out.jsonl");
    let args = s(&[
        "embed",
        "-m",
        "Qdrant/bm25",
        "--model-path",
        &tiny("bm25"),
        "--output",
        &dest.to_string_lossy(),
    ]);
    let out = embedkit(&args, b"one\n");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("offers sparse_text") && stderr.contains("dense_text"),
        "{stderr}"
    );
    assert_eq!(files_in(&dir), Vec::<String>::new());
    // Exit statuses by the error's kind: 2 for what the command can fix, 3 for model
    // files that cannot be had.
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let unknown = embedkit(&s(&["embed", "-m", "BAAI/bge-smal-en-v1.5"]), b"one\n");
    assert_eq!(unknown.status.code(), Some(2));
    let empty = tmpdir("formats-empty-cache");
    let offline = embedkit(
        &s(&[
            "embed",
            "--local-files-only",
            "--cache-dir",
            &empty.to_string_lossy(),
        ]),
        b"one\n",
    );
    assert_eq!(
        offline.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    // ... and the same model through the command that fits it works.
    let args = s(&["sparse", "-m", "Qdrant/bm25", "--model-path", &tiny("bm25")]);
    let out = embedkit(&args, b"one\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_server_that_cannot_take_its_port_says_so_and_exits() {
    // The port is held by this test for the whole run.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let args = s(&[
        "serve",
        "--model",
        &format!("Qdrant/bm25={}", tiny("bm25")),
        "--port",
        &port,
    ]);
    let out = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    drop(held);
}
