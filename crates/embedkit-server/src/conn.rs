//! The accept loop. hyper's own rather than `axum::serve`, which has no setting for how
//! long a connection may stay silent: here a connection with no bytes read or written
//! for the idle timeout is closed — before its first request as after its last one, in
//! HTTP/1 and HTTP/2 alike. A connection with no request in flight for the idle timeout
//! is closed too, bytes or not: a client that trickles a request's headers (slow loris)
//! or HTTP/2 frames that never make a request cannot hold it open. Open connections are
//! capped: one beyond the cap gets a 503 and is closed. HTTP/2 is off unless asked for.
//! Shutdown stops accepting, asks every connection to close after its requests in
//! flight, and gives up on those that have not after a deadline, whatever the clients do.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};

/// How connections are handled.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    /// A connection silent this long is closed; HTTP/1 headers must arrive within it.
    pub idle_timeout: Duration,
    /// Longest wait for connections to finish at shutdown.
    pub shutdown_timeout: Duration,
    /// Accept HTTP/2 (prior knowledge, cleartext) beside HTTP/1.1.
    pub http2: bool,
    /// Connections open at once at most; one more is answered 503 and closed.
    pub max_connections: usize,
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(20),
            http2: false,
            max_connections: 512,
        }
    }
}

/// A stream that notes when it last moved a byte.
struct Tracked {
    inner: TcpStream,
    epoch: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Tracked {
    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The requests of one connection: how many are in flight (until their response body
/// has been sent or dropped) and when the last one started or ended.
struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }

    /// Resolves once no request has been in flight for `limit`.
    async fn unused_for(&self, limit: Duration) {
        loop {
            if self.in_flight.load(Ordering::Relaxed) > 0 {
                // A request's end is a touch, so the next look starts a fresh period.
                tokio::time::sleep(limit).await;
                continue;
            }
            let due =
                self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + limit;
            if Instant::now() >= due && self.in_flight.load(Ordering::Relaxed) == 0 {
                return;
            }
            tokio::time::sleep_until(due.max(Instant::now()).into()).await;
        }
    }
}

/// One request in flight; dropped with its response body.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its request counted as in flight until it is sent.
struct Counted {
    inner: Body,
    _request: InFlight,
}

impl http_body::Body for Counted {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The router, counting each request of the connection in its [`Activity`].
#[derive(Clone)]
struct Tracking {
    app: Router,
    activity: Arc<Activity>,
}

impl tower::Service<Request<hyper::body::Incoming>> for Tracking {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<hyper::body::Incoming>) -> Self::Future {
        let request = self.activity.start();
        let call = tower::ServiceExt::oneshot(self.app.clone(), req.map(Body::new));
        Box::pin(async move {
            let response = call.await?;
            Ok(response.map(|inner| {
                Body::new(Counted {
                    inner,
                    _request: request,
                })
            }))
        })
    }
}

/// Resolves once the stream has been silent for `limit`.
async fn silent_for(last_ms: &AtomicU64, epoch: Instant, limit: Duration) {
    loop {
        let due = epoch + Duration::from_millis(last_ms.load(Ordering::Relaxed)) + limit;
        if Instant::now() >= due {
            return;
        }
        tokio::time::sleep_until(due.into()).await;
    }
}

fn builder(t: &Transport) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(t.idle_timeout)
        .keep_alive(true);
    if t.http2 {
        b.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(64)
            // Our own idle rule closes silent connections; pings would keep them busy.
            .keep_alive_interval(None);
        b
    } else {
        b.http1_only()
    }
}

/// Serves one connection until it ends, it is silent too long, or shutdown.
async fn connection(
    stream: TcpStream,
    app: Router,
    builder: Builder<TokioExecutor>,
    t: Transport,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let epoch = Instant::now();
    let last_ms = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Tracked {
        inner: stream,
        epoch,
        last_ms: last_ms.clone(),
    });
    let activity = Arc::new(Activity {
        epoch,
        in_flight: AtomicUsize::new(0),
        last_ms: AtomicU64::new(0),
    });
    let service = hyper_util::service::TowerToHyperService::new(Tracking {
        app,
        activity: activity.clone(),
    });
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    // Once asked to close, a connection gets one more idle period to do so.
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|s| *s), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + t.idle_timeout);
            }
            _ = silent_for(&last_ms, epoch, t.idle_timeout), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + t.idle_timeout);
            }
            _ = activity.unused_for(t.idle_timeout), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + t.idle_timeout);
            }
            _ = tokio::time::sleep_until(closing.unwrap_or(epoch).into()), if closing.is_some() => {
                tracing::debug!("closing a connection that did not close when asked");
                return;
            }
        }
    }
}

/// Answers a connection beyond the cap with a 503 and closes it. The request is read
/// (briefly, a little) before closing, so that the kernel does not reset the connection
/// over unread bytes and lose the answer.
fn refuse(mut stream: TcpStream, refusing: &Arc<Semaphore>, warned: &mut Option<Instant>) {
    // At most one warning a minute: a flood of connections must not flood the log.
    if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
        tracing::warn!("open connections are at --max-connections; refusing new ones");
        *warned = Some(Instant::now());
    }
    let Ok(turn) = refusing.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let body =
            r#"{"error":"too many open connections; retry shortly","error_type":"overloaded"}"#;
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            stream.write_all(answer.as_bytes()).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            let mut read = 0;
            while read < 64 * 1024 {
                match stream.read(&mut sink).await? {
                    0 => break,
                    n => read += n,
                }
            }
            io::Result::Ok(())
        })
        .await;
        drop(turn);
    });
}

/// Serves `app` on `listener` until `shutdown` resolves; then finishes the requests in
/// flight, waiting at most `t.shutdown_timeout`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    t: Transport,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> crate::Result<()> {
    let builder = builder(&t);
    let slots = Arc::new(Semaphore::new(t.max_connections.max(1)));
    // Refusals being answered at once; beyond, a connection is just closed.
    let refusing = Arc::new(Semaphore::new(64));
    let mut warned: Option<Instant> = None;
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender: all dropped means all closed.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: pause, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    refuse(stream, &refusing, &mut warned);
                    continue;
                };
                let app = app.clone();
                let builder = builder.clone();
                let stop = stop_rx.clone();
                let open = open_tx.clone();
                tokio::spawn(async move {
                    connection(stream, app, builder, t, stop).await;
                    drop((open, slot));
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_tx);
    if tokio::time::timeout(t.shutdown_timeout, open_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = t.shutdown_timeout.as_secs_f64(),
            "shutdown deadline passed with connections still open; closing them"
        );
    }
    Ok(())
}
