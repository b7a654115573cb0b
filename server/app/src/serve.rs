//! The HTTP/1.1 serving loop: our own accept loop over hyper, so that slow, idle or numerous
//! clients cannot exhaust the server's file descriptors or keep others out (issue 18 M2).
//!
//! Every connection is in one of three phases, tracked by [`Tracker`] from the bytes that move
//! through its socket and from the requests hyper hands to the router:
//! - **head**: from accept (including a TLS handshake), or from the first byte after an idle
//!   period, until a complete request head arrived. Bounded by `header_timeout`.
//! - **busy**: a request is being handled (between hyper calling the router and the response
//!   body being finished). Its body must arrive within `body_timeout` of the head (else 408);
//!   the handler itself is not timed. A response the client stops reading (writes blocked, no
//!   progress) is cut after about `idle_timeout` to `2 × idle_timeout`.
//! - **idle**: a keep-alive connection between requests. Bounded by `idle_timeout`.
//!
//! A per-connection watchdog closes the connection when its phase's deadline passes; it wakes on
//! every phase change, so a shorter deadline is never missed.
//!
//! **Connection cap.** At most `max_connections` connections are served at once (a semaphore,
//! below the process's open-file limit). When a new connection arrives at the cap, the connection
//! that has waited longest in the head or idle phase is closed to make room: slow-header and
//! idle clients cannot lock out a client that sends its request promptly. Only when every
//! connection is busy does the new one wait (in the accept queue) for one to finish.
//!
//! **Shutdown.** When `shutdown` resolves the listener is closed, connections with no request
//! under way close at once, the others finish their request (hyper's graceful shutdown), and
//! `serve` returns once every connection has ended; the phase deadlines keep applying while
//! draining.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::error::ApiError;

/// The limits one server applies to its connections (from the `http` settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request head (or a TLS handshake plus the first head) must arrive within this.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request is closed after this; also how long a response
    /// write may make no progress.
    pub idle_timeout: Duration,
    /// A request body must arrive completely within this of its head (else 408).
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// Serves `app` on `listener` (TLS when `tls` is given) until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let permits = Arc::new(Semaphore::new(max));
    let registry = Arc::new(Registry::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                registry.make_room(max);
                tokio::select! {
                    () = &mut shutdown => break,
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                }
            }
        };
        let _ = tcp.set_nodelay(true);
        let tracker = registry.register();
        tokio::spawn(connection(Connection {
            tcp,
            peer,
            acceptor: acceptor.clone(),
            app: app.clone(),
            limits,
            tracker,
            registry: registry.clone(),
            permit,
            stop: stop_rx.clone(),
        }));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it ends: all permits back means all drained.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    Ok(())
}

/// Phase of a connection (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Head,
    Busy,
    Idle,
}

#[derive(Debug)]
struct ConnState {
    phase: Phase,
    /// When the current phase began.
    since: Instant,
    /// The last time bytes moved in either direction.
    progress: Instant,
    /// The last write returned `Pending` (the client is not reading).
    write_blocked: bool,
    /// Requests being handled (hyper's HTTP/1 handles one at a time).
    in_flight: u32,
    /// Chosen to make room at the connection cap; closing.
    evicted: bool,
    /// Bytes arrived since the current phase began.
    read_in_phase: bool,
}

/// What one connection is doing, shared by its socket wrapper, its requests, its watchdog and
/// the registry.
#[derive(Debug)]
struct Tracker {
    id: u64,
    state: Mutex<ConnState>,
    /// Wakes the watchdog when the phase changes.
    changed: Notify,
    /// Tells the connection to close (eviction).
    evict: Notify,
}

impl Tracker {
    fn new(id: u64) -> Self {
        let now = Instant::now();
        Self {
            id,
            state: Mutex::new(ConnState {
                phase: Phase::Head,
                since: now,
                progress: now,
                write_blocked: false,
                in_flight: 0,
                evicted: false,
                read_in_phase: false,
            }),
            changed: Notify::new(),
            evict: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn on_read(&self) {
        let now = Instant::now();
        let mut s = self.lock();
        s.progress = now;
        s.read_in_phase = true;
        if s.phase == Phase::Idle {
            s.phase = Phase::Head;
            s.since = now;
            drop(s);
            self.changed.notify_one();
        }
    }

    fn on_write(&self, ready: bool) {
        let mut s = self.lock();
        s.write_blocked = !ready;
        if ready {
            s.progress = Instant::now();
        }
    }

    fn request_started(&self) {
        let mut s = self.lock();
        s.in_flight += 1;
        s.phase = Phase::Busy;
        s.since = Instant::now();
        s.read_in_phase = false;
        drop(s);
        self.changed.notify_one();
    }

    fn request_finished(&self) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.phase = Phase::Idle;
            s.since = Instant::now();
            s.read_in_phase = false;
            drop(s);
            self.changed.notify_one();
        }
    }

    /// Nothing of a request has arrived (a fresh or keep-alive connection that sent no byte
    /// since its last response): safe to close at shutdown without waiting for it.
    fn quiescent(&self) -> bool {
        let s = self.lock();
        s.phase != Phase::Busy && !s.read_in_phase
    }

    /// When this connection must be closed given its current phase, and why; for a busy
    /// connection whose writes are not blocked, a time to look again instead.
    fn deadline(&self, limits: &HttpLimits) -> (Instant, Option<&'static str>) {
        let s = self.lock();
        match s.phase {
            Phase::Head => (
                s.since + limits.header_timeout,
                Some("no complete request head within the header timeout"),
            ),
            Phase::Idle => (
                s.since + limits.idle_timeout,
                Some("idle keep-alive connection past the idle timeout"),
            ),
            Phase::Busy if s.write_blocked => (
                s.progress + limits.idle_timeout,
                Some("the client stopped reading the response"),
            ),
            Phase::Busy => (Instant::now() + limits.idle_timeout, None),
        }
    }
}

/// Resolves with the reason once the connection's current deadline has passed.
async fn watchdog(tracker: &Tracker, limits: &HttpLimits) -> &'static str {
    loop {
        let (at, reason) = tracker.deadline(limits);
        if let Some(reason) = reason
            && at <= Instant::now()
        {
            return reason;
        }
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            () = tracker.changed.notified() => {}
        }
    }
}

/// The connections being served, for eviction at the cap.
#[derive(Debug, Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<Tracker>>>,
    next_id: AtomicU64,
    /// When "connection limit reached" was last logged at warn.
    last_warn: Mutex<Option<Instant>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Tracker>>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self) -> Arc<Tracker> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let t = Arc::new(Tracker::new(id));
        self.lock().insert(id, t.clone());
        t
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// At the cap: closes the connection that has waited longest for a request head (or in
    /// keep-alive), if any is not busy.
    fn make_room(&self, max: usize) {
        let conns = self.lock();
        let victim = conns
            .values()
            .filter_map(|t| {
                let s = t.lock();
                (s.phase != Phase::Busy && !s.evicted).then_some((s.since, t))
            })
            .min_by_key(|(since, _)| *since)
            .map(|(_, t)| t.clone());
        drop(conns);
        self.warn_limit(max, victim.is_some());
        if let Some(t) = victim {
            t.lock().evicted = true;
            t.evict.notify_one();
        }
    }

    /// Logs reaching the cap at warn at most once a minute (debug otherwise).
    fn warn_limit(&self, max: usize, evicting: bool) {
        let now = Instant::now();
        let warn = {
            let mut last = self
                .last_warn
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let due = last.is_none_or(|t| now - t >= Duration::from_secs(60));
            if due {
                *last = Some(now);
            }
            due
        };
        if warn {
            tracing::warn!(
                max_connections = max,
                evicting,
                "connection limit reached: closing the longest-waiting idle connection, or waiting when all are busy"
            );
        } else {
            tracing::debug!(max_connections = max, evicting, "connection limit reached");
        }
    }
}

/// Everything one connection task owns.
struct Connection {
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    app: Router,
    limits: HttpLimits,
    tracker: Arc<Tracker>,
    registry: Arc<Registry>,
    permit: OwnedSemaphorePermit,
    stop: watch::Receiver<bool>,
}

/// Removes the connection from the registry and returns its permit when the task ends.
struct Unregister {
    registry: Arc<Registry>,
    id: u64,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

async fn connection(c: Connection) {
    let Connection {
        tcp,
        peer,
        acceptor,
        app,
        limits,
        tracker,
        registry,
        permit,
        mut stop,
    } = c;
    let _unregister = Unregister {
        registry,
        id: tracker.id,
        _permit: permit,
    };
    let io = Tracked {
        inner: tcp,
        tracker: tracker.clone(),
    };
    let Some(acceptor) = acceptor else {
        serve_io(io, peer, app, limits, tracker, stop, false).await;
        return;
    };
    // The handshake counts against the header timeout.
    let handshake = tokio::select! {
        r = acceptor.accept(io) => r,
        reason = watchdog(&tracker, &limits) => {
            tracing::debug!(%peer, reason, "closing connection during the TLS handshake");
            return;
        }
        () = tracker.evict.notified() => return,
        _ = stop.changed() => return,
    };
    match handshake {
        Ok(stream) => serve_io(stream, peer, app, limits, tracker, stop, true).await,
        Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
    }
}

async fn serve_io<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: HttpLimits,
    tracker: Arc<Tracker>,
    mut stop: watch::Receiver<bool>,
    tls: bool,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = {
        let tracker = tracker.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            handle(app.clone(), req, tracker.clone(), limits.body_timeout, tls)
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Head and idle deadlines are the watchdog's (hyper's own header timer would also start
    // while a keep-alive connection is idle, merging the two limits).
    builder.keep_alive(true).header_read_timeout(None);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    // At shutdown a connection with no request under way closes at once (hyper's graceful
    // shutdown would wait for the first request of a fresh connection); one with a request
    // under way finishes it and closes.
    let mut draining = *stop.borrow();
    if draining {
        if tracker.quiescent() {
            return;
        }
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            reason = watchdog(&tracker, &limits) => {
                tracing::debug!(%peer, reason, "closing connection");
                return;
            }
            () = tracker.evict.notified() => {
                tracing::debug!(%peer, "closing connection to make room at the connection limit");
                return;
            }
            _ = stop.changed(), if !draining => {
                draining = true;
                if tracker.quiescent() {
                    return;
                }
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// One request: marks the connection busy until the response body is finished, gives the body
/// its deadline, and answers 408 when the deadline cut it.
async fn handle(
    app: Router,
    req: Request<Incoming>,
    tracker: Arc<Tracker>,
    body_timeout: Duration,
    tls: bool,
) -> Result<Response<Body>, Infallible> {
    let guard = RequestGuard::start(tracker);
    let timed_out = Arc::new(AtomicBool::new(false));
    let req = req.map(|b| {
        if hyper::body::Body::is_end_stream(&b) {
            Body::new(b)
        } else {
            Body::new(DeadlineBody {
                inner: b,
                sleep: Box::pin(tokio::time::sleep(body_timeout)),
                timed_out: timed_out.clone(),
                secs: body_timeout.as_secs(),
            })
        }
    });
    let resp = match app.oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let resp = if timed_out.load(Ordering::Relaxed) {
        let mut r = ApiError::request_timeout(format!(
            "the request body did not arrive within {} s",
            body_timeout.as_secs()
        ))
        .into_response();
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        crate::http_util::add_security_headers(r.headers_mut(), tls);
        r
    } else {
        resp
    };
    Ok(resp.map(|b| {
        Body::new(Guarded {
            inner: b,
            _guard: guard,
        })
    }))
}

/// Marks a request in flight on its connection until dropped (with the response body, or with
/// the request's future when the connection goes away first).
struct RequestGuard(Arc<Tracker>);

impl RequestGuard {
    fn start(tracker: Arc<Tracker>) -> Self {
        tracker.request_started();
        Self(tracker)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that keeps its request's [`RequestGuard`] alive.
struct Guarded {
    inner: Body,
    _guard: RequestGuard,
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The request body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0} s")]
struct BodyTimeout(u64);

/// A request body that fails once its deadline passes before its end.
struct DeadlineBody {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    timed_out: Arc<AtomicBool>,
    secs: u64,
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimeout(this.secs).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A socket that reports its reads and writes to the connection's [`Tracker`].
struct Tracked<T> {
    inner: T,
    tracker: Arc<Tracker>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.tracker.on_read();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.tracker.on_write(r.is_ready());
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.tracker.on_write(r.is_ready());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HttpLimits {
        HttpLimits {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(3),
            max_connections: 4,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn phases_set_the_deadline() {
        let l = limits();
        let t = Tracker::new(1);
        assert!(t.quiescent(), "a fresh connection that sent nothing");
        let start = Instant::now();
        let (at, why) = t.deadline(&l);
        assert_eq!(at, start + l.header_timeout);
        assert!(why.is_some());
        t.request_started();
        let (_, why) = t.deadline(&l);
        assert!(why.is_none(), "a busy connection is not timed");
        tokio::time::advance(Duration::from_secs(1)).await;
        t.on_write(false);
        let (at, why) = t.deadline(&l);
        assert_eq!(
            at,
            start + l.idle_timeout,
            "blocked writes: since the last progress"
        );
        assert!(why.is_some());
        t.on_write(true);
        assert!(!t.quiescent(), "busy");
        t.request_finished();
        assert!(t.quiescent(), "keep-alive, nothing of the next request yet");
        let (at, _) = t.deadline(&l);
        assert_eq!(at, start + Duration::from_secs(1) + l.idle_timeout, "idle");
        tokio::time::advance(Duration::from_secs(1)).await;
        t.on_read();
        let (at, _) = t.deadline(&l);
        assert_eq!(
            at,
            start + Duration::from_secs(2) + l.header_timeout,
            "the first byte after idle starts the header timeout"
        );
        assert!(!t.quiescent(), "a request has started to arrive");
    }

    #[tokio::test(start_paused = true)]
    async fn watchdog_wakes_on_a_phase_change() {
        let l = limits();
        let t = Arc::new(Tracker::new(1));
        t.request_started();
        let start = Instant::now();
        let t2 = t.clone();
        let dog = tokio::spawn(async move { watchdog(&t2, &l).await });
        tokio::time::advance(Duration::from_secs(1)).await;
        t.request_finished();
        tokio::time::advance(Duration::from_millis(100)).await;
        t.on_read();
        let reason = dog.await.unwrap();
        assert!(reason.contains("header"), "{reason}");
        assert!(
            Instant::now() - start <= Duration::from_secs(4),
            "fired at the header deadline, not at the busy recheck"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn make_room_picks_the_longest_waiting_connection_that_is_not_busy() {
        let r = Registry::default();
        let a = r.register();
        tokio::time::advance(Duration::from_millis(10)).await;
        let b = r.register();
        tokio::time::advance(Duration::from_millis(10)).await;
        let c = r.register();
        a.request_started(); // busy: never evicted
        r.make_room(3);
        assert!(b.lock().evicted, "the oldest waiting one");
        assert!(!c.lock().evicted);
        r.make_room(3);
        assert!(c.lock().evicted, "then the next");
        assert!(!a.lock().evicted);
        r.make_room(3);
        assert!(!a.lock().evicted, "busy connections stay");
        r.remove(b.id);
        assert_eq!(r.lock().len(), 2);
    }
}
