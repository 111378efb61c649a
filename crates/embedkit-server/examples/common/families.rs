//! One model per text family, as the load examples serve them, and the library's own
//! throughput on the same model, texts and threads: what a server's docs/s is divided by.

use std::path::{Path, PathBuf};
use std::time::Instant;

use embedkit::{LoadOptions, SparseTextEmbedding, TextCrossEncoder, TextEmbedding};
use serde_json::json;

/// The query every rerank request and library call scores its texts against.
pub const QUERY: &str = "what is a vector database";

/// A TEI route, the model served on it and the model's folder.
pub struct Route {
    pub path: &'static str,
    pub model: &'static str,
    pub dir: PathBuf,
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Dense and sparse are real models (../shared/models). Late interaction and rerank are
/// seeded, as no package carries real ones: with `sized` (the folder
/// `scripts/bench/family_models.py` writes), all-MiniLM-L6-v2's real encoder under a
/// seeded ColBERT projection or rerank head, so that they cost what a small model of
/// their family costs; otherwise the tiny test models (`make test-models`), whose compute
/// is too small for a server-versus-library ratio to mean anything. With `sized`, sparse
/// is also measured on the encoder under a seeded SPLADE head (splade-tiny's encoder is
/// tiny beside its vocabulary head, which no real SPLADE model's is).
pub fn routes(sized: Option<&Path>) -> Vec<Route> {
    let r = root();
    let (late, rerank) = match sized {
        Some(dir) => (dir.join("colbert-minilm"), dir.join("rerank-minilm")),
        None => (
            r.join("target/test-models/colbert-128"),
            r.join("target/test-models/rerank-bert"),
        ),
    };
    let mut routes = vec![
        Route {
            path: "/embed",
            model: "sentence-transformers/all-MiniLM-L6-v2",
            dir: r.join("../shared/models/all-MiniLM-L6-v2-fp32"),
        },
        Route {
            path: "/embed_sparse",
            model: "prithivida/Splade_PP_en_v1",
            dir: r.join("../shared/models/splade-tiny"),
        },
    ];
    routes.extend(sized.map(|dir| Route {
        path: "/embed_sparse",
        model: "prithivida/Splade_PP_en_v1",
        dir: dir.join("splade-minilm"),
    }));
    routes.extend([
        Route {
            path: "/embed_late",
            model: "colbert-ir/colbertv2.0",
            dir: late,
        },
        Route {
            path: "/rerank",
            model: "Xenova/ms-marco-MiniLM-L-6-v2",
            dir: rerank,
        },
    ]);
    routes
}

/// A request's body on `path` with the `n` texts from `i` on (rerank: `n` texts against
/// [`QUERY`]; OpenAI's routes name the model).
pub fn body(path: &str, model: &str, docs: &[String], i: usize, n: usize) -> String {
    let texts: Vec<&String> = (0..n).map(|k| &docs[(i + k) % docs.len()]).collect();
    match path {
        "/rerank" => json!({"query": QUERY, "texts": texts}),
        "/embeddings" | "/v1/embeddings" => json!({"model": model, "input": texts}),
        _ => json!({"inputs": texts}),
    }
    .to_string()
}

pub fn load(dir: &Path, threads: usize) -> LoadOptions {
    let mut l = LoadOptions::default();
    l.cache.specific_model_path = Some(dir.to_path_buf());
    l.runtime.threads = Some(threads);
    l
}

/// A call of the library on `route`'s model: it embeds (or, for rerank, scores against
/// [`QUERY`]) the texts it is given.
pub type Embedder = Box<dyn Fn(&[String]) + Sync>;

/// `route`'s model loaded in this process, as an [`Embedder`].
pub fn embedder(route: &Route, threads: usize) -> Embedder {
    let opts = load(&route.dir, threads);
    match route.path {
        "/embed" | "/embeddings" | "/v1/embeddings" => {
            let m = TextEmbedding::builder(route.model)
                .load_options(opts)
                .build()
                .unwrap();
            Box::new(move |docs| drop(m.embed(docs, None).unwrap()))
        }
        "/embed_sparse" => {
            let m = SparseTextEmbedding::builder(route.model)
                .load_options(opts)
                .build()
                .unwrap();
            Box::new(move |docs| drop(m.embed(docs, None).unwrap()))
        }
        "/embed_late" => {
            let m = embedkit::LateInteractionTextEmbedding::builder(route.model)
                .load_options(opts)
                .build()
                .unwrap();
            Box::new(move |docs| drop(m.embed(docs, None).unwrap()))
        }
        _ => {
            let m = TextCrossEncoder::builder(route.model)
                .load_options(opts)
                .build()
                .unwrap();
            Box::new(move |docs| drop(m.rerank(QUERY, docs, None).unwrap()))
        }
    }
}

/// The best of 3 timed runs of `run` (after a warm-up), as `docs` per second.
pub fn best_rate(docs: usize, run: impl Fn()) -> f64 {
    run(); // warm
    (0..3)
        .map(|_| {
            let t = Instant::now();
            run();
            docs as f64 / t.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

/// The library's docs/s for `route`'s family on `docs` (its default batch size; the best
/// of 3 runs after a warm-up).
pub fn library_rate(route: &Route, docs: &[String], threads: usize) -> f64 {
    let run = embedder(route, threads);
    best_rate(docs.len(), || run(docs))
}
