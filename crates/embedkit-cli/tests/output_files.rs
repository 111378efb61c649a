//! Where a job writes: nothing when it fails before its first row, and straight through
//! (not replaced by a renamed file) when the destination is not a regular file.

use std::process::Command;

use crate::common::tmpdir;
use crate::formats::{embedkit, files_in, s, tiny};

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

#[test]
fn a_destination_that_is_not_a_regular_file_is_written_through_not_replaced() {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    // A named pipe stands for /dev/null or /dev/stdout: the records arrive through it, and
    // it is still a pipe afterwards (a partial file renamed onto it would replace it).
    let dir = tmpdir("formats-fifo");
    let fifo = dir.join("out.jsonl");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            std::fs::File::open(&fifo)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        })
    };
    let args = s(&[
        "embed",
        "-m",
        "BAAI/bge-small-en-v1.5",
        "--model-path",
        &tiny("cls-384"),
        "--quiet",
        "--output",
        &fifo.to_string_lossy(),
    ]);
    let out = embedkit(&args, b"one\ntwo\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = reader.join().unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(files_in(&dir), ["out.jsonl"], "no partial beside it");
    // Formats that need a regular file, and --resume, are refused before any work.
    for extra in [&["--output-format", "parquet"][..], &["--resume"][..]] {
        let mut a = args.clone();
        a.extend(extra.iter().map(|x| x.to_string()));
        let out = embedkit(&a, b"one\n");
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("regular file"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}
