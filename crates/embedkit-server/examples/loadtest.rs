//! Load and fault test of `embedkit serve` (`make loadtest`): one model of each text
//! family loaded at once, an API key on.
//!
//! 1. Per route, 64 keep-alive clients for `--route-seconds`, one paragraph per request
//!    (rerank: a query and 4 paragraphs): docs/s against the library's own throughput on
//!    the same paragraphs, same model and threads, measured in this process first.
//! 2. Mixed: 64 clients for `--seconds`, a quarter on each route; every 8th client hangs
//!    up mid-request on every 4th request (half a body, or a whole one without waiting).
//!    Latency p50/p99 per route, the server's RSS before and after, and every status
//!    that was not 200 (there should be none).
//!
//! Markdown goes to stdout. Arguments: `--bin PATH` (the embedkit binary),
//! `--seconds N` (60), `--route-seconds N` (15), `--threads N` (2).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;
use common::families::{self, library_rate, root, routes, Route};
use common::{arg, machine, percentile, rss_mb, Client, Server};

const KEY: &str = "loadtest-key";
const CLIENTS: usize = 64;

/// One request's body for `route`, from paragraph `i` on: one paragraph (rerank: 4).
fn body(route: &str, docs: &[String], i: usize) -> (String, usize) {
    let n = if route == "/rerank" { 4 } else { 1 };
    (families::body(route, "", docs, i, n), n)
}

/// Sends a request and hangs up: half the body, or all of it without reading.
async fn hang_up(port: u16, path: &str, body: &str, half: bool) {
    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Authorization: Bearer {KEY}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let sent = if half { &body[..body.len() / 2] } else { body };
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(sent.as_bytes()).await;
    }
}

#[derive(Default)]
struct Tally {
    docs: usize,
    latencies: BTreeMap<&'static str, Vec<f64>>,
    statuses: BTreeMap<String, usize>,
}

/// `CLIENTS` clients on `pick(client)`'s routes for `secs`.
async fn drive(
    port: u16,
    docs: Arc<Vec<String>>,
    secs: u64,
    pick: fn(usize) -> &'static str,
    faults: bool,
) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (docs, tally, stop) = (docs.clone(), tally.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let route = pick(c);
            let mut client = Client::new(port, Some(KEY));
            let mut i = c * 7;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let (b, n) = body(route, &docs, i);
                if faults && c % 8 == 7 && i % 4 == 0 {
                    hang_up(port, route, &b, i % 8 == 0).await;
                    continue;
                }
                let t = Instant::now();
                let status = client.post(route, &b).await.map(|r| r.status);
                let ms = t.elapsed().as_secs_f64() * 1e3;
                let mut tally = tally.lock().unwrap();
                match status {
                    Ok(200) => {
                        tally.docs += n;
                        tally.latencies.entry(route).or_default().push(ms);
                    }
                    Ok(s) => *tally.statuses.entry(format!("{route} {s}")).or_default() += 1,
                    Err(e) => {
                        *tally
                            .statuses
                            .entry(format!("{route} {}", e.kind()))
                            .or_default() += 1
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    Arc::try_unwrap(tally)
        .ok()
        .map(|m| m.into_inner().unwrap())
        .unwrap_or_default()
}

fn main() {
    let bin = arg("--bin", "target/release/embedkit");
    let secs: u64 = arg("--seconds", "60").parse().unwrap();
    let route_secs: u64 = arg("--route-seconds", "15").parse().unwrap();
    let threads: usize = arg("--threads", "2").parse().unwrap();
    let corpus = std::fs::read_to_string(root().join("tests/data/corpus.txt")).unwrap();
    let docs: Vec<String> = corpus
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    // `--only /embed,/rerank`: a subset of the routes (their models alone are served).
    let only = arg("--only", "");
    let routes: Vec<Route> = routes(None)
        .into_iter()
        .filter(|r| only.is_empty() || only.split(',').any(|p| p == r.path))
        .collect();
    for r in &routes {
        assert!(r.dir.is_dir(), "{} is missing", r.dir.display());
    }
    let library: Vec<f64> = routes
        .iter()
        .map(|r| library_rate(r, &docs, threads))
        .collect();

    let mut cmd = Command::new(&bin);
    cmd.args(["serve", "--port", "0", "--threads", &threads.to_string()])
        .args(["--max-concurrent-requests", "256", "--api-key", KEY])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("EMBEDKIT_LOG", "warn");
    // `--server-args "--max-wait-ms 10"`: more server flags, to compare settings.
    cmd.args(arg("--server-args", "").split_whitespace());
    for r in &routes {
        cmd.args(["--model", &format!("{}={}", r.model, r.dir.display())]);
    }
    let mut child = cmd.spawn().expect("start the server");
    let stderr = child.stderr.take().unwrap();
    let pid = child.id();
    let server = Server(child);
    let port: u16 = {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stderr).lines();
        let port = loop {
            let line = lines.next().expect("the server exited").unwrap();
            if let Some(url) = line.strip_prefix("embedkit serving on http://") {
                break url.rsplit(':').next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        port
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let docs = Arc::new(docs);
    let rss_start = rss_mb(pid, "VmRSS:");

    println!("### Per route: 64 clients, {route_secs} s each, against the library\n");
    println!(
        "| route | model | server docs/s | library docs/s | server / library | p50 ms | p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    const PICKS: [fn(usize) -> &'static str; 4] = [
        |_| "/embed",
        |_| "/embed_sparse",
        |_| "/embed_late",
        |_| "/rerank",
    ];
    for (k, r) in routes.iter().enumerate() {
        let pick = ["/embed", "/embed_sparse", "/embed_late", "/rerank"]
            .iter()
            .position(|p| *p == r.path)
            .unwrap_or(0);
        let mut t = rt.block_on(drive(port, docs.clone(), route_secs, PICKS[pick], false));
        let rate = t.docs as f64 / route_secs as f64;
        let lat = t.latencies.entry(r.path).or_default();
        println!(
            "| `{}` | {} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} |",
            r.path,
            r.model,
            rate,
            library[k],
            rate / library[k],
            percentile(lat, 0.5),
            percentile(lat, 0.99),
        );
        if !t.statuses.is_empty() {
            println!("|   unexpected: {:?} | | | | | | |", t.statuses);
        }
    }
    let rss_mid = rss_mb(pid, "VmRSS:");
    let mixed = if routes.len() == 4 { secs } else { 0 };
    let pick: fn(usize) -> &'static str =
        |c| ["/embed", "/embed_sparse", "/embed_late", "/rerank"][c % 4];
    // Two halves, so the RSS between them shows whether memory still grows.
    let mut t = rt.block_on(drive(port, docs.clone(), mixed / 2, pick, true));
    let rss_half = rss_mb(pid, "VmRSS:");
    let second = rt.block_on(drive(port, docs.clone(), mixed - mixed / 2, pick, true));
    for (route, mut l) in second.latencies {
        t.latencies.entry(route).or_default().append(&mut l);
    }
    for (k, n) in second.statuses {
        *t.statuses.entry(k).or_default() += n;
    }
    let rss_end = rss_mb(pid, "VmRSS:");
    let peak = rss_mb(pid, "VmHWM:");
    println!("\n### Mixed: 64 clients, {secs} s, API key on, every 8th client hanging up on every 4th request\n");
    println!("| route | requests answered | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    for r in &routes {
        let lat = t.latencies.entry(r.path).or_default();
        let n = lat.len();
        println!(
            "| `{}` | {n} | {:.1} | {:.1} |",
            r.path,
            percentile(lat, 0.5),
            percentile(lat, 0.99)
        );
    }
    println!(
        "\nServer RSS: {rss_start:.0} MB after start, {rss_mid:.0} MB after the per-route runs, \
         {rss_half:.0} MB half-way through the mixed run, {rss_end:.0} MB after it (peak \
         {peak:.0} MB). Unexpected statuses: {}.",
        if t.statuses.is_empty() {
            "none".to_string()
        } else {
            format!("{:?}", t.statuses)
        }
    );
    let metrics = rt.block_on(async {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let req = format!(
            "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {KEY}\r\n\
             Connection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    });
    let dropped = metrics
        .lines()
        .find(|l| l.starts_with("embedkit_jobs_dropped_total"))
        .unwrap_or("embedkit_jobs_dropped_total ?");
    println!("Jobs dropped because their client had gone: `{dropped}`.");
    let status = Command::new(&bin).arg("--version").output();
    println!(
        "\nMeasured on {}, {threads} ONNX Runtime threads; the clients run on the same \
         machine ({}).",
        machine(),
        status
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    );
    drop(server);
}
