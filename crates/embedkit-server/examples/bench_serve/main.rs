//! `make bench-serve`: `embedkit serve` side by side with a peer server, infinity
//! (`infinity-emb` from PyPI, its ONNX engine and its torch engine), one server at a time,
//! one load generator (this process, one thread, on the same machine).
//!
//! 0. **Calls**: the library per family, called with 1, 8 or 32 texts at a time (as a
//!    server batch holds the requests that arrived together), by `--threads` threads
//!    taking 1, 4 or 16 texts at a time on one single-threaded session each (the server's
//!    workers without HTTP: its ceiling when that few texts wait) and with all at once.
//! 1. **Peers**, all-MiniLM-L6-v2 fp32 (the same weights for every server): docs/s, p50 and
//!    p99 request latency and the cores the server used, at 1, 8 and 32 closed-loop clients
//!    sending 1, 8 or 32 texts per request, OpenAI's `/embeddings` body for every server;
//!    and the library's docs/s on the same texts and threads, in this process.
//! 2. **Families** (embedkit): the server's docs/s ÷ the library's, dense, sparse, late
//!    interaction and rerank, at 8 and 32 clients, 1 and 8 texts per request.
//! 3. **Mixed traffic**: one server with the dense, rerank and late-interaction models; a
//!    stream of 8 clients per route, alone, dense beside rerank, and all three at once.
//!
//! Before timing a server, its vectors for a few texts are compared with the library's: a
//! peer that pools or truncates otherwise would be measured on other work.
//!
//! Markdown goes to stdout. Arguments: `--bin PATH` (embedkit), `--model-dir DIR` (the
//! dense model for embedkit and the library), `--infinity PATH` (its `infinity_emb`; peers
//! are left out without it), `--onnx-dir DIR` and `--torch-dir DIR` (infinity's copies of
//! the model: it writes its optimized graph into the first; the second holds the
//! safetensors weights), `--texts FILE` (one text per line; the first 2000), `--threads N`
//! (2), `--seconds N` per cell (15), `--parts calls,peers,families,mixed`, `--variants`
//! (serve flags for the families and mixed parts, `;` between variants, a row or table
//! each: `--core-sharing side-by-side;--core-sharing together`),
//! `--family-models DIR` (the MiniLM-sized ColBERT and reranker of
//! `scripts/bench/family_models.py` for parts 2 and 3; without it, the tiny test models).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::sync::Arc;
use std::time::{Duration, Instant};

use embedkit::TextEmbedding;

#[path = "../common/mod.rs"]
mod common;
mod drive;
use common::families::{self, library_rate, load, root, routes, Route};
use common::{arg, machine, Client, Server};
use drive::{drive, warm, Run, Stream};

const DENSE: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// A free TCP port on 127.0.0.1 (for servers that cannot report the one they bound).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

/// `embedkit serve` with `models`, on the port it reports.
fn start_embedkit(bin: &str, threads: usize, models: &[(&str, &Path)]) -> (Server, u16) {
    start_embedkit_with(bin, threads, models, &[])
}

/// As `start_embedkit`, with more `serve` flags.
fn start_embedkit_with(
    bin: &str,
    threads: usize,
    models: &[(&str, &Path)],
    flags: &[&str],
) -> (Server, u16) {
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--port", "0", "--threads", &threads.to_string()])
        .args(flags)
        .args(["--max-concurrent-requests", "1024"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("EMBEDKIT_LOG", "warn");
    for (name, dir) in models {
        cmd.args(["--model", &format!("{name}={}", dir.display())]);
    }
    let mut child = cmd.spawn().expect("start embedkit serve");
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("embedkit serve exited before serving")
            .unwrap();
        if let Some(url) = line.strip_prefix("embedkit serving on http://") {
            break url.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (server, port)
}

/// infinity on `dir` with `engine` (`optimum`: ONNX Runtime; `torch`), mean pooling as the
/// model's sentence-transformers config says; its log goes to `target/bench/serve/`.
fn start_infinity(
    exe: &str,
    engine: &str,
    dir: &Path,
    rt: &tokio::runtime::Runtime,
) -> (Server, u16) {
    let port = free_port();
    let log_dir = root().join("target/bench/serve");
    std::fs::create_dir_all(&log_dir).unwrap();
    let log = std::fs::File::create(log_dir.join(format!("infinity-{engine}.log"))).unwrap();
    let child = Command::new(exe)
        .args([
            "v2",
            "--model-id",
            &dir.display().to_string(),
            "--engine",
            engine,
        ])
        .args([
            "--device",
            "cpu",
            "--pooling-method",
            "mean",
            "--port",
            &port.to_string(),
        ])
        .env("HF_HUB_OFFLINE", "1")
        .env("INFINITY_ANONYMOUS_USAGE_STATS", "0")
        .env("DO_NOT_TRACK", "1")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start infinity_emb");
    let mut server = Server(child);
    let started = Instant::now();
    loop {
        if rt.block_on(common::wait_ready(port, "/health", Duration::from_secs(2))) {
            break;
        }
        let exited = server.0.try_wait().ok().flatten();
        assert!(
            exited.is_none() && started.elapsed() < Duration::from_secs(900),
            "infinity ({engine}) did not start ({exited:?}): see target/bench/serve/infinity-{engine}.log"
        );
    }
    (server, port)
}

/// The largest difference between the server's vectors for `texts` and the library's.
fn vector_gap(
    port: u16,
    path: &str,
    model: &str,
    texts: &[String],
    expected: &[Vec<f32>],
    rt: &tokio::runtime::Runtime,
) -> f32 {
    let reply = rt
        .block_on(
            Client::new(port, None).post(path, &families::body(path, model, texts, 0, texts.len())),
        )
        .expect("ask for vectors");
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let v: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON vectors");
    let got: Vec<Vec<f32>> = v["data"]
        .as_array()
        .expect("OpenAI's data list")
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    assert_eq!(got.len(), expected.len());
    got.iter()
        .zip(expected)
        .flat_map(|(g, e)| {
            assert_eq!(g.len(), e.len(), "vector width");
            g.iter().zip(e).map(|(a, b)| (a - b).abs())
        })
        .fold(0.0, f32::max)
}

/// A server to measure: how to start it, and the route and model name its requests use.
struct Peer<'a> {
    label: String,
    path: &'static str,
    model: String,
    start: Box<dyn Fn() -> (Server, u16) + 'a>,
}

struct Cell {
    clients: usize,
    texts: usize,
}

fn list(flag: &str, default: &str) -> Vec<usize> {
    arg(flag, default)
        .split(',')
        .map(|n| n.trim().parse().expect("a list of numbers"))
        .collect()
}

fn main() {
    let bin = arg("--bin", "target/dist/embedkit");
    let threads: usize = arg("--threads", "2").parse().unwrap();
    let secs: f64 = arg("--seconds", "15").parse().unwrap();
    let parts = arg("--parts", "calls,peers,families,mixed");
    let texts_file = PathBuf::from(arg("--texts", "target/bench/corpus.txt"));
    let docs: Vec<String> = std::fs::read_to_string(&texts_file)
        .unwrap_or_else(|e| panic!("{}: {e} (make bench-serve writes it)", texts_file.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(2000)
        .map(str::to_string)
        .collect();
    let docs = Arc::new(docs);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cells: Vec<Cell> = list("--sizes", "1,8,32")
        .into_iter()
        .flat_map(|texts| {
            list("--clients", "1,8,32")
                .into_iter()
                .map(move |clients| Cell { clients, texts })
        })
        .collect();
    println!("Measured on {}; `--threads {threads}` for embedkit, the library and ONNX Runtime; {} texts of {}; {secs} s per cell.\n", machine(), docs.len(), texts_file.display());

    if parts.contains("calls") {
        calls(threads, &docs);
    }
    if parts.contains("peers") {
        peers(&bin, threads, secs, &docs, &cells, &rt);
    }
    // `--variants "--workers 1 --time-slice-ms 0;--workers 2"`: serve flags to compare.
    let variants = arg("--variants", "");
    if parts.contains("families") {
        families_table(&bin, threads, secs, &variants, &docs, &rt);
    }
    if parts.contains("mixed") {
        for flags in variants.split(';') {
            let flags: Vec<&str> = flags.split_whitespace().collect();
            mixed(&bin, threads, secs, &flags, &docs, &rt);
        }
    }
}

/// `--family-models DIR`: the MiniLM-sized late-interaction and rerank models
/// (`scripts/bench/family_models.py`) instead of the tiny test models.
fn sized() -> Option<PathBuf> {
    let dir = arg("--family-models", "");
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// The folder a route's model comes from (two routes may serve one model name).
fn folder(r: &Route) -> String {
    r.dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The families' routes, or only those `--routes /embed_sparse,/rerank` names (to
/// re-measure one family without the others' minutes).
fn picked_routes() -> Vec<Route> {
    let only = arg("--routes", "");
    routes(sized().as_deref())
        .into_iter()
        .filter(|r| only.is_empty() || only.split(',').any(|p| p.trim() == r.path))
        .collect()
}

/// Part 0: the library alone, per family, on all texts at once (what the server is
/// divided by) and as a server can call it: one call per k texts in order (the requests
/// that arrived together), and one thread per `threads` taking k texts at a time, each on
/// one single-threaded session (the server's workers, one per thread by default, with 8
/// or 32 clients' texts in flight, without HTTP): the most a server can give when only
/// that many texts wait.
fn calls(threads: usize, docs: &[String]) {
    let docs = &docs[..docs.len().min(1000)];
    println!(
        "### The library, called k texts at a time ({} texts in order; docs/s, ÷ all at once)\n",
        docs.len()
    );
    // The server's default: one worker per thread.
    println!("| route | all at once | one call per 1 | per 8 | per 32 | {threads} workers, 1 per call | 4 per call | 16 per call |");
    println!("|---|---|---|---|---|---|---|---|");
    for route in picked_routes() {
        let run = families::embedder(&route, threads);
        let all = families::best_rate(docs.len(), || run(docs));
        let mut row = format!("| `{}` ({}) | {all:.0} |", route.path, folder(&route));
        for k in [1, 8, 32] {
            let rate = families::best_rate(docs.len(), || {
                docs.chunks(k).for_each(&run);
            });
            row += &format!(" {rate:.0} ({:.2}) |", rate / all);
        }
        for k in [1, 4, 16] {
            let rate = families::best_rate(docs.len(), || side_by_side(&run, docs, k, threads));
            row += &format!(" {rate:.0} ({:.2}) |", rate / all);
        }
        println!("{row}");
    }
    println!();
}

/// `workers` threads taking `k` texts at a time in order, each call on one
/// single-threaded session, as the server's workers run batches side by side.
fn side_by_side(run: &families::Embedder, docs: &[String], k: usize, workers: usize) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(k, std::sync::atomic::Ordering::Relaxed);
                if i >= docs.len() {
                    break;
                }
                let chunk = &docs[i..(i + k).min(docs.len())];
                embedkit::unstable::on_one_session(|| run(chunk));
            });
        }
    });
}

/// Part 1: embedkit and infinity's engines on the same dense model.
fn peers(
    bin: &str,
    threads: usize,
    secs: f64,
    docs: &Arc<Vec<String>>,
    cells: &[Cell],
    rt: &tokio::runtime::Runtime,
) {
    let model_dir = PathBuf::from(arg("--model-dir", ""));
    assert!(
        model_dir.is_dir(),
        "--model-dir {} is not a folder",
        model_dir.display()
    );
    let dense = Route {
        path: "/v1/embeddings",
        model: DENSE,
        dir: model_dir.clone(),
    };
    let library = library_rate(&dense, docs, threads);
    let probe: Vec<String> = std::iter::once("hello world".to_string())
        .chain(docs.iter().take(7).cloned())
        .collect();
    let expected = TextEmbedding::builder(DENSE)
        .load_options(load(&model_dir, threads))
        .build()
        .unwrap()
        .embed(&probe, None)
        .unwrap();

    let mut servers: Vec<Peer> = vec![Peer {
        label: "embedkit serve".into(),
        path: "/v1/embeddings",
        model: DENSE.into(),
        start: Box::new(|| start_embedkit(bin, threads, &[(DENSE, &model_dir)])),
    }];
    let infinity = arg("--infinity", "");
    for (engine, flag) in [("optimum", "--onnx-dir"), ("torch", "--torch-dir")] {
        let Ok(dir) = PathBuf::from(arg(flag, "")).canonicalize() else {
            continue;
        };
        if infinity.is_empty() {
            continue;
        }
        let exe = infinity.clone();
        let kind = if engine == "optimum" { "ONNX" } else { "torch" };
        servers.push(Peer {
            label: format!("infinity 0.0.78, {kind} engine"),
            path: "/embeddings",
            // infinity names a model served from a folder by the folder's path.
            model: dir.display().to_string(),
            start: Box::new(move || start_infinity(&exe, engine, &dir, rt)),
        });
    }

    let mut results: Vec<Vec<Run>> = Vec::new();
    let mut gaps = Vec::new();
    for peer in &servers {
        eprintln!("bench-serve: {}", peer.label);
        let (server, port) = (peer.start)();
        gaps.push(vector_gap(
            port,
            peer.path,
            &peer.model,
            &probe,
            &expected,
            rt,
        ));
        let stream = |clients, texts| Stream::new(peer.path, &peer.model, clients, texts);
        warm(rt, port, server.pid(), docs, &[stream(8, 8)]);
        let runs = cells
            .iter()
            .map(|c| {
                rt.block_on(drive(
                    port,
                    server.pid(),
                    docs.clone(),
                    &[stream(c.clients, c.texts)],
                    secs,
                ))
            })
            .collect();
        results.push(runs);
        drop(server);
    }

    println!("### Peers: all-MiniLM-L6-v2 fp32, OpenAI's `/embeddings`\n");
    println!("docs/s (p50 / p99 ms; server cores used). The library, in this process on the same texts and threads: **{library:.0} docs/s**.\n");
    let mut head = "| texts per request × clients |".to_string();
    for peer in &servers {
        head += &format!(" {} |", peer.label);
    }
    head += " embedkit ÷ library | embedkit ÷ best infinity |";
    println!("{head}");
    println!("|{}", "---|".repeat(servers.len() + 3));
    for (i, c) in cells.iter().enumerate() {
        let mut row = format!("| {} × {} |", c.texts, c.clients);
        for runs in results.iter_mut() {
            let r = &mut runs[i];
            let (p50, p99) = (r.p(0, 0.5), r.p(0, 0.99));
            row += &format!(
                " {:.0} ({p50:.0} / {p99:.0}; {:.2}){} |",
                r.rate(0),
                r.cores,
                r.failures()
            );
        }
        let ours = results[0][i].rate(0);
        let best_peer = results[1..]
            .iter()
            .map(|r| r[i].rate(0))
            .fold(0.0, f64::max);
        row += &format!(" {:.2} |", ours / library);
        row += &if best_peer > 0.0 {
            format!(" {:.2} |", ours / best_peer)
        } else {
            " — |".into()
        };
        println!("{row}");
    }
    let gap_text: Vec<String> = servers
        .iter()
        .zip(&gaps)
        .map(|(peer, g)| format!("{} {g:.1e}", peer.label))
        .collect();
    println!(
        "\nLargest difference from the library's vectors on 8 texts: {}.\n",
        gap_text.join(", ")
    );
}

/// Part 2: embedkit's server ÷ library per family.
fn families_table(
    bin: &str,
    threads: usize,
    secs: f64,
    variants: &str,
    docs: &Arc<Vec<String>>,
    rt: &tokio::runtime::Runtime,
) {
    let routes: Vec<Route> = picked_routes();
    println!("### Families: embedkit serve ÷ the library (docs/s; rerank: pairs/s)\n");
    println!("| route | model | serve flags | library | 1 text × 8 | 8 texts × 8 | 1 text × 32 | 8 texts × 32 |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &routes {
        if !r.dir.is_dir() {
            println!(
                "| `{}` | {} | | {} is missing | | | | |",
                r.path,
                r.model,
                r.dir.display()
            );
            continue;
        }
        let library = library_rate(r, docs, threads);
        // One row per variant, each divided by the same library run.
        for flags in variants.split(';') {
            let flags: Vec<&str> = flags.split_whitespace().collect();
            let (server, port) = start_embedkit_with(bin, threads, &[(r.model, &r.dir)], &flags);
            let stream = |clients, texts| Stream::new(r.path, r.model, clients, texts);
            warm(rt, port, server.pid(), docs, &[stream(8, 8)]);
            let mut row = format!(
                "| `{}` | {} ({}) | {} | {library:.0} |",
                r.path,
                r.model,
                folder(r),
                flags.join(" ")
            );
            for (texts, clients) in [(1, 8), (8, 8), (1, 32), (8, 32)] {
                let mut run = rt.block_on(drive(
                    port,
                    server.pid(),
                    docs.clone(),
                    &[stream(clients, texts)],
                    secs,
                ));
                row += &format!(
                    " **{:.2}** ({:.0}; p99 {:.0} ms){} |",
                    run.rate(0) / library,
                    run.rate(0),
                    run.p(0, 0.99),
                    run.failures()
                );
            }
            println!("{row}");
        }
    }
    println!();
}

/// Part 3: streams for three models on one server, alone and together.
/// Part 3, the server started with `flags` besides the usual ones.
fn mixed(
    bin: &str,
    threads: usize,
    secs: f64,
    flags: &[&str],
    docs: &Arc<Vec<String>>,
    rt: &tokio::runtime::Runtime,
) {
    let all = routes(sized().as_deref());
    let picked: Vec<&Route> = ["/embed", "/rerank", "/embed_late"]
        .iter()
        .filter_map(|p| all.iter().find(|r| r.path == *p))
        .collect();
    if let Some(r) = picked.iter().find(|r| !r.dir.is_dir()) {
        println!(
            "### Mixed traffic: skipped, {} is missing\n",
            r.dir.display()
        );
        return;
    }
    let models: Vec<(&str, &Path)> = picked.iter().map(|r| (r.model, r.dir.as_path())).collect();
    let (server, port) = start_embedkit_with(bin, threads, &models, flags);
    let streams: Vec<Stream> = picked
        .iter()
        .map(|r| Stream::new(r.path, r.model, 8, 8))
        .collect();
    warm(rt, port, server.pid(), docs, &streams);
    let go = |s: &[Stream]| rt.block_on(drive(port, server.pid(), docs.clone(), s, secs));
    let mut alone: Vec<Run> = streams
        .iter()
        .map(|s| go(std::slice::from_ref(s)))
        .collect();
    let mut pair = go(&streams[..2]);
    let mut three = go(&streams);
    println!(
        "### Mixed traffic: one server, three models, a stream of 8 clients × 8 texts per route{}\n",
        if flags.is_empty() { String::new() } else { format!(", `{}`", flags.join(" ")) }
    );
    println!("Fair share: a stream's docs/s alone ÷ the streams running. Dense p99 beside rerank ÷ alone: **{:.2}**.\n", pair.p(0, 0.99) / alone[0].p(0, 0.99));
    println!(
        "| stream | alone docs/s (p99 ms) | with the other two: docs/s (p99 ms) | ÷ fair share |"
    );
    println!("|---|---|---|---|");
    for (k, s) in streams.iter().enumerate() {
        let fair = alone[k].rate(0) / streams.len() as f64;
        println!(
            "| `{}` | {:.0} ({:.0}) | {:.0} ({:.0}){} | **{:.2}** |",
            s.path,
            alone[k].rate(0),
            alone[k].p(0, 0.99),
            three.rate(k),
            three.p(k, 0.99),
            three.failures(),
            three.rate(k) / fair
        );
    }
    println!("\nDense beside rerank: dense {:.0} docs/s (p99 {:.0} ms), rerank {:.0} pairs/s (p99 {:.0} ms); server cores used, all three: {:.2}.\n", pair.rate(0), pair.p(0, 0.99), pair.rate(1), pair.p(1, 0.99), three.cores);
    drop(server);
}
