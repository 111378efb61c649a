//! Other servers' routes, for their clients: TEI's `/similarity` (also at `POST /`, where
//! huggingface_hub's `InferenceClient.sentence_similarity` posts), the Cohere- and
//! Jina-shaped `/v1/rerank`, and TEI's `--max-client-batch-size`.

use std::process::Command;

use serde_json::{json, Value};

use crate::common::repo_root;
use crate::common::server::{
    max_diff, minilm_dir, model_arg, oracle_rows, post, start_args, tiny, Server, MINILM,
};

pub(crate) const RERANKER: &str = "Xenova/ms-marco-MiniLM-L-6-v2";

/// A server with the real MiniLM and the seeded reranker.
pub(crate) fn start_minilm_and_reranker() -> Server {
    start_args(
        &[
            "--model".into(),
            model_arg(MINILM, &minilm_dir()),
            "--model".into(),
            model_arg(RERANKER, &tiny("rerank-bert")),
        ],
        &[],
    )
}

pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

fn floats(v: &Value) -> Vec<f32> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn similarity_and_cohere_rerank_answer_as_their_clients_expect() {
    let server = start_args(
        &[
            "--model".into(),
            model_arg(MINILM, &minilm_dir()),
            "--model".into(),
            model_arg(RERANKER, &tiny("rerank-bert")),
            "--max-client-batch-size".into(),
            "8".into(),
        ],
        &[],
    );
    let port = server.port;
    let source = "how do vector databases index embeddings";
    let sentences = [
        "an index of embeddings",
        "a recipe for bread",
        "vector search engines",
    ];

    // /similarity: the cosine of the source's vector to each sentence's, as /embed gives them.
    let (status, vectors) = post(
        port,
        "/embed",
        json!({ "inputs": [source, sentences[0], sentences[1], sentences[2]] }),
    );
    assert_eq!(status, 200, "{vectors}");
    let vectors: Vec<Vec<f32>> = serde_json::from_value(vectors).unwrap();
    let want: Vec<f32> = vectors[1..]
        .iter()
        .map(|v| cosine(&vectors[0], v))
        .collect();
    let body = json!({ "inputs": { "source_sentence": source, "sentences": sentences } });
    for path in ["/similarity", "/"] {
        let (status, got) = post(port, path, body.clone());
        assert_eq!(status, 200, "{path}: {got}");
        let got = floats(&got);
        assert_eq!(got.len(), 3, "{path}");
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{path}: {got:?} vs {want:?}");
        }
    }
    // The root still embeds TEI's `/embed` body.
    let (status, v) = post(port, "/", json!({ "inputs": "hello" }));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v[0].as_array().unwrap().len(), 384);
    let (status, v) = post(
        port,
        "/similarity",
        json!({ "inputs": { "source_sentence": "a", "sentences": [] } }),
    );
    assert_eq!(status, 422, "{v}");
    let (status, v) = post(
        port,
        "/similarity",
        json!({ "inputs": { "source_sentence": "a", "sentences": ["b"] },
                "parameters": { "prompt_name": "query" } }),
    );
    assert_eq!(
        status, 422,
        "an unsupported prompt is refused, not ignored: {v}"
    );

    // /v1/rerank: Cohere's request and answer; scores are /rerank's through a sigmoid.
    let docs = [
        "Paris is the capital of France.",
        "Bread needs flour.",
        "France's capital city",
    ];
    let (status, raw) = post(
        port,
        "/rerank",
        json!({ "query": "capital of France", "texts": docs }),
    );
    assert_eq!(status, 200, "{raw}");
    let raw: Vec<(usize, f32)> = raw
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap() as usize,
                r["score"].as_f64().unwrap() as f32,
            )
        })
        .collect();
    let (status, v) = post(
        port,
        "/v1/rerank",
        json!({ "model": RERANKER, "query": "capital of France",
                "documents": [docs[0], {"text": docs[1]}, docs[2]],
                "top_n": 2, "return_documents": true }),
    );
    assert_eq!(status, 200, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(v["model"], RERANKER);
    assert!(v["id"].is_string());
    for (r, (index, score)) in results.iter().zip(&raw) {
        assert_eq!(r["index"].as_u64().unwrap() as usize, *index);
        let relevance = r["relevance_score"].as_f64().unwrap() as f32;
        assert!(
            (relevance - 1.0 / (1.0 + (-score).exp())).abs() < 1e-6,
            "{r}"
        );
        assert_eq!(r["document"]["text"], docs[*index]);
    }
    let (_, v) = post(
        port,
        "/v1/rerank",
        json!({ "query": "q", "documents": docs }),
    );
    assert_eq!(v["results"].as_array().unwrap().len(), 3, "{v}");
    assert!(v["results"][0].get("document").is_none(), "{v}");
    let (status, _) = post(
        port,
        "/v1/rerank",
        json!({ "query": "q", "documents": docs, "top_n": 0 }),
    );
    assert_eq!(status, 422);
    let (status, _) = post(
        port,
        "/v1/rerank",
        json!({ "query": "q", "documents": docs, "model": MINILM }),
    );
    assert_eq!(status, 422, "a dense model does not rerank");

    // TEI's /decode: the ids /tokenize gives back to their text.
    let (status, tokens) = post(
        port,
        "/tokenize",
        json!({ "inputs": ["Hello world", "a b"] }),
    );
    assert_eq!(status, 200, "{tokens}");
    let ids: Vec<Vec<u64>> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_u64().unwrap())
                .collect()
        })
        .collect();
    let (status, v) = post(port, "/decode", json!({ "ids": ids }));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!(["hello world", "a b"]), "MiniLM lowercases");
    let (_, v) = post(
        port,
        "/decode",
        json!({ "ids": ids[0], "skip_special_tokens": false }),
    );
    assert_eq!(v, json!(["[CLS] hello world [SEP]"]));
    let (status, v) = post(port, "/decode", json!({ "ids": [[1, 99999999]] }));
    assert_eq!(status, 422, "an id outside the vocabulary: {v}");
    let (status, _) = post(port, "/decode", json!({ "ids": [-1] }));
    assert_eq!(status, 422);

    // TEI's timing headers, in milliseconds, on answers that ran a model.
    let (status, headers, _) = crate::common::server::request(
        port,
        "POST",
        "/embed",
        json!({ "inputs": ["a", "b"] }).to_string().as_bytes(),
    );
    assert_eq!(status, 200);
    let header = |name: &str| -> u64 {
        headers
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {headers}"))
            .trim()
            .parse()
            .unwrap()
    };
    let total = header("x-compute-time");
    assert_eq!(header("x-total-time"), total);
    assert!(
        header("x-queue-time") + header("x-tokenization-time") + header("x-inference-time")
            <= total + 2
    );
    let (_, headers, _) = crate::common::server::request(port, "GET", "/health", b"");
    assert!(!headers.contains("x-compute-time"), "{headers}");

    // TEI's `truncate: false`: an input longer than the model takes is refused (413),
    // named; without it, truncated.
    let long = "word ".repeat(3000);
    let (status, v) = post(
        port,
        "/embed",
        json!({ "inputs": ["short", long], "truncate": false }),
    );
    assert_eq!(status, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("inputs[1]"), "{v}");
    let (status, _) = post(port, "/embed", json!({ "inputs": ["short", long] }));
    assert_eq!(status, 200);
    let (status, _) = post(
        port,
        "/embed",
        json!({ "inputs": ["short"], "truncate": false }),
    );
    assert_eq!(status, 200);
    let (status, v) = post(
        port,
        "/similarity",
        json!({ "inputs": { "source_sentence": "a", "sentences": ["b", long] },
                "parameters": { "truncate": false } }),
    );
    assert_eq!(status, 413, "{v}");

    // TEI's name for the per-request input limit.
    let (status, v) = post(port, "/embed", json!({ "inputs": vec!["x"; 9] }));
    assert_eq!(status, 422, "{v}");

    // Cohere's SDK, both clients (v1 posts /v1/rerank, v2 /v2/rerank).
    let python = repo_root().join(".venv-oracle/bin/python");
    assert!(python.is_file(), "{} is missing", python.display());
    let script = r#"
import sys, cohere
url = f"http://127.0.0.1:{sys.argv[1]}"
docs = sys.argv[2:]
v1 = cohere.Client(api_key="unused", base_url=url).rerank(
    model="Xenova/ms-marco-MiniLM-L-6-v2", query="capital of France", documents=docs, top_n=2,
    return_documents=True)
v2 = cohere.ClientV2(api_key="unused", base_url=url).rerank(
    model="Xenova/ms-marco-MiniLM-L-6-v2", query="capital of France", documents=docs, top_n=2)
for r in (v1, v2):
    print(";".join(f"{x.index}:{x.relevance_score!r}" for x in r.results))
print(v1.results[0].document.text)
"#;
    let out = Command::new(&python)
        .args(["-c", script, &port.to_string()])
        .args(docs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for line in &lines[..2] {
        let got: Vec<(usize, f32)> = line
            .split(';')
            .map(|p| {
                let (i, s) = p.split_once(':').unwrap();
                (i.parse().unwrap(), s.parse().unwrap())
            })
            .collect();
        for ((i, s), (index, score)) in got.iter().zip(&raw) {
            assert_eq!(i, index, "{stdout}");
            assert!((s - 1.0 / (1.0 + (-score).exp())).abs() < 1e-6, "{stdout}");
        }
    }
    assert_eq!(lines[2], docs[raw[0].0]);

    // huggingface_hub's client, given the server's URL.
    let script = r#"
import sys
from huggingface_hub import InferenceClient
hf = InferenceClient(model=f"http://127.0.0.1:{sys.argv[1]}")
got = hf.sentence_similarity(sys.argv[2], other_sentences=sys.argv[3:])
print(",".join(repr(float(x)) for x in got))
"#;
    let out = Command::new(python)
        .args(["-c", script, &port.to_string(), source])
        .args(sentences)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<f32> = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
}

/// TEI's `prompt_name`: the model folder's sentence-transformers prompts, put before each
/// text on every text route (so `query: hello` and `hello` with the `query` prompt are one
/// input); an unknown name, or an unknown `truncation_direction`, is refused, not ignored.
#[test]
fn prompt_name_puts_the_models_prompt_before_each_text() {
    let dir = crate::common::tmpdir("prompts-model");
    for entry in std::fs::read_dir(minilm_dir()).unwrap() {
        let entry = entry.unwrap();
        std::os::unix::fs::symlink(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    std::fs::write(
        dir.join("config_sentence_transformers.json"),
        r#"{"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": null}"#,
    )
    .unwrap();
    let server = start_args(&["--model".into(), model_arg(MINILM, &dir)], &[]);
    let port = server.port;
    let texts = ["hello world", "vector search in practice"];
    let prompted: Vec<String> = texts.iter().map(|t| format!("query: {t}")).collect();

    let (status, with) = post(
        port,
        "/embed",
        json!({ "inputs": texts, "prompt_name": "query" }),
    );
    assert_eq!(status, 200, "{with}");
    let (_, by_hand) = post(port, "/embed", json!({ "inputs": prompted }));
    let (_, plain) = post(port, "/embed", json!({ "inputs": texts }));
    assert_eq!(with, by_hand);
    assert_ne!(with, plain);

    let (status, tokens) = post(
        port,
        "/tokenize",
        json!({ "inputs": texts[0], "prompt_name": "query" }),
    );
    assert_eq!(status, 200, "{tokens}");
    let (_, by_hand) = post(port, "/tokenize", json!({ "inputs": prompted[0] }));
    assert_eq!(tokens, by_hand);

    let (status, sim) = post(
        port,
        "/similarity",
        json!({ "inputs": { "source_sentence": texts[0], "sentences": [texts[1]] },
                "parameters": { "prompt_name": "query", "truncation_direction": "Right" } }),
    );
    assert_eq!(status, 200, "{sim}");
    let (_, by_hand) = post(
        port,
        "/similarity",
        json!({ "inputs": { "source_sentence": prompted[0], "sentences": [prompted[1]] } }),
    );
    assert_eq!(sim, by_hand);

    let (status, v) = post(
        port,
        "/embed",
        json!({ "inputs": texts, "prompt_name": "document" }),
    );
    assert_eq!(status, 422, "{v}");
    let said = v["error"].as_str().unwrap();
    assert!(said.contains("passage, query"), "{said}");
    let (status, v) = post(
        port,
        "/embed",
        json!({ "inputs": texts, "truncation_direction": "Middle" }),
    );
    assert_eq!(
        status, 422,
        "an unknown direction is refused, not ignored: {v}"
    );
    // /tokenize truncates nothing (as TEI), so either direction is the same.
    let (status, v) = post(
        port,
        "/tokenize",
        json!({ "inputs": texts, "truncation_direction": "Left" }),
    );
    assert_eq!(status, 200, "{v}");
}

/// TEI's `truncation_direction`: `Left` keeps the end of each over-long text. Its vectors
/// are fastembed's with its tokenizer set to cut at the left (tests/expected's
/// minilm-fp32-left; input 6 is 21 kB); absent and `Right` are the model's own cut. The
/// field reaches the model on `/similarity`, `/embed_all` and `/rerank` too.
#[test]
fn truncation_direction_left_keeps_the_end_of_long_texts_as_fastembed_does() {
    let server = start_minilm_and_reranker();
    let port = server.port;
    let (texts, right) = crate::serve::oracle_edge();
    let left = oracle_rows("minilm-fp32-left.f32", 384);
    let vectors = |body: Value| -> Vec<Vec<f32>> {
        let (status, v) = post(port, "/embed", body);
        assert_eq!(status, 200, "{v}");
        serde_json::from_value(v).unwrap()
    };

    let got = vectors(json!({ "inputs": texts, "truncation_direction": "Left" }));
    let diff = max_diff(&got, &left);
    assert!(diff <= 1e-5, "left: |diff| {diff} from fastembed's");
    assert!(
        max_diff(&got[6..7], &right[6..7]) > 1e-2,
        "the long text's end is not its start"
    );
    for body in [
        json!({ "inputs": texts }),
        json!({ "inputs": texts, "truncation_direction": "right" }),
    ] {
        let diff = max_diff(&vectors(body), &right);
        assert!(diff <= 1e-5, "right: |diff| {diff} from fastembed's");
    }

    // /similarity: the cosine of the left-cut source to a short sentence.
    let (status, sim) = post(
        port,
        "/similarity",
        json!({ "inputs": { "source_sentence": texts[6], "sentences": [texts[3]] },
                "parameters": { "truncation_direction": "Left" } }),
    );
    assert_eq!(status, 200, "{sim}");
    let want = cosine(&left[6], &left[3]);
    let sim = sim[0].as_f64().unwrap() as f32;
    assert!(
        (sim - want).abs() <= 1e-5,
        "similarity {sim}, fastembed's vectors {want}"
    );

    // /embed_all: the token vectors of the window each side keeps.
    let token_vectors = |direction: &str| -> Value {
        let (status, v) = post(
            port,
            "/embed_all",
            json!({ "inputs": [texts[6]], "truncation_direction": direction }),
        );
        assert_eq!(status, 200, "{v}");
        v
    };
    let (l, r) = (token_vectors("Left"), token_vectors("Right"));
    assert_eq!(l[0].as_array().unwrap().len(), 512);
    assert_eq!(r[0].as_array().unwrap().len(), 512);
    assert_ne!(l, r);

    // /rerank: a long document scores by its end when cut at the left; Right is the default.
    let long = format!(
        "{} a recipe for sourdough bread",
        "vector search engines ".repeat(200)
    );
    let score = |direction: Option<&str>| -> f64 {
        let mut body = json!({ "query": "bread", "texts": [long] });
        if let Some(d) = direction {
            body["truncation_direction"] = json!(d);
        }
        let (status, v) = post(port, "/rerank", body);
        assert_eq!(status, 200, "{v}");
        v[0]["score"].as_f64().unwrap()
    };
    assert_eq!(score(None), score(Some("Right")));
    assert_ne!(score(Some("Left")), score(None));
}

/// TEI's `/tokenize`: every token of the text (none cut at the model's 512), each with the
/// bytes of the text it stands for, special tokens only with `add_special_tokens`. The
/// expected tokens are Hugging Face `tokenizers` 0.23 (Python) on MiniLM's tokenizer.json,
/// its character offsets turned into UTF-8 byte offsets as TEI reports them.
#[test]
fn tokenize_gives_teis_tokens_with_byte_offsets() {
    let server = start_args(&["--model".into(), model_arg(MINILM, &minilm_dir())], &[]);
    let port = server.port;
    let text = "ünïcödé and emoji 🚀 naïveté";
    let want = [
        (27260, "ünïcödé", 0, 11),
        (1998, "and", 12, 15),
        (7861, "em", 16, 18),
        (29147, "oj", 18, 20),
        (2072, "i", 20, 21),
        (100, "🚀", 22, 26),
        (15743, "naïve", 27, 33),
        (2618, "té", 33, 36),
    ];
    let plain: Vec<Value> = want
        .iter()
        .map(|(id, t, start, stop)| {
            json!({ "id": id, "text": t, "special": false, "start": start, "stop": stop })
        })
        .collect();
    let special = |id: u32, t: &str| json!({ "id": id, "text": t, "special": true, "start": null, "stop": null });
    let mut with_special = vec![special(101, "[CLS]")];
    with_special.extend(plain.iter().cloned());
    with_special.push(special(102, "[SEP]"));

    let (status, v) = post(port, "/tokenize", json!({ "inputs": text }));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!([with_special]));
    let (status, v) = post(
        port,
        "/tokenize",
        json!({ "inputs": [text, text], "add_special_tokens": false }),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!([plain, plain]));

    // Past the model's 512 tokens: every token, as TEI counts them for chunking.
    let long = "word ".repeat(700);
    let (status, v) = post(port, "/tokenize", json!({ "inputs": long }));
    assert_eq!(status, 200);
    let row = v[0].as_array().unwrap();
    assert_eq!(row.len(), 702, "700 words and [CLS], [SEP]");
    assert_eq!(row[700]["start"], 3495);
    assert_eq!(row[700]["stop"], 3499);
    let (status, v) = post(
        port,
        "/tokenize",
        json!({ "inputs": "a", "add_special_tokens": "no" }),
    );
    assert_eq!(status, 422, "{v}");
}
