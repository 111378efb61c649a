//! Corpora in and out: every input format gives the vectors of the same texts read as
//! plain lines, every output format holds the JSON Lines vectors exactly, with ids; bad
//! rows stop the job or are skipped and listed.

use crate::common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type, UInt32Type};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use common::{repo_root, tmpdir};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde_json::Value;

const MINILM: &str = "sentence-transformers/all-MiniLM-L6-v2";

fn model_dir(rel: &str) -> String {
    let dir = repo_root().join(rel);
    assert!(
        dir.is_dir(),
        "{} is missing (../shared/models, or `make test-models`)",
        dir.display()
    );
    dir.to_string_lossy().into_owned()
}

fn embedkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args(args)
        .arg("--quiet")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Texts with what the table formats must carry through: commas, quotes, non-ASCII.
fn texts() -> Vec<String> {
    let corpus = std::fs::read_to_string(repo_root().join("tests/data/corpus.txt")).unwrap();
    let mut t: Vec<String> = corpus.lines().take(30).map(String::from).collect();
    t.push("a \"quoted\", comma-separated text".into());
    t.push("Zürich, naïve café — 東京".into());
    t.push(String::new());
    t
}

fn jsonl(out: &[u8]) -> Vec<Value> {
    std::str::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn f32s(v: &Value) -> Vec<f32> {
    serde_json::from_value(v.clone()).unwrap()
}

fn write_parquet(path: &Path, ids: Option<Vec<i64>>, texts: &[String]) {
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    if let Some(ids) = ids {
        fields.push(Field::new("doc_id", DataType::Int64, false));
        cols.push(Arc::new(Int64Array::from(ids)));
    }
    fields.push(Field::new("body", DataType::Utf8, true));
    cols.push(Arc::new(StringArray::from_iter_values(texts)));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// A `.npy` float32 matrix, parsed here from the format's definition.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"));
    let shape = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let data: Vec<f32> = bytes[10 + len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(data.len(), shape.iter().product::<usize>());
    (shape, data)
}

#[test]
fn every_input_format_gives_the_vectors_of_plain_lines() {
    let dir = tmpdir("inputs");
    let minilm = model_dir("../shared/models/all-MiniLM-L6-v2-fp32");
    let texts = texts();
    let embed = |extra: &[&str]| {
        let mut args = vec!["embed", "--model", MINILM, "--model-path", &minilm];
        args.extend_from_slice(extra);
        jsonl(&ok(embedkit(&args)).stdout)
    };
    let txt = dir.join("docs.txt");
    std::fs::write(&txt, texts.join("\n") + "\n").unwrap();
    let reference = embed(&["--input", txt.to_str().unwrap()]);
    assert_eq!(reference.len(), texts.len());
    for (i, r) in reference.iter().enumerate() {
        assert_eq!(r["id"], i, "plain lines are numbered from 0");
    }

    let jl = dir.join("docs.jsonl");
    let lines: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({"key": format!("doc-{i}"), "content": t, "extra": [1]}).to_string()
        })
        .collect();
    std::fs::write(&jl, lines.join("\n")).unwrap();
    let csv = dir.join("docs.csv");
    let tsv = dir.join("docs.tsv");
    for (path, delim) in [(&csv, b','), (&tsv, b'\t')] {
        let mut w = csv::WriterBuilder::new()
            .delimiter(delim)
            .from_path(path)
            .unwrap();
        w.write_record(["other", "content", "key"]).unwrap();
        for (i, t) in texts.iter().enumerate() {
            w.write_record(["x", t.as_str(), &format!("doc-{i}")])
                .unwrap();
        }
        w.flush().unwrap();
    }
    let pq = dir.join("docs.parquet");
    write_parquet(
        &pq,
        Some((0..texts.len() as i64).map(|i| 1000 + i).collect()),
        &texts,
    );

    type IdOf = Box<dyn Fn(usize) -> Value>;
    let cases: Vec<(PathBuf, Vec<&str>, IdOf)> = vec![
        (
            jl,
            vec!["--text-column", "content", "--id-column", "key"],
            Box::new(|i| format!("doc-{i}").into()),
        ),
        (
            csv,
            vec!["--text-column", "content", "--id-column", "key"],
            Box::new(|i| format!("doc-{i}").into()),
        ),
        (
            tsv,
            vec!["--text-column", "content", "--id-column", "key"],
            Box::new(|i| format!("doc-{i}").into()),
        ),
        (
            pq.clone(),
            vec!["--text-column", "body", "--id-column", "doc_id"],
            Box::new(|i| (1000 + i).into()),
        ),
        (pq, vec!["--text-column", "body"], Box::new(|i| i.into())),
    ];
    for (path, extra, id) in cases {
        let mut args = vec!["--input", path.to_str().unwrap()];
        args.extend(extra);
        let got = embed(&args);
        assert_eq!(got.len(), texts.len(), "{}", path.display());
        for (i, (g, r)) in got.iter().zip(&reference).enumerate() {
            assert_eq!(g["id"], id(i), "{} row {i}", path.display());
            assert_eq!(
                f32s(&g["embedding"]),
                f32s(&r["embedding"]),
                "{} row {i}",
                path.display()
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_output_format_holds_the_jsonl_vectors() {
    let dir = tmpdir("outputs");
    let txt = dir.join("docs.txt");
    let texts = texts();
    std::fs::write(&txt, texts.join("\n") + "\n").unwrap();
    let input = txt.to_str().unwrap();
    let minilm = model_dir("../shared/models/all-MiniLM-L6-v2-fp32");
    let splade = model_dir("../shared/models/splade-tiny");
    let colbert = model_dir("target/test-models/colbert-128");
    let dense = [
        "embed",
        "--model",
        MINILM,
        "--model-path",
        &minilm,
        "--input",
        input,
    ];
    let sparse = ["sparse", "--model-path", &splade, "--input", input];
    let late = [
        "late",
        "--model",
        "colbert-ir/colbertv2.0",
        "--model-path",
        &colbert,
        "--input",
        input,
    ];
    let with_output = |base: &[&str], name: &str| {
        let path = dir.join(name);
        let mut args = base.to_vec();
        args.extend(["--output", path.to_str().unwrap()]);
        ok(embedkit(&args));
        path
    };

    // Dense: Parquet (id, fixed-size list of float32) and .npy with its ids.
    let reference = jsonl(&ok(embedkit(&dense)).stdout);
    let batches = read_parquet(&with_output(&dense, "dense.parquet"));
    let mut row = 0;
    for b in &batches {
        assert_eq!(b.schema().field(0).name(), "id");
        let ids = b.column(0).as_primitive::<Int64Type>();
        let emb = b.column_by_name("embedding").unwrap().as_fixed_size_list();
        assert_eq!(emb.value_length(), 384);
        for i in 0..b.num_rows() {
            assert_eq!(ids.value(i), row as i64);
            let v: Vec<f32> = emb.value(i).as_primitive::<Float32Type>().values().to_vec();
            assert_eq!(v, f32s(&reference[row]["embedding"]), "parquet row {row}");
            row += 1;
        }
    }
    assert_eq!(row, texts.len());
    let npy = with_output(&dense, "dense.npy");
    let (shape, data) = read_npy(&npy);
    assert_eq!(shape, vec![texts.len(), 384]);
    for (i, r) in reference.iter().enumerate() {
        assert_eq!(
            data[i * 384..(i + 1) * 384].to_vec(),
            f32s(&r["embedding"]),
            "npy row {i}"
        );
    }
    let ids = std::fs::read_to_string(dir.join("dense.ids.jsonl")).unwrap();
    let ids: Vec<i64> = ids.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(ids, (0..texts.len() as i64).collect::<Vec<_>>());

    // Sparse: indices and values lists.
    let reference = jsonl(&ok(embedkit(&sparse)).stdout);
    let mut row = 0;
    for b in read_parquet(&with_output(&sparse, "sparse.parquet")) {
        let idx = b.column_by_name("indices").unwrap().as_list::<i32>();
        let val = b.column_by_name("values").unwrap().as_list::<i32>();
        for i in 0..b.num_rows() {
            let got_i: Vec<u32> = idx.value(i).as_primitive::<UInt32Type>().values().to_vec();
            let want_i: Vec<u32> =
                serde_json::from_value(reference[row]["indices"].clone()).unwrap();
            assert_eq!(got_i, want_i);
            let got_v: Vec<f32> = val.value(i).as_primitive::<Float32Type>().values().to_vec();
            assert_eq!(got_v, f32s(&reference[row]["values"]));
            row += 1;
        }
    }
    assert_eq!(row, texts.len());

    // Late interaction: a list of token vectors per document.
    let reference = jsonl(&ok(embedkit(&late)).stdout);
    let mut row = 0;
    for b in read_parquet(&with_output(&late, "late.parquet")) {
        let m = b.column_by_name("embeddings").unwrap().as_list::<i32>();
        for i in 0..b.num_rows() {
            let tokens = m.value(i);
            let tokens = tokens.as_fixed_size_list();
            let want: Vec<Vec<f32>> =
                serde_json::from_value(reference[row]["embeddings"].clone()).unwrap();
            assert_eq!(tokens.len(), want.len());
            for (t, w) in want.iter().enumerate() {
                let v: Vec<f32> = tokens
                    .value(t)
                    .as_primitive::<Float32Type>()
                    .values()
                    .to_vec();
                assert_eq!(&v, w, "late row {row} token {t}");
            }
            row += 1;
        }
    }
    assert_eq!(row, texts.len());

    // .npy holds fixed-width rows only: refused before any work, and no file left behind.
    let bad = embedkit(
        &[
            &sparse[..],
            &["--output", dir.join("s.npy").to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains(".npy holds rows of numbers of one width")
    );
    assert!(!dir.join("s.npy").exists() && !dir.join("s.ids.jsonl").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_rows_stop_the_job_or_are_skipped_and_listed() {
    let dir = tmpdir("bad");
    let csv = dir.join("docs.csv");
    std::fs::write(
        &csv,
        b"id,text\na,first\nb\nc,third\nd,bad \xff byte\ne,fifth\n",
    )
    .unwrap();
    let minilm = model_dir("../shared/models/all-MiniLM-L6-v2-fp32");
    let out = dir.join("out.jsonl");
    let args = [
        "embed",
        "--model",
        MINILM,
        "--model-path",
        &minilm,
        "--input",
        csv.to_str().unwrap(),
        "--id-column",
        "id",
        "--output",
        out.to_str().unwrap(),
    ];
    let stopped = embedkit(&args);
    assert!(!stopped.status.success());
    let err = String::from_utf8_lossy(&stopped.stderr);
    assert!(err.contains("line 3") && err.contains("short"), "{err}");
    assert!(!out.exists(), "a failed job left its output");

    let skipped = ok(embedkit(&[&args[..], &["--skip-bad"]].concat()));
    let err = String::from_utf8_lossy(&skipped.stderr);
    assert!(
        err.contains("skipped input line 3") && err.contains("skipped input line 5"),
        "{err}"
    );
    assert!(err.contains("2 bad rows skipped"), "{err}");
    let ids: Vec<Value> = jsonl(&std::fs::read(&out).unwrap())
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, vec!["a", "c", "e"]);

    let missing = embedkit(&[&args[..], &["--text-column", "body"]].concat());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no column \"body\""));
    let _ = std::fs::remove_dir_all(&dir);
}
