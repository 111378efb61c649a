//! Prometheus metrics of the server: requests by route and status, latency, batch
//! sizes, batches by the cores they held, inference time, queue depth, texts and
//! tokens processed, jobs dropped.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub batch_size: Histogram,
    pub batches: IntCounterVec,
    pub inference_seconds: Histogram,
    pub queue_depth: IntGauge,
    pub texts: IntCounter,
    pub tokens: IntCounter,
    pub jobs_dropped: IntCounter,
    pub in_progress: IntGauge,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "embedkit_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("embedkit_request_duration_seconds", "Request latency")
                .buckets(prometheus::exponential_buckets(0.001, 2.0, 16)?),
            &["route"],
        )?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("embedkit_batch_size", "Texts per inference call")
                .buckets(prometheus::exponential_buckets(1.0, 2.0, 12)?),
        )?;
        let batches = IntCounterVec::new(
            Opts::new(
                "embedkit_batches_total",
                "Inference calls by the cores they held: all, or one beside other batches",
            ),
            &["cores"],
        )?;
        let inference_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "embedkit_inference_duration_seconds",
                "Time per inference call",
            )
            .buckets(prometheus::exponential_buckets(0.001, 2.0, 16)?),
        )?;
        let queue_depth = IntGauge::new("embedkit_queue_depth", "Jobs waiting for inference")?;
        let texts = IntCounter::new("embedkit_texts_total", "Texts processed")?;
        let tokens = IntCounter::new("embedkit_tokens_total", "Tokens of the texts processed")?;
        let jobs_dropped = IntCounter::new(
            "embedkit_jobs_dropped_total",
            "Jobs dropped before inference because their client had gone",
        )?;
        registry.register(Box::new(jobs_dropped.clone()))?;
        let in_progress = IntGauge::new(
            "embedkit_requests_in_progress",
            "Requests with work (POST) holding a concurrency permit",
        )?;
        registry.register(Box::new(in_progress.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(batches.clone()))?;
        // Both series from the start, so that a scrape sees zeros rather than nothing.
        batches.with_label_values(&["all"]);
        batches.with_label_values(&["one"]);
        registry.register(Box::new(inference_seconds.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(texts.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            batch_size,
            batches,
            inference_seconds,
            queue_depth,
            texts,
            tokens,
            jobs_dropped,
            in_progress,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail on I/O; a bad metric name would be a build bug.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}
