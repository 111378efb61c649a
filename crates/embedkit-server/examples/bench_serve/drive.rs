//! Closed-loop clients on some routes at once, and what they measured.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::families;
use crate::common::{cpu_seconds, percentile, Client};

/// Some closed-loop clients on one route, each sending `texts` texts per request.
#[derive(Clone)]
pub(crate) struct Stream {
    pub path: String,
    pub model: String,
    pub texts: usize,
    pub clients: usize,
}

impl Stream {
    pub(crate) fn new(path: &str, model: &str, clients: usize, texts: usize) -> Stream {
        Stream {
            path: path.into(),
            model: model.into(),
            texts,
            clients,
        }
    }
}

/// 3 s of `streams`, not counted: the first batches of each shape allocate.
pub(crate) fn warm(
    rt: &tokio::runtime::Runtime,
    port: u16,
    pid: u32,
    docs: &Arc<Vec<String>>,
    streams: &[Stream],
) {
    rt.block_on(drive(port, pid, docs.clone(), streams, 3.0));
}

#[derive(Default)]
pub(crate) struct Tally {
    docs: usize,
    latencies: Vec<f64>,
    failures: BTreeMap<String, usize>,
}

/// What one run of some streams measured.
pub(crate) struct Run {
    pub tallies: Vec<Tally>,
    pub seconds: f64,
    pub cores: f64,
}

impl Run {
    pub fn rate(&self, stream: usize) -> f64 {
        self.tallies[stream].docs as f64 / self.seconds
    }
    pub fn p(&mut self, stream: usize, p: f64) -> f64 {
        percentile(&mut self.tallies[stream].latencies, p)
    }
    /// Failed requests, which make a cell's figures meaningless: printed beside it.
    pub fn failures(&self) -> String {
        let all: Vec<String> = self
            .tallies
            .iter()
            .flat_map(|t| t.failures.iter().map(|(k, n)| format!("{k} ×{n}")))
            .collect();
        if all.is_empty() {
            String::new()
        } else {
            format!(" (failed: {})", all.join(", "))
        }
    }
}

/// Runs `streams` at once against the server on `port` (process `pid`) for `secs`.
pub(crate) async fn drive(
    port: u16,
    pid: u32,
    docs: Arc<Vec<String>>,
    streams: &[Stream],
    secs: f64,
) -> Run {
    let tallies = Arc::new(Mutex::new(
        (0..streams.len())
            .map(|_| Tally::default())
            .collect::<Vec<_>>(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (k, stream) in streams.iter().enumerate() {
        for c in 0..stream.clients {
            let (docs, tallies, stop, s) =
                (docs.clone(), tallies.clone(), stop.clone(), stream.clone());
            tasks.push(tokio::spawn(async move {
                let mut client = Client::new(port, None);
                // Clients start at different texts and move on by a prime stride.
                let mut i = c * 997 + k * 7919;
                while !stop.load(Ordering::Relaxed) {
                    let body = families::body(&s.path, &s.model, &docs, i, s.texts);
                    i += s.texts * 31;
                    let t = Instant::now();
                    let reply = client.post(&s.path, &body).await;
                    let ms = t.elapsed().as_secs_f64() * 1e3;
                    let mut tallies = tallies.lock().unwrap();
                    let tally = &mut tallies[k];
                    match reply {
                        Ok(r) if r.status == 200 => {
                            tally.docs += s.texts;
                            tally.latencies.push(ms);
                        }
                        Ok(r) => *tally.failures.entry(r.status.to_string()).or_default() += 1,
                        Err(e) => *tally.failures.entry(e.kind().to_string()).or_default() += 1,
                    }
                }
            }));
        }
    }
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    // Requests in flight at the stop finish and count: the rate is over the time they took.
    for t in tasks {
        let _ = t.await;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let cores = (cpu_seconds(pid) - cpu0) / seconds;
    let tallies = std::mem::take(&mut *tallies.lock().unwrap());
    Run {
        tallies,
        seconds,
        cores,
    }
}
