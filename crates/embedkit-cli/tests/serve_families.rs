//! One `embedkit serve` with a model of every family, each route's answers against
//! fastembed's committed outputs (`/embed_all` too), and `/tokenize` against the model's
//! own tokenizer.

use crate::common;
use crate::serve::oracle_edge;
use crate::serve_compat::{start_minilm_and_reranker, RERANKER};

use common::repo_root;
use common::server::*;
use serde_json::{json, Value};

/// Token-vector matrices from a late-interaction oracle file: `rows[i]` vectors of `dim`
/// for input i.
fn oracle_matrices(file: &str, dim: usize, rows: &[usize]) -> Vec<Vec<Vec<f32>>> {
    let mut flat = oracle_rows(file, dim).into_iter();
    rows.iter()
        .map(|&n| flat.by_ref().take(n).collect())
        .collect()
}

fn oracle_case(file: &str, name: &str) -> Value {
    let cases: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/expected").join(file)).unwrap(),
    )
    .unwrap();
    let list = cases.get("cases").cloned().unwrap_or(cases);
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no oracle case {name} in {file}"))
        .clone()
}

fn rows_of(case: &Value) -> Vec<usize> {
    case["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_u64().unwrap() as usize)
        .collect()
}

fn data_uri(image: &str) -> String {
    use base64::Engine;
    let bytes = std::fs::read(repo_root().join("tests/data/images").join(image)).unwrap();
    let mime = match image.rsplit('.').next().unwrap() {
        "jpg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => "image/png",
    };
    format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn matrices_diff(got: &Value, want: &[Vec<Vec<f32>>]) -> f32 {
    let got: Vec<Vec<Vec<f32>>> = serde_json::from_value(got.clone()).unwrap();
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(g, w)| {
            assert_eq!(g.len(), w.len(), "token rows");
            max_diff(g, w)
        })
        .fold(0.0, f32::max)
}

// One server, one model of every family, each answering with fastembed's outputs
// (tests/expected); a request's `model` picks among them.
#[test]
fn one_server_serves_every_family_with_fastembeds_outputs() {
    let args: Vec<String> = [
        (MINILM, minilm_dir()),
        ("Qdrant/bm25", tiny("bm25")),
        ("Xenova/ms-marco-MiniLM-L-6-v2", tiny("rerank-bert")),
        ("colbert-ir/colbertv2.0", tiny("colbert-128")),
        ("Qdrant/clip-ViT-B-32-vision", tiny("vision-clip-512")),
        ("Qdrant/colpali-v1.3-fp16", tiny("colpali")),
    ]
    .iter()
    .flat_map(|(name, dir)| ["--model".to_string(), model_arg(name, dir)])
    .collect();
    let server = start_args(&args, &[]);
    let port = server.port;
    let (texts, _) = oracle_edge();

    // Late interaction: documents and queries.
    for (case, is_query) in [("colbert-docs", false), ("colbert-queries", true)] {
        let c = oracle_case("late_cases.json", case);
        let want = oracle_matrices(c["data_file"].as_str().unwrap(), 128, &rows_of(&c));
        let (status, got) = post(
            port,
            "/embed_late",
            json!({"inputs": texts, "is_query": is_query}),
        );
        assert_eq!(status, 200, "{got}");
        let d = matrices_diff(&got, &want);
        assert!(d <= 1e-4, "{case}: max difference {d}");
    }

    // Images by data URI: the image model answers /embed (raw, as fastembed) and
    // /v1/embeddings when named.
    let c = oracle_case("image_cases.json", "image-clip");
    let images: Vec<String> = c["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| data_uri(i.as_str().unwrap()))
        .collect();
    let want = oracle_rows("image-clip.f32", 512);
    let (status, got) = post(
        port,
        "/embed",
        json!({"inputs": images, "normalize": false}),
    );
    assert_eq!(status, 200, "{got}");
    let got: Vec<Vec<f32>> = serde_json::from_value(got).unwrap();
    assert!(max_diff(&got, &want) <= 1e-4);
    let (status, v) = post(
        port,
        "/v1/embeddings",
        json!({"input": images[..2], "model": "Qdrant/clip-ViT-B-32-vision"}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], "Qdrant/clip-ViT-B-32-vision");
    let first: Vec<f32> = serde_json::from_value(v["data"][0]["embedding"].clone()).unwrap();
    assert!(max_diff(&[first], &want[..1]) <= 1e-4);

    // Multimodal: images and texts of the ColPali-architecture model.
    let c = oracle_case("multimodal_cases.json", "colpali-image");
    let want = oracle_matrices("colpali-image.f32", 128, &rows_of(&c));
    let imgs: Vec<String> = ["gray16.png", "photo.jpg"]
        .iter()
        .map(|i| data_uri(i))
        .collect();
    let (status, got) = post(port, "/embed_late", json!({"images": imgs}));
    assert_eq!(status, 200, "{got}");
    assert!(matrices_diff(&got, &want) <= 1e-4);
    let c = oracle_case("multimodal_cases.json", "colpali-text-b256");
    let want = oracle_matrices("colpali-text-b256.f32", 128, &rows_of(&c));
    let short: Vec<&String> = texts
        .iter()
        .filter(|t| t.split_whitespace().count() < 100)
        .collect();
    let (status, got) = post(
        port,
        "/embed_late",
        json!({"inputs": short, "model": "Qdrant/colpali-v1.3-fp16"}),
    );
    assert_eq!(status, 200, "{got}");
    assert!(matrices_diff(&got, &want) <= 1e-4);

    // Dense text still goes to the first dense model; a family's route refuses another
    // family's model by name.
    let (status, v) = post(port, "/embed", json!({"inputs": "hello world"}));
    assert_eq!(status, 200);
    assert_eq!(v[0].as_array().unwrap().len(), 384);
    let (status, e) = post(
        port,
        "/embed_sparse",
        json!({"inputs": "a", "model": "colbert-ir/colbertv2.0"}),
    );
    assert_eq!(status, 422);
    assert!(e["error"].as_str().unwrap().contains("/embed_late"), "{e}");
    let (status, e) = post(
        port,
        "/embed_late",
        json!({"images": ["not base64!"], "model": "Qdrant/colpali-v1.3-fp16"}),
    );
    assert_eq!(status, 422, "{e}");
    assert!(e["error"].as_str().unwrap().contains("images[0]"), "{e}");
    // Each model listed once, with its family and what it can do.
    let (_, _, body) = request(port, "GET", "/v1/models", b"");
    let list: Value = serde_json::from_slice(&body).unwrap();
    let caps: Vec<Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["capabilities"].clone())
        .collect();
    assert_eq!(
        caps,
        [
            json!(["dense_text", "dense_token_ids", "token_vectors", "tokens"]),
            json!(["sparse_text", "tokens"]),
            json!(["pair_scores"]),
            json!(["multi_vector_text", "tokens"]),
            json!(["dense_image"]),
            json!(["multi_vector_text", "multi_vector_image"]),
        ]
    );
    let kinds: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "dense",
            "sparse",
            "rerank",
            "late_interaction",
            "image",
            "multimodal"
        ]
    );
}

// A static model's /tokenize gives the ids it embeds: the ids embed as the text does.
#[test]
fn tokenize_is_the_served_models_own_tokenizer() {
    let server = start_model("minishlab/potion-base-8M", &tiny("static-256"), &[]);
    let port = server.port;
    let texts = [
        "hello world",
        "Qdrant is a vector database",
        "ünïcödé and emoji 🚀",
    ];
    let (status, toks) = post(port, "/tokenize", json!({"inputs": texts}));
    assert_eq!(status, 200, "{toks}");
    let ids = token_ids(&toks);
    let (_, by_text) = post(port, "/v1/embeddings", json!({"input": texts}));
    let (status, by_ids) = post(port, "/v1/embeddings", json!({"input": ids}));
    assert_eq!(status, 200, "{by_ids}");
    assert_eq!(by_ids["data"], by_text["data"]);
    let counted: usize = ids.iter().map(Vec::len).sum();
    assert_eq!(by_text["usage"]["prompt_tokens"], counted);
}

/// TEI's `/embed_all`: each text's vectors per token before pooling, fastembed's
/// `TokenEmbeddingsModel` values (tests/expected/token_cases.json), batched with other
/// requests or not; a model without them is refused, naming what it offers.
#[test]
fn embed_all_gives_the_token_vectors_of_fastembed() {
    let server = start_minilm_and_reranker();
    let port = server.port;
    let cases: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/expected/token_cases.json")).unwrap(),
    )
    .unwrap();
    let case = &cases["cases"][0];
    assert_eq!(case["model"], MINILM);
    let rows: Vec<usize> = serde_json::from_value(case["rows"].clone()).unwrap();
    let dim = case["dim"].as_u64().unwrap() as usize;
    let mut all =
        crate::common::server::oracle_rows(case["data_file"].as_str().unwrap(), dim).into_iter();
    let want: Vec<Vec<Vec<f32>>> = rows
        .iter()
        .map(|&n| all.by_ref().take(n).collect())
        .collect();
    let texts: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/data/edge_inputs.json")).unwrap(),
    )
    .unwrap();
    // Two requests at once, so that they may share a batch.
    let (a, b) = (texts[..10].to_vec(), texts[10..].to_vec());
    let send = |inputs: Vec<String>| {
        std::thread::spawn(move || post(port, "/embed_all", json!({ "inputs": inputs })))
    };
    let (ja, jb) = (send(a), send(b));
    let mut got: Vec<Vec<Vec<f32>>> = Vec::new();
    for j in [ja, jb] {
        let (status, v) = j.join().unwrap();
        assert_eq!(status, 200, "{v}");
        got.extend(serde_json::from_value::<Vec<Vec<Vec<f32>>>>(v).unwrap());
    }
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.len(), w.len(), "input {i}: tokens");
        let d = crate::common::server::max_diff(g, w);
        assert!(d <= 1e-5, "input {i}: max difference {d}");
    }

    let (status, v) = post(
        port,
        "/embed_all",
        json!({ "inputs": ["a"], "model": RERANKER }),
    );
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("/embed_all does not serve"),
        "{v}"
    );
    let (_, _, body) = crate::common::server::request(port, "GET", "/v1/models", b"");
    let models: Value = serde_json::from_slice(&body).unwrap();
    let minilm = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == MINILM)
        .unwrap();
    assert!(
        minilm["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("token_vectors")),
        "{minilm}"
    );
}

/// Multi-vector images make answers of gigabytes from small requests (ColPali gives
/// 1030 vectors of 128 for any image, a 1×1 PNG too): `--max-output-numbers` refuses a
/// request whose images could give more, with 413 and the number of images that fit,
/// before decoding any (bad images are refused for size, not as bad), for ColPali and
/// for ColModernVBert, whose vectors grow with an image's tiles.
#[test]
fn answers_of_image_vectors_are_bounded_before_decoding() {
    let colpali = "Qdrant/colpali-v1.3-fp16";
    let vbert = "Qdrant/colmodernvbert";
    let limit = 300_000;
    let server = start_args(
        &[
            "--model".into(),
            model_arg(colpali, &tiny("colpali")),
            "--model".into(),
            model_arg(vbert, &tiny("colmodernvbert")),
            "--max-output-numbers".into(),
            limit.to_string(),
        ],
        &[],
    );
    let port = server.port;
    let photo = data_uri("photo.jpg");
    let tiny_png = data_uri("tiny_1x1.png");
    for (model, case) in [
        (colpali, "colpali-image"),
        (vbert, "colmodernvbert-image-b1"),
    ] {
        // The most vectors fastembed gave one of the oracle's images.
        let most = *rows_of(&oracle_case("multimodal_cases.json", case))
            .iter()
            .max()
            .unwrap();
        let fit = limit / (most * 128);
        let (status, v) = post(
            port,
            "/embed_late",
            json!({"images": vec![tiny_png.clone(); fit + 1], "model": model}),
        );
        assert_eq!(status, 413, "{model}: {v}");
        let said = v["error"].as_str().unwrap();
        assert!(said.contains("max_output_numbers"), "{said}");
        assert!(
            said.contains(&format!("send at most {fit} images")),
            "{model}: {said}"
        );
        let (status, v) = post(
            port,
            "/embed_late",
            json!({"images": vec!["not an image"; fit + 1], "model": model}),
        );
        assert_eq!(status, 413, "{model}: {v}");
        // As many as fit are answered; a photo gives the most vectors.
        let mut images = vec![tiny_png.clone(); fit];
        images[0] = photo.clone();
        let (status, v) = post(
            port,
            "/embed_late",
            json!({"images": images, "model": model}),
        );
        assert_eq!(status, 200, "{model}: {v}");
        let answers = v.as_array().unwrap();
        assert_eq!(answers.len(), fit);
        assert_eq!(answers[0].as_array().unwrap().len(), most, "{model}");
    }
}
