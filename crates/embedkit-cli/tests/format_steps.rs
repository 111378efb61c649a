//! The dense steps (`--dimensions`, `--normalize`, `--output-dtype`) and sparse pruning
//! of the CLI, each checked by numpy on the file written.

use std::path::Path;
use std::process::Command;

use crate::common::{repo_root, tmpdir};
use crate::formats::{embedkit, files_in, s, tiny};

/// Runs a numpy check in the oracle venv: `code` sees `base` (the float32 JSON Lines
/// records of the same inputs) and `out` (the path written), and raises on a mismatch.
fn numpy_check(base: &Path, out: &Path, code: &str) {
    let python = repo_root().join(".venv-oracle/bin/python");
    let script = format!(
        "import json, sys\nimport numpy as np\nbase = [json.loads(l) for l in open(sys.argv[1])]\nout = sys.argv[2]\n{code}\n"
    );
    let run = Command::new(python)
        .args(["-c", &script])
        .arg(base)
        .arg(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}: {}",
        out.display(),
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn dense_steps_and_sparse_pruning_are_what_numpy_computes() {
    let dir = tmpdir("formats-steps");
    let stdin = b"first document\nsecond, a little longer document\nthird\n";
    let run = |args: &[&str], dest: &Path| {
        let mut a = s(args);
        a.extend([
            "--quiet".into(),
            "--output".into(),
            dest.to_string_lossy().into(),
        ]);
        let out = embedkit(&a, stdin);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let bge = [
        "embed",
        "-m",
        "BAAI/bge-small-en-v1.5",
        "--model-path",
        &tiny("cls-384"),
    ];
    let base = dir.join("base.jsonl");
    run(&bge, &base);

    // int8: each vector scaled to ±127, as numpy rounds it.
    let int8 = dir.join("int8.npy");
    run(&[&bge[..], &["--output-dtype", "int8"]].concat(), &int8);
    numpy_check(
        &base,
        &int8,
        "a = np.load(out)\nassert a.dtype == np.int8 and a.shape == (3, 384), a.shape\n\
         for row, r in zip(a, base):\n    v = np.array(r['embedding'], dtype=np.float32)\n    \
         want = np.round(v * (127 / np.abs(v).max())).astype(np.int8)\n    \
         assert np.abs(row.astype(int) - want.astype(int)).max() <= 1, (row, want)",
    );
    // binary: numpy's packbits of the signs, in .npy and in Parquet.
    let bin = dir.join("bin.npy");
    run(&[&bge[..], &["--output-dtype", "binary"]].concat(), &bin);
    numpy_check(
        &base,
        &bin,
        "a = np.load(out)\nassert a.dtype == np.uint8 and a.shape == (3, 48), a.shape\n\
         want = np.stack([np.packbits(np.array(r['embedding']) > 0) for r in base])\n\
         assert (a == want).all()",
    );
    let binpq = dir.join("bin.parquet");
    run(&[&bge[..], &["--output-dtype", "binary"]].concat(), &binpq);
    numpy_check(
        &base,
        &binpq,
        "import pyarrow.parquet as pq\nt = pq.read_table(out)\n\
         col = t.column('embedding')\nassert str(col.type) == 'fixed_size_list<item: uint8 not null>[48]', col.type\n\
         want = [list(np.packbits(np.array(r['embedding']) > 0)) for r in base]\n\
         assert col.to_pylist() == [[int(x) for x in w] for w in want]",
    );

    // --dimensions on a Matryoshka model: the first N values at unit length.
    let nomic = [
        "embed",
        "-m",
        "nomic-ai/nomic-embed-text-v1.5",
        "--model-path",
        &tiny("mean-768"),
    ];
    let nbase = dir.join("nomic.jsonl");
    run(&nomic, &nbase);
    let short = dir.join("short.jsonl");
    run(&[&nomic[..], &["--dimensions", "64"]].concat(), &short);
    numpy_check(
        &nbase,
        &short,
        "got = [json.loads(l)['embedding'] for l in open(out)]\n\
         for g, r in zip(got, base):\n    v = np.array(r['embedding'][:64])\n    \
         assert len(g) == 64 and np.abs(np.array(g) - v / np.linalg.norm(v)).max() < 1e-5",
    );
    // ... and on a model not trained for it: refused before any work, nothing written.
    let refused = dir.join("refused.jsonl");
    let mut a = s(&bge);
    a.extend(s(&[
        "--dimensions",
        "64",
        "--output",
        &refused.to_string_lossy(),
    ]));
    let out = embedkit(&a, stdin);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Matryoshka"));
    assert!(!files_in(&dir).iter().any(|f| f.contains("refused")));

    // Sparse pruning: the K largest weights of the unpruned vector, indices ascending.
    let bm = ["sparse", "-m", "Qdrant/bm25", "--model-path", &tiny("bm25")];
    let sbase = dir.join("sparse.jsonl");
    run(&bm, &sbase);
    let pruned = dir.join("pruned.jsonl");
    run(&[&bm[..], &["--top-terms", "3"]].concat(), &pruned);
    numpy_check(
        &sbase,
        &pruned,
        "got = [json.loads(l) for l in open(out)]\n\
         for g, r in zip(got, base):\n    order = np.argsort(-np.array(r['values']), kind='stable')[:3]\n    \
         want = sorted(np.array(r['indices'])[order].tolist())\n    \
         assert g['indices'] == want, (g['indices'], want)",
    );
}
