//! Interrupted jobs resume: killed (SIGKILL, with a torn tail) or stopped with Ctrl-C
//! (SIGINT), a job run again with --resume ends with every id once and the output of an
//! uninterrupted run. The job reads its rows from a pipe the test controls, so it is
//! certainly mid-run when the signal comes: the test waits for the partial output to
//! hold rows (an event, with a deadline), never for a time.

use crate::common;

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type, UInt32Type};
use common::{repo_root, tmpdir};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

const ROWS: usize = 20_000;

fn lines() -> Vec<String> {
    (0..ROWS)
        .map(|i| {
            format!(
                "document {i} on the {} of {}",
                ["cat", "river", "engine"][i % 3],
                i * 7
            )
        })
        .collect()
}

/// `embedkit <family args> --output OUT` reading `input` (a file) or stdin when None.
fn command(family: &[String], out: &Path, input: Option<&Path>, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_embedkit"));
    cmd.args(family)
        .arg("--output")
        .arg(out)
        .arg("--quiet")
        .args(extra);
    if let Some(input) = input {
        cmd.arg("--input").arg(input);
    }
    cmd
}

/// `COMMAND --model MODEL --model-path target/test-models/FOLDER`.
fn family(command: &str, model: &str, folder: &str) -> Vec<String> {
    let dir = repo_root().join("target/test-models").join(folder);
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    [
        command,
        "--model",
        model,
        "--model-path",
        dir.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn bm25() -> Vec<String> {
    family("sparse", "Qdrant/bm25", "bm25")
}

fn static_dense() -> Vec<String> {
    family("embed", "minishlab/potion-base-8M", "static-256")
}

/// Starts the job on a pipe, feeds it the first `fed` rows, and waits (up to a minute)
/// until `ready` says the partial output holds rows. The pipe stays open: the job is
/// blocked reading the rest.
fn start_and_wait(mut cmd: Command, fed: &[String], ready: impl Fn() -> bool) -> Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.as_mut().unwrap();
    stdin.write_all((fed.join("\n") + "\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "the partial output never held rows"
        );
        assert!(child.try_wait().unwrap().is_none(), "the job ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn kill(mut child: Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn run_ok(mut cmd: Command) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn append(p: &Path, bytes: &[u8]) {
    File::options()
        .append(true)
        .open(p)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

/// (id, sparse indices, values) or (id, dense vector) rows of a Parquet output.
fn parquet_rows(p: &Path) -> Vec<(i64, Vec<u32>, Vec<f32>)> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(p).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let ids = b.column(0).as_primitive::<Int64Type>();
        let idx = b.column_by_name("indices").unwrap().as_list::<i32>();
        let val = b.column_by_name("values").unwrap().as_list::<i32>();
        for i in 0..b.num_rows() {
            rows.push((
                ids.value(i),
                idx.value(i).as_primitive::<UInt32Type>().values().to_vec(),
                val.value(i).as_primitive::<Float32Type>().values().to_vec(),
            ));
        }
    }
    rows
}

#[test]
fn a_killed_jsonl_job_resumes_to_the_uninterrupted_output() {
    let dir = tmpdir("jsonl");
    let lines = lines();
    let input = dir.join("docs.txt");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let reference = dir.join("reference.jsonl");
    run_ok(command(&bm25(), &reference, Some(&input), &[]));

    let out = dir.join("out.jsonl");
    let partial = dir.join(".out.jsonl.partial");
    let child = start_and_wait(command(&bm25(), &out, None, &[]), &lines[..12_000], || {
        len(&partial) > 100_000
    });
    kill(child);
    assert!(
        !out.exists(),
        "a killed job's output appeared under its name"
    );
    // A torn last line, as a kill in the middle of a write leaves.
    append(&partial, b"{\"id\":11999,\"indices\":[1,2");
    run_ok(command(&bm25(), &out, Some(&input), &["--resume"]));
    assert!(!partial.exists());
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&reference).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_killed_parquet_job_resumes_with_every_id_once() {
    let dir = tmpdir("parquet");
    let lines = lines();
    let input = dir.join("docs.txt");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let reference = dir.join("reference.parquet");
    run_ok(command(&bm25(), &reference, Some(&input), &[]));

    let out = dir.join("out.parquet");
    let parts = dir.join(".out.parquet.parts");
    let child = start_and_wait(command(&bm25(), &out, None, &[]), &lines[..12_000], || {
        parts.join("part-00000001.parquet").exists()
    });
    kill(child);
    assert!(!out.exists());
    // A part torn by the kill: a file without its footer.
    std::fs::write(parts.join("part-00000002.parquet"), b"PAR1 torn").unwrap();
    run_ok(command(&bm25(), &out, Some(&input), &["--resume"]));
    assert!(!parts.exists(), "the parts folder outlived the job");
    let got = parquet_rows(&out);
    let ids: Vec<i64> = got.iter().map(|r| r.0).collect();
    assert_eq!(
        ids,
        (0..ROWS as i64).collect::<Vec<_>>(),
        "every id once, in order"
    );
    assert_eq!(got, parquet_rows(&reference));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_killed_npy_job_resumes_to_the_uninterrupted_output() {
    let dir = tmpdir("npy");
    let lines = lines();
    let input = dir.join("docs.txt");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let reference = dir.join("reference.npy");
    run_ok(command(&static_dense(), &reference, Some(&input), &[]));

    let out = dir.join("out.npy");
    let partial = dir.join(".out.npy.partial");
    let ids_partial = dir.join(".out.npy.ids.partial");
    let child = start_and_wait(
        command(&static_dense(), &out, None, &[]),
        &lines[..12_000],
        || len(&partial) > 1_000_000 && len(&ids_partial) > 10_000,
    );
    kill(child);
    append(&partial, &[1, 2, 3]); // a torn vector
    run_ok(command(&static_dense(), &out, Some(&input), &["--resume"]));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&reference).unwrap()
    );
    assert_eq!(
        std::fs::read(dir.join("out.ids.jsonl")).unwrap(),
        std::fs::read(dir.join("reference.ids.jsonl")).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_leaves_a_resumable_job_and_a_changed_input_is_refused() {
    let dir = tmpdir("sigint");
    let lines = lines();
    let input = dir.join("docs.txt");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let reference = dir.join("reference.jsonl");
    run_ok(command(&bm25(), &reference, Some(&input), &[]));

    let out = dir.join("out.jsonl");
    let partial = dir.join(".out.jsonl.partial");
    let mut child = start_and_wait(command(&bm25(), &out, None, &[]), &lines[..12_000], || {
        len(&partial) > 100_000
    });
    // SIGINT, as Ctrl-C sends; then the rest of the input arrives and the job stops at
    // the next result it writes.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all((lines[12_000..].join("\n") + "\n").as_bytes());
    drop(stdin);
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(!out.exists() && partial.exists());

    // The input changed since: resuming is refused, the partial kept.
    let changed = dir.join("changed.jsonl");
    let rows: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": format!("x{i}"), "text": t}).to_string())
        .collect();
    std::fs::write(&changed, rows.join("\n")).unwrap();
    let refused = command(
        &bm25(),
        &out,
        Some(&changed),
        &["--resume", "--id-column", "id"],
    )
    .output()
    .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("input changed"));
    assert!(partial.exists());

    run_ok(command(&bm25(), &out, Some(&input), &["--resume"]));
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&reference).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
