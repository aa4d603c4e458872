//! Serving connections: HTTP/1.1 over hyper with the limits a public server needs, which
//! `axum::serve` does not set — a client that sends half a request head, or nothing at all,
//! must not hold a connection forever, and connections are capped.
//!
//! - **Header timeout**: once the first byte of a request head arrives, the whole head must
//!   follow within it.
//! - **Idle timeout**: a connection on which nothing moves either way while no request is being
//!   handled (a fresh connection, or a kept-alive one between requests) is closed.
//! - **Body timeout**: a request body that stalls that long between chunks fails the request.
//! - **Connection cap**: past it, penpal stops accepting until a connection closes (the kernel's
//!   backlog holds the rest), so the cap also covers open WebSockets.
//!
//! A request being handled is exempt from the idle timeout (a whole-reply turn may wait on
//! the model); WebSockets keep themselves alive with pings and are past hyper once upgraded.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tower::ServiceExt;

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Longest time from a request head's first byte to its end.
    pub header_timeout: Duration,
    /// Longest silence on a connection with no request in progress.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// How long shutdown waits for requests in progress.
const DRAIN: Duration = Duration::from_secs(10);
/// Marks "no request head started".
const NONE: u64 = u64::MAX;

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in progress
/// finish (up to `DRAIN`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before accept: wait a
                    // little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        accepted(&stream, peer);
        tokio::spawn(connection(
            stream,
            peer,
            permit,
            router.clone(),
            limits,
            stop_rx.clone(),
            open_tx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_tx);
    // Every connection task holds a sender; all gone means all closed.
    let _ = tokio::time::timeout(DRAIN, open_rx.recv()).await;
    Ok(())
}

/// Sets up a new connection's socket. Replies go out as they are written: with Nagle's
/// algorithm on, a response written in two pieces (or a socket's second event) waits for the
/// client's delayed ACK, about 40 ms on Linux, on every kept-alive request.
fn accepted(stream: &TcpStream, peer: SocketAddr) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
}

/// One connection, from accept to close.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    router: Router,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
    _open: mpsc::Sender<()>,
) {
    let activity = Arc::new(Activity::new());
    let io = Watched {
        inner: stream,
        activity: activity.clone(),
        _permit: permit,
    };
    let seen = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let busy = Busy::enter(seen.clone());
        let call = router.clone().oneshot(req);
        async move {
            let response = call.await;
            drop(busy);
            response
        }
    });
    let mut conn = std::pin::pin!(
        hyper::server::conn::http1::Builder::new()
            // The head timeout is ours (below): hyper's would also cut kept-alive connections.
            .header_read_timeout(None)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
    );
    let tick = (limits.header_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep(tick) => {
                if let Some(why) = activity.overdue(limits) {
                    tracing::debug!(%peer, why, "closing connection");
                    return;
                }
            }
        }
    }
}

/// What the watchdog needs to know about a connection, in milliseconds since it opened.
struct Activity {
    opened: Instant,
    last_io: AtomicU64,
    head_started: AtomicU64,
    busy: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            last_io: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            busy: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    fn read(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.busy.load(Ordering::Relaxed) == 0 {
            // The first byte of the next request head starts its clock.
            let _ =
                self.head_started
                    .compare_exchange(NONE, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// Why the connection should close now, if it should.
    fn overdue(&self, limits: ConnLimits) -> Option<&'static str> {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let now = self.now();
        let head = self.head_started.load(Ordering::Relaxed);
        if head != NONE && now.saturating_sub(head) > limits.header_timeout.as_millis() as u64 {
            return Some("request head not finished in time");
        }
        let last = self.last_io.load(Ordering::Relaxed);
        (now.saturating_sub(last) > limits.idle_timeout.as_millis() as u64).then_some("idle")
    }
}

/// A request in progress, from its complete head until its handler answered.
struct Busy(Arc<Activity>);

impl Busy {
    fn enter(a: Arc<Activity>) -> Busy {
        a.busy.fetch_add(1, Ordering::Relaxed);
        a.head_started.store(NONE, Ordering::Relaxed);
        Busy(a)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        a.last_io.store(a.now(), Ordering::Relaxed);
        a.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The socket, noting every byte that moves, and holding its place under the connection cap
/// for as long as it is open (an upgraded WebSocket included).
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.activity.read(buf.filled().len() - before);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.activity.wrote();
        }
        polled
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnLimits {
        ConnLimits {
            header_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(300),
            max_connections: 1,
        }
    }

    #[tokio::test]
    async fn accepted_connections_send_without_waiting_for_acks() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted_) = tokio::join!(client, listener.accept());
        let (stream, peer) = accepted_.unwrap();
        assert!(!stream.nodelay().unwrap(), "the kernel's default");
        accepted(&stream, peer);
        assert!(stream.nodelay().unwrap());
        drop(client);
    }

    #[test]
    fn a_started_head_must_finish_and_a_silent_connection_must_not_linger() {
        let a = Activity::new();
        assert_eq!(a.overdue(limits()), None);
        a.read(3);
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(
            a.overdue(limits()),
            Some("request head not finished in time")
        );
        // The head completed: the request is in progress and nothing is overdue.
        let busy = Busy::enter(Arc::new(Activity::new()));
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(busy.0.overdue(limits()), None, "a request in progress");
        let a = busy.0.clone();
        drop(busy);
        assert_eq!(a.overdue(limits()), None, "just answered");
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(a.overdue(limits()), Some("idle"));
    }
}
