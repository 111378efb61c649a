//! A million-row Parquet corpus streams in bounded memory: the peak resident memory of
//! the job (measured by the kernel for that child alone) is about that of a job on a
//! hundredth of the rows. Its own test binary, so no other test's children interfere.

use crate::common;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use common::repo_root;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

fn write_corpus(path: &Path, rows: usize) {
    let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::Utf8, false)]));
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(100_000))
        .build();
    let mut w =
        ArrowWriter::try_new(File::create(path).unwrap(), schema.clone(), Some(props)).unwrap();
    let words = [
        "river", "engine", "garden", "vector", "search", "music", "winter",
    ];
    for start in (0..rows).step_by(50_000) {
        let texts = (start..(start + 50_000).min(rows)).map(|i| {
            format!(
                "document {i} about the {} and the {}",
                words[i % 7],
                words[(i / 7) % 7]
            )
        });
        let col = StringArray::from_iter_values(texts);
        w.write(&RecordBatch::try_new(schema.clone(), vec![Arc::new(col)]).unwrap())
            .unwrap();
    }
    w.close().unwrap();
}

/// Runs the job and returns its peak resident memory in MiB (wait4's ru_maxrss).
// Reaped by wait4, which std's Child::wait cannot give the rusage of.
#[allow(clippy::zombie_processes)]
fn peak_rss_mib(input: &Path, output: &Path) -> f64 {
    let bm25 = repo_root().join("target/test-models/bm25");
    assert!(
        bm25.is_dir(),
        "{} is missing: run `make test-models`",
        bm25.display()
    );
    let child = Command::new(env!("CARGO_BIN_EXE_embedkit"))
        .args([
            "sparse",
            "--model",
            "Qdrant/bm25",
            "--quiet",
            "--model-path",
        ])
        .arg(&bm25)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid; wait4 reaps our own child and fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the job failed"
    );
    usage.ru_maxrss as f64 / 1024.0
}

#[test]
fn a_million_row_parquet_corpus_streams_in_bounded_memory() {
    let dir = common::TmpDir::new("embedkit-corpus-mem", "parquet");
    let (small, large) = (dir.join("small.parquet"), dir.join("large.parquet"));
    write_corpus(&small, 10_000);
    write_corpus(&large, 1_000_000);
    let small_peak = peak_rss_mib(&small, &dir.join("small-out.parquet"));
    let large_peak = peak_rss_mib(&large, &dir.join("large-out.parquet"));
    eprintln!("peak RSS: 10k rows {small_peak:.0} MiB, 1M rows {large_peak:.0} MiB");
    // 100x the rows: the input and output alone are ~100 MB, the job must not hold them.
    assert!(
        large_peak < small_peak + 32.0,
        "1M rows peaked at {large_peak:.0} MiB, 10k rows at {small_peak:.0} MiB"
    );
    let rows = parquet::file::reader::SerializedFileReader::new(
        File::open(dir.join("large-out.parquet")).unwrap(),
    )
    .map(|r| {
        parquet::file::reader::FileReader::metadata(&r)
            .file_metadata()
            .num_rows()
    })
    .unwrap();
    assert_eq!(rows, 1_000_000);
    let _ = std::fs::remove_dir_all(&dir);
}
