//! The int8 tier (`Precision::Int8`): its quality floors on the real all-MiniLM-L6-v2 and
//! SPLADE files against fastembed's vectors, the rewrite on the seeded model of every
//! family, and the cache of rewritten graphs. Nothing here is timed.

use crate::common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::{cases, expected, inputs, model_dir, tmp_dir};
use embedkit::{
    ImageEmbedding, ImageInput, LateInteractionTextEmbedding, Precision, SparseTextEmbedding,
    TextCrossEncoder, TextEmbedding,
};

/// A writable copy of a model folder: the int8 file is cached beside the source.
fn copy_model(symbolic: &str, name: &str) -> common::TmpDir {
    let src = model_dir(symbolic);
    let dst = tmp_dir(&format!("int8-{name}"));
    copy_tree(&src, &dst);
    dst
}

fn copy_tree(src: &Path, dst: &Path) {
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let to = dst.join(path.file_name().unwrap());
        if path.is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            copy_tree(&path, &to);
        } else {
            std::fs::copy(&path, &to).unwrap();
        }
    }
}

/// The one `.onnx` source file of a model folder (at any depth).
fn source_onnx(dir: &Path) -> PathBuf {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "onnx")
                && !p.to_string_lossy().contains(".int8-")
            {
                found.push(p);
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// The cached int8 graphs, beside the model's source file.
fn int8_files(dir: &Path) -> Vec<PathBuf> {
    let beside = source_onnx(dir).parent().unwrap().to_path_buf();
    let mut files: Vec<PathBuf> = std::fs::read_dir(beside)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.to_string_lossy().contains(".int8-") && p.extension().is_some_and(|e| e == "onnx")
        })
        .collect();
    files.sort();
    files
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Each row's 10 nearest other rows by cosine.
fn neighbours(rows: &[Vec<f32>]) -> Vec<HashSet<usize>> {
    (0..rows.len())
        .map(|i| {
            let mut sims: Vec<(f32, usize)> = (0..rows.len())
                .filter(|&j| j != i)
                .map(|j| (cosine(&rows[i], &rows[j]), j))
                .collect();
            sims.sort_by(|a, b| b.0.total_cmp(&a.0));
            sims.iter().take(10).map(|s| s.1).collect()
        })
        .collect()
}

/// Mean cosine, worst cosine and the share of top-10 neighbours kept.
fn quality(reference: &[Vec<f32>], got: &[Vec<f32>]) -> (f32, f32, f32) {
    assert_eq!(reference.len(), got.len());
    let cos: Vec<f32> = reference
        .iter()
        .zip(got)
        .map(|(a, b)| cosine(a, b))
        .collect();
    let mean = cos.iter().sum::<f32>() / cos.len() as f32;
    let worst = cos.iter().copied().fold(f32::INFINITY, f32::min);
    let (a, b) = (neighbours(reference), neighbours(got));
    let kept = a
        .iter()
        .zip(&b)
        .map(|(x, y)| x.intersection(y).count())
        .sum::<usize>() as f32
        / (10 * a.len()) as f32;
    (mean, worst, kept)
}

/// Whether the int8 tier uses 7-bit weights here: the library's rule (x86-64 without
/// VNNI), restated, since a test cannot see inside the rewrite.
fn seven_bit_weights() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        !(std::arch::is_x86_feature_detected!("avx512vnni")
            || std::arch::is_x86_feature_detected!("avxvnni"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn spearman(a: &[f32], b: &[f32]) -> f32 {
    let rank = |v: &[f32]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0f32; v.len()];
        for (k, &i) in idx.iter().enumerate() {
            r[i] = k as f32;
        }
        r
    };
    let (ra, rb) = (rank(a), rank(b));
    let n = a.len() as f32;
    let d2: f32 = ra.iter().zip(&rb).map(|(x, y)| (x - y) * (x - y)).sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

#[test]
fn minilm_int8_keeps_the_quality_floors_against_fastembed() {
    let all = cases();
    let case = all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "minilm-fp32-corpus")
        .expect("case minilm-fp32-corpus");
    // fastembed's vectors of the 1000 corpus paragraphs on the fp32 files.
    let reference = expected(case);
    let dir = copy_model("shared:all-MiniLM-L6-v2-fp32", "minilm");
    let model = TextEmbedding::builder("sentence-transformers/all-MiniLM-L6-v2")
        .specific_model_path(&dir)
        .precision(Precision::Int8)
        .threads(2)
        .build()
        .unwrap();
    let docs = inputs("corpus");
    let got: Vec<Vec<f32>> = model.embed(&docs, Some(16)).unwrap();
    let (mean, worst, kept) = quality(&reference, &got);
    eprintln!(
        "MiniLM int8 vs fastembed fp32: mean cos {mean:.4}, worst {worst:.4}, top-10 kept {:.1}%",
        kept * 100.0
    );
    assert!(mean >= 0.995, "mean cosine {mean}");
    assert!(worst >= 0.98, "worst cosine {worst}");
    // Where ONNX Runtime's int8 products would saturate (x86-64 without VNNI) the tier
    // uses 7-bit weights, which keep a little less: 92.0% measured on an AVX2-only AMD
    // EPYC (2026-12-06), 93.3% with 8-bit weights on AVX-512 VNNI.
    let floor = if seven_bit_weights() { 0.91 } else { 0.92 };
    assert!(kept >= floor, "top-10 neighbours kept {kept}");
    // And it is not the exact graph: int8 vectors differ from fastembed's.
    assert!(
        mean < 0.99999,
        "int8 vectors equal the exact ones: nothing was quantized"
    );
    assert_eq!(
        int8_files(&dir).len(),
        1,
        "one cached int8 graph beside the source"
    );
}

#[test]
fn splade_int8_keeps_the_top_terms() {
    let dir = copy_model("shared:splade-tiny", "splade");
    let docs: Vec<String> = inputs("corpus").into_iter().take(200).collect();
    let build = |p| {
        SparseTextEmbedding::builder("prithivida/Splade_PP_en_v1")
            .specific_model_path(&dir)
            .precision(p)
            .build()
            .unwrap()
    };
    let exact = build(Precision::Exact).embed(&docs, None).unwrap();
    let int8 = build(Precision::Int8).embed(&docs, None).unwrap();
    let top = |e: &embedkit::SparseEmbedding| -> HashSet<u32> {
        let mut pairs: Vec<(f32, u32)> = e
            .values
            .iter()
            .copied()
            .zip(e.indices.iter().copied())
            .collect();
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        pairs.iter().take(20).map(|p| p.1).collect()
    };
    let agree: f32 = exact
        .iter()
        .zip(&int8)
        .map(|(a, b)| {
            let (ta, tb) = (top(a), top(b));
            ta.intersection(&tb).count() as f32 / ta.len().max(1) as f32
        })
        .sum::<f32>()
        / docs.len() as f32;
    eprintln!("SPLADE int8: top-20 terms agree {:.1}%", agree * 100.0);
    assert!(agree >= 0.90, "top-20 terms agree {agree}");
    assert!(
        exact.iter().zip(&int8).any(|(a, b)| a.values != b.values),
        "nothing was quantized"
    );
}

#[test]
fn seeded_dense_model_rewrite_and_cache() {
    let dir = copy_model("tiny:mean-384-trunc128", "dense");
    let name = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2";
    let docs: Vec<String> = inputs("corpus").into_iter().take(64).collect();
    let build = |p| {
        TextEmbedding::builder(name)
            .specific_model_path(&dir)
            .precision(p)
            .build()
            .unwrap()
    };
    let exact = build(Precision::Exact).embed(&docs, None).unwrap();
    let int8 = build(Precision::Int8).embed(&docs, None).unwrap();
    let (mean, worst, _) = quality(&exact, &int8);
    assert!(mean >= 0.995 && worst >= 0.98, "mean {mean}, worst {worst}");
    let files = int8_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let cached = std::fs::read(&files[0]).unwrap();
    let modified = std::fs::metadata(&files[0]).unwrap().modified().unwrap();

    // A second load reuses the file as it is.
    let again = build(Precision::Int8).embed(&docs, None).unwrap();
    assert_eq!(again, int8);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        modified
    );

    // A damaged cached file (cut short) is noticed and rebuilt, the same bytes again.
    std::fs::write(&files[0], &cached[..cached.len() / 2]).unwrap();
    let rebuilt = build(Precision::Int8).embed(&docs, None).unwrap();
    assert_eq!(rebuilt, int8);
    assert_eq!(std::fs::read(&files[0]).unwrap(), cached);
    // No temporary or calibration file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(source_onnx(&dir).parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn threads_quantizing_one_model_at_once_all_succeed() {
    let dir = copy_model("tiny:mean-384-trunc128", "threads");
    let name = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2";
    let docs = vec!["one model, quantized by four threads at once".to_string()];
    // The barrier lines the threads up so their builds overlap.
    let start = std::sync::Barrier::new(4);
    let vectors: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    TextEmbedding::builder(name)
                        .specific_model_path(&dir)
                        .precision(Precision::Int8)
                        .build()
                        .and_then(|m| m.embed(&docs, None))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().expect("every thread's build succeeds"))
            .collect()
    });
    assert!(vectors.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(int8_files(&dir).len(), 1);
}

#[test]
fn a_changed_source_gets_a_new_int8_file_that_replaces_the_old() {
    let dir = copy_model("tiny:mean-384-trunc128", "changed");
    let name = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2";
    let build = || {
        TextEmbedding::builder(name)
            .specific_model_path(&dir)
            .precision(Precision::Int8)
            .build()
            .unwrap()
    };
    build();
    let first = int8_files(&dir);
    // A user's own files beside the model, named like ours but not ours: never removed.
    let source = source_onnx(&dir);
    let beside = source.parent().unwrap().to_path_buf();
    let stem = source.file_stem().unwrap().to_string_lossy().into_owned();
    let theirs: Vec<PathBuf> = [
        "int8-mine.onnx",
        "int8-q9-latest.onnx",
        "int8-q3.onnx.sha256",
    ]
    .iter()
    .map(|suffix| beside.join(format!("{stem}.{suffix}")))
    .collect();
    for (i, path) in theirs.iter().enumerate() {
        std::fs::write(path, format!("the user's file {i}")).unwrap();
    }
    // Another valid source: the same graph with one more (unknown, ignored) field.
    let mut bytes = std::fs::read(&source).unwrap();
    // Field 1000 (not in ONNX's ModelProto), varint 0: a valid, different file.
    bytes.extend_from_slice(&[0xC0, 0x3E, 0]);
    std::fs::write(&source, bytes).unwrap();
    build();
    for (i, path) in theirs.iter().enumerate() {
        assert_eq!(
            std::fs::read_to_string(path).ok(),
            Some(format!("the user's file {i}")),
            "{} was removed or changed",
            path.display()
        );
        std::fs::remove_file(path).unwrap();
    }
    let second = int8_files(&dir);
    assert_eq!(first.len(), 1);
    assert_eq!(
        second.len(),
        1,
        "the new source's file replaces the old one: {second:?}"
    );
    assert_ne!(first, second, "a new file keyed by the new source digest");
    let stamps = std::fs::read_dir(second[0].parent().unwrap())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".onnx.sha256")
        })
        .count();
    assert_eq!(stamps, 1, "the old file's digest record goes with it");
}

#[test]
fn seeded_colbert_keeps_maxsim_rankings() {
    let dir = copy_model("tiny:colbert-128", "colbert");
    let build = |p| {
        LateInteractionTextEmbedding::builder("colbert-ir/colbertv2.0")
            .specific_model_path(&dir)
            .precision(p)
            .build()
            .unwrap()
    };
    let corpus = inputs("corpus");
    let docs: Vec<String> = corpus.iter().take(100).cloned().collect();
    let queries: Vec<String> = corpus[100..110]
        .iter()
        .map(|t| t.split_whitespace().take(8).collect::<Vec<_>>().join(" "))
        .collect();
    let (exact, int8) = (build(Precision::Exact), build(Precision::Int8));
    let rank = |m: &LateInteractionTextEmbedding| -> Vec<Vec<usize>> {
        let d = m.embed(&docs, None).unwrap();
        let q = m.query_embed(&queries, None).unwrap();
        q.iter()
            .map(|q| {
                let mut scores: Vec<(f32, usize)> = d
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        let sim = q.dot(&d.t());
                        (
                            sim.rows()
                                .into_iter()
                                .map(|r| r.fold(f32::MIN, |a, &b| a.max(b)))
                                .sum(),
                            i,
                        )
                    })
                    .collect();
                scores.sort_by(|a, b| b.0.total_cmp(&a.0));
                scores.iter().take(10).map(|s| s.1).collect()
            })
            .collect()
    };
    let (a, b) = (rank(&exact), rank(&int8));
    let agree = a
        .iter()
        .zip(&b)
        .map(|(x, y)| x.iter().filter(|i| y.contains(i)).count())
        .sum::<usize>() as f32
        / (10 * a.len()) as f32;
    assert!(agree >= 0.95, "MaxSim top-10 agreement {agree}");
    assert_eq!(int8_files(&dir).len(), 1);
}

#[test]
fn seeded_cross_encoder_keeps_score_order() {
    let dir = copy_model("tiny:rerank-bert", "rerank");
    let build = |p| {
        TextCrossEncoder::builder("Xenova/ms-marco-MiniLM-L-6-v2")
            .specific_model_path(&dir)
            .precision(p)
            .build()
            .unwrap()
    };
    let corpus = inputs("corpus");
    let docs: Vec<String> = corpus.iter().take(40).cloned().collect();
    let (exact, int8) = (build(Precision::Exact), build(Precision::Int8));
    for query in [
        "how do plants make energy",
        "history of the canal",
        "a recipe with potatoes",
    ] {
        let a = exact.rerank(query, &docs, None).unwrap();
        let b = int8.rerank(query, &docs, None).unwrap();
        let rho = spearman(&a, &b);
        assert!(rho >= 0.99, "{query}: Spearman {rho}");
    }
    assert_eq!(int8_files(&dir).len(), 1);
}

#[test]
fn seeded_image_encoder_is_quantized() {
    let dir = copy_model("tiny:vision-clip-512", "image");
    let images: Vec<ImageInput> = std::fs::read_dir(common::repo_root().join("tests/data/images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "png" || e == "jpg" || e == "jpeg")
        })
        .map(ImageInput::Path)
        .collect();
    assert!(images.len() >= 2, "test images missing");
    let build = |p| {
        ImageEmbedding::builder("Qdrant/clip-ViT-B-32-vision")
            .specific_model_path(&dir)
            .precision(p)
            .build()
            .unwrap()
    };
    let exact = build(Precision::Exact).embed(images.clone(), None).unwrap();
    let int8 = build(Precision::Int8).embed(images, None).unwrap();
    let (mean, worst, _) = quality(&exact, &int8);
    assert!(mean >= 0.995 && worst >= 0.98, "mean {mean}, worst {worst}");
    assert_eq!(int8_files(&dir).len(), 1);
}

#[test]
fn a_model_without_matrix_products_runs_as_it_is() {
    // Static embeddings are a lookup table: nothing to quantize, same vectors.
    let dir = copy_model("tiny:static-256", "static");
    let build = |p| {
        TextEmbedding::builder("minishlab/potion-base-8M")
            .specific_model_path(&dir)
            .precision(p)
            .build()
            .unwrap()
    };
    let docs = inputs("edge");
    assert_eq!(
        build(Precision::Int8).embed(&docs, None).unwrap(),
        build(Precision::Exact).embed(&docs, None).unwrap()
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".int8-")), "{names:?}");
}
