//! Every command that writes records × every output format: the file loads in the
//! format's own reader (pyarrow for Parquet, numpy for `.npy`, json for JSON Lines) with
//! one row per input (or per hit) and its id — or the command refuses the format before
//! any work and leaves no file at all.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::common::{repo_root, tmpdir};

fn embedkit(args: &[String], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn tiny(name: &str) -> String {
    let dir = repo_root().join("target/test-models").join(name);
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    dir.to_string_lossy().into_owned()
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
fn files_in(dir: &Path) -> Vec<String> {
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

fn s(v: &[&str]) -> Vec<String> {
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
            let dir: PathBuf = tmpdir(&format!("formats-{}-{ext}", case.name));
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
fn a_job_that_fails_before_its_first_row_leaves_nothing() {
    // The model folder is empty, so the model does not load once the output is open:
    // no output and no partial, in every format.
    let empty = tmpdir("formats-empty-model");
    for ext in ["jsonl", "parquet", "npy"] {
        let dir = tmpdir(&format!("formats-noload-{ext}"));
        let dest = dir.join(format!("out.{ext}"));
        let args = s(&[
            "embed",
            "-m",
            "BAAI/bge-small-en-v1.5",
            "--model-path",
            &empty.to_string_lossy(),
            "--quiet",
            "--output",
            &dest.to_string_lossy(),
        ]);
        let out = embedkit(&args, b"one\ntwo\n");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not found"), "{stderr}");
        assert_eq!(files_in(&dir), Vec::<String>::new(), ".{ext}");
    }
}
