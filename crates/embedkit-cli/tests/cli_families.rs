//! The commands of the other families, run as a user would, against fastembed's
//! committed outputs: `late` (with MUVERA), `rerank`, `embed-image` and `search`.

use crate::cli::{embedkit, minilm_dir, oracle_edge, vectors, MINILM};
use crate::common::{repo_root, tmpdir};

fn late_cases() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/expected/late_cases.json")).unwrap(),
    )
    .unwrap()
}

fn read_le<const N: usize, T>(file: &str, from: fn([u8; N]) -> T) -> Vec<T> {
    std::fs::read(repo_root().join("tests/expected").join(file))
        .unwrap()
        .chunks_exact(N)
        .map(|c| from(c.try_into().unwrap()))
        .collect()
}

#[test]
fn late_cli_writes_the_oracles_matrices_and_muvera_encodings() {
    let dir = repo_root().join("target/test-models/colbert-128");
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    let dir = dir.to_str().unwrap();
    let all = late_cases();
    let case = all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "colbert-corpus")
        .unwrap();
    let corpus = std::fs::read_to_string(repo_root().join("tests/data/corpus.txt")).unwrap();
    let lines: Vec<&str> = corpus.lines().take(40).collect();
    let out = embedkit(
        &[
            "late",
            "--model",
            "colbert-ir/colbertv2.0",
            "--model-path",
            dir,
        ],
        (lines.join("\n") + "\n").as_bytes(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = read_le::<4, f32>(case["data_file"].as_str().unwrap(), f32::from_le_bytes);
    let mut got = Vec::new();
    let mut rows = Vec::new();
    for line in std::str::from_utf8(&out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let m: Vec<Vec<f32>> = serde_json::from_value(v["embeddings"].clone()).unwrap();
        rows.push(m.len() as u64);
        got.extend(m.into_iter().flatten());
    }
    let want_rows: Vec<u64> = case["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap())
        .collect();
    assert_eq!(rows, want_rows);
    assert_eq!(got.len(), want.len(), "token vectors of the oracle's width");
    let d = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(d <= 1e-5, "|diff| {d:e}");

    // --muvera: fastembed's default MUVERA encodings of edge inputs 3..8.
    let edge: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/data/edge_inputs.json")).unwrap(),
    )
    .unwrap();
    let muvera = all["muvera"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "muvera-default")
        .unwrap();
    for (kind, flag) in [("document", None), ("query", Some("--query"))] {
        let spec = &muvera["outputs"][kind];
        let texts = &edge[3..9];
        assert!(texts.iter().all(|t| !t.contains('\n')));
        let mut args = vec![
            "late",
            "--model",
            "colbert-ir/colbertv2.0",
            "--model-path",
            dir,
            "--muvera",
        ];
        args.extend(flag);
        let out = embedkit(&args, (texts.join("\n") + "\n").as_bytes());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = read_le::<8, f64>(spec["data_file"].as_str().unwrap(), f64::from_le_bytes);
        let got: Vec<f64> = std::str::from_utf8(&out.stdout)
            .unwrap()
            .lines()
            .flat_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                serde_json::from_value::<Vec<f64>>(v["embedding"].clone()).unwrap()
            })
            .collect();
        assert_eq!(got.len(), want.len());
        // The CLI writes f32 and runs the model itself, whose vectors match the
        // oracle's within 1e-5 (float kernels differ between CPUs); query encodings
        // are sums of them, far from 1, so relative, at the model's tolerance.
        let d = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0f64, f64::max);
        assert!(d <= 1e-5, "muvera {kind}: relative |diff| {d:e}");
    }
    // MUVERA's parameters without --muvera would be ignored: a usage error.
    let out = embedkit(&["late", "--model-path", dir, "--k-sim", "3", "x"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--muvera"));
}

#[test]
fn rerank_cli_scores_like_the_oracle_and_sorts_top_k() {
    let dir = repo_root().join("target/test-models/rerank-bert");
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    let all: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/expected/rerank_cases.json")).unwrap(),
    )
    .unwrap();
    let case = all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "rerank-jina-turbo-corpus")
        .unwrap();
    let want: Vec<f64> = case["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let corpus = std::fs::read_to_string(repo_root().join("tests/data/corpus.txt")).unwrap();
    let stdin = corpus.lines().take(40).collect::<Vec<_>>().join("\n") + "\n";
    let base = [
        "rerank",
        "--model",
        "jinaai/jina-reranker-v1-turbo-en",
        "--model-path",
        dir.to_str().unwrap(),
        "--query",
        case["query"].as_str().unwrap(),
    ];
    let out = embedkit(&base, stdin.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), want.len());
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["index"].as_u64().unwrap() as usize, i);
        let d = (row["score"].as_f64().unwrap() - want[i]).abs();
        assert!(d <= 1e-5, "document {i}: |diff| {d:e}");
    }

    let mut args = base.to_vec();
    args.extend(["--top-k", "3"]);
    let out = embedkit(&args, stdin.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<u64> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["index"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let mut order: Vec<usize> = (0..want.len()).collect();
    order.sort_by(|&a, &b| want[b].total_cmp(&want[a]));
    let expect: Vec<u64> = order.iter().take(3).map(|&i| i as u64).collect();
    assert_eq!(got, expect);
}

#[test]
fn embed_image_cli_matches_the_oracle_and_names_bad_files() {
    let dir = repo_root().join("target/test-models/vision-clip-512");
    assert!(
        dir.is_dir(),
        "{} is missing: run `make test-models`",
        dir.display()
    );
    let all: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/expected/image_cases.json")).unwrap(),
    )
    .unwrap();
    let case = &all["cases"][0];
    assert_eq!(case["name"], "image-clip");
    let images: Vec<String> = case["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            repo_root()
                .join("tests/data/images")
                .join(n.as_str().unwrap())
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut args = vec![
        "embed-image",
        "--model",
        "Qdrant/clip-ViT-B-32-vision",
        "--model-path",
        dir.to_str().unwrap(),
    ];
    args.extend(images.iter().map(String::as_str));
    let out = embedkit(&args, b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = vectors(&out.stdout);
    let want = read_le::<4, f32>(case["data_file"].as_str().unwrap(), f32::from_le_bytes);
    assert_eq!(got.len(), images.len());
    assert_eq!(
        got.iter().map(Vec::len).sum::<usize>(),
        want.len(),
        "vectors of the oracle's width"
    );
    let d = got
        .iter()
        .flatten()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(d <= 1e-4, "|diff| {d:e}");

    let tmp = tmpdir("bad-image");
    let bad = tmp.join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 not a jpeg").unwrap();
    let output = tmp.join("out.jsonl");
    let out = embedkit(
        &[
            "embed-image",
            "--model",
            "Qdrant/clip-ViT-B-32-vision",
            "--model-path",
            dir.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            &images[0],
            bad.to_str().unwrap(),
        ],
        b"",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.jpg"), "{stderr}");
    assert!(!output.exists(), "a failed run left {}", output.display());
}

#[test]
fn search_ranks_documents_as_fastembeds_vectors_do() {
    let dir = minilm_dir();
    let (texts, want) = oracle_edge();
    // One-line inputs; the first is the query, the others the documents.
    let picked: Vec<usize> = (0..texts.len())
        .filter(|&i| !texts[i].contains('\n') && !texts[i].contains('\r') && !texts[i].is_empty())
        .take(12)
        .collect();
    let (query, docs) = (picked[0], &picked[1..]);
    let input: String = docs.iter().map(|&i| format!("{}\n", texts[i])).collect();
    let search = [
        "search",
        "--model",
        MINILM,
        "--model-path",
        dir.to_str().unwrap(),
        "--query",
        &texts[query],
        "--top-k",
        "5",
    ];
    let out = embedkit(&[&search[..], &["--json"]].concat(), input.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<serde_json::Value> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The ranking fastembed's vectors give (they are unit vectors: cosine is the dot).
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let mut expected: Vec<(usize, f32)> = docs
        .iter()
        .enumerate()
        .map(|(pos, &i)| (pos, dot(&want[query], &want[i])))
        .collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(got.len(), 5);
    for (rank, (line, (pos, score))) in got.iter().zip(&expected).enumerate() {
        assert_eq!(line["rank"], rank + 1);
        assert_eq!(line["index"], *pos, "{got:?}");
        assert_eq!(line["text"], texts[docs[*pos]].as_str());
        let s = line["score"].as_f64().unwrap() as f32;
        assert!((s - score).abs() < 1e-5, "{s} vs {score}");
    }
    // --output-format without --output: the same records on stdout, in that format.
    let formatted = [&search[..], &["--output-format", "jsonl"]].concat();
    let again = embedkit(&formatted, input.as_bytes());
    assert!(again.status.success());
    assert_eq!(again.stdout, out.stdout);
}
