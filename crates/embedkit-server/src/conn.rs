//! The accept loop. hyper's own rather than `axum::serve`, which has no setting for how
//! long a connection may stay silent: here a connection with no bytes read or written
//! for the idle timeout is closed — before its first request as after its last one, in
//! HTTP/1 and HTTP/2 alike; HTTP/1 headers must also arrive within it (slow loris).
//! HTTP/2 is off unless asked for. Shutdown stops accepting, asks every connection to
//! close after its requests in flight, and gives up on those that have not after a
//! deadline, whatever the clients do.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// How connections are handled.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    /// A connection silent this long is closed; HTTP/1 headers must arrive within it.
    pub idle_timeout: Duration,
    /// Longest wait for connections to finish at shutdown.
    pub shutdown_timeout: Duration,
    /// Accept HTTP/2 (prior knowledge, cleartext) beside HTTP/1.1.
    pub http2: bool,
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(20),
            http2: false,
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
    let service = hyper_util::service::TowerToHyperService::new(app);
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
            _ = tokio::time::sleep_until(closing.unwrap_or(epoch).into()), if closing.is_some() => {
                tracing::debug!("closing a connection that did not close when asked");
                return;
            }
        }
    }
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
                let app = app.clone();
                let builder = builder.clone();
                let stop = stop_rx.clone();
                let open = open_tx.clone();
                tokio::spawn(async move {
                    connection(stream, app, builder, t, stop).await;
                    drop(open);
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
