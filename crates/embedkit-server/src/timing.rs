//! Where a request's time went, as TEI's response headers say it (milliseconds):
//! `x-compute-time` and `x-total-time` (from arrival to answer), `x-queue-time`,
//! `x-tokenization-time` and `x-inference-time` (summed over the request's jobs). The
//! front middleware opens a scope per request; the jobs record into it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};

use crate::batcher::Answered;

#[derive(Default)]
struct Spent {
    ran: bool,
    queue: Duration,
    tokenization: Duration,
    inference: Duration,
}

tokio::task_local! {
    static SPENT: Arc<Mutex<Spent>>;
}

/// Runs `f` (a request's handling) with a scope its jobs record into, then adds the
/// timing headers to its answer when a job ran.
pub(crate) async fn scoped<F>(started: Instant, f: F) -> axum::response::Response
where
    F: std::future::Future<Output = axum::response::Response>,
{
    let spent = Arc::new(Mutex::new(Spent::default()));
    let mut response = SPENT.scope(spent.clone(), f).await;
    let s = spent.lock().unwrap_or_else(|e| e.into_inner());
    if s.ran {
        let total = started.elapsed();
        let headers = response.headers_mut();
        for (name, d) in [
            ("x-compute-time", total),
            ("x-total-time", total),
            ("x-queue-time", s.queue),
            ("x-tokenization-time", s.tokenization),
            ("x-inference-time", s.inference),
        ] {
            put(headers, name, d);
        }
    }
    response
}

fn put(headers: &mut HeaderMap, name: &'static str, d: Duration) {
    if let Ok(v) = HeaderValue::from_str(&d.as_millis().to_string()) {
        headers.insert(name, v);
    }
}

/// Adds a job's times to the request's (outside a request scope: nothing).
pub(crate) fn record(a: &Answered) {
    let _ = SPENT.try_with(|spent| {
        let mut s = spent.lock().unwrap_or_else(|e| e.into_inner());
        s.ran = true;
        s.queue += a.queue;
        s.tokenization += a.tokenization;
        s.inference += a.inference;
    });
}
