//! Abuse limits at the HTTP edge (`[limits]`): a request rate per caller, a bound on open
//! connections, and a deadline on clients that stop sending or reading. Each refuses with a
//! clear answer (429 with `Retry-After`) or closes the connection; none drops anything
//! already acknowledged. Limits on what a request may carry (body size, events per request,
//! evaluation backlog) are the ingest stage's.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::auth::Auth;
use crate::error::ApiError;

pub const DEFAULT_CONFIG: &str = include_str!("../limits.toml");

/// `[limits]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sustained requests per second per caller (an API token; requests without one are
    /// counted per endpoint); 0 = no limit.
    pub requests_per_sec: u32,
    /// Requests a caller may make at once above the sustained rate.
    pub burst: u32,
    /// Open HTTP connections; further clients wait in the listen queue.
    pub max_connections: usize,
    /// A connection that neither sends nor takes a byte for this long is closed: an idle
    /// keep-alive, or a client dribbling its headers or body, cannot hold a slot.
    pub client_idle_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        #[derive(Deserialize)]
        struct Defaults {
            limits: LimitsConfig,
        }
        toml::from_str::<Defaults>(DEFAULT_CONFIG)
            .expect("crates/api/limits.toml is valid")
            .limits
    }
}

impl LimitsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.requests_per_sec > 0 && self.burst == 0 {
            return Err("limits.burst must be at least 1 when requests_per_sec is set".into());
        }
        if self.max_connections == 0 || self.client_idle_secs == 0 {
            return Err("limits.max_connections and limits.client_idle_secs must be > 0".into());
        }
        Ok(())
    }
}

/// Token buckets per caller.
#[derive(Clone)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Arc<Mutex<HashMap<String, (f64, Instant)>>>,
}

impl RateLimiter {
    pub fn new(config: &LimitsConfig) -> Self {
        RateLimiter {
            rate: config.requests_per_sec as f64,
            burst: config.burst.max(1) as f64,
            buckets: Arc::default(),
        }
    }

    /// Takes one request from `key`'s bucket; when it is empty, how long until it is not.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("rate buckets");
        // Callers are token names and endpoints: few. The bound guards against a bug.
        if buckets.len() > 10_000 {
            buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(60));
        }
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

/// The rate limit as a layer: keyed by the token's name, or by the endpoint for requests
/// without a known token (source webhooks, an open API), so one noisy sender does not
/// starve another.
pub async fn rate_limit(
    State((auth, limiter)): State<(Auth, RateLimiter)>,
    req: Request,
    next: Next,
) -> Response {
    let key = match auth.caller(req.headers()) {
        Some(name) => format!("token:{name}"),
        None => format!("path:{}", req.uri().path()),
    };
    match limiter.take(&key, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs().max(1);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "rate limit: more than {} requests per second (burst {}) from this caller; \
                     retry after {secs} s",
                    limiter.rate, limiter.burst
                ),
            )
            .retry_after(secs)
            .into_response()
        }
    }
}

/// The HTTP listener with the connection bound and the idle deadline (an axum
/// [`axum::serve::Listener`]).
pub struct Listener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
}

impl Listener {
    pub fn new(inner: TcpListener, config: &LimitsConfig) -> Self {
        Listener {
            inner,
            slots: Arc::new(Semaphore::new(config.max_connections)),
            idle: Duration::from_secs(config.client_idle_secs),
        }
    }
}

impl axum::serve::Listener for Listener {
    type Io = Guarded;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Guarded, SocketAddr) {
        // Waiting for a slot leaves further clients in the kernel's listen queue.
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            match self.inner.accept().await {
                Ok((io, addr)) => {
                    let _ = io.set_nodelay(true);
                    return (Guarded::new(io, permit, self.idle), addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// The connection a request came in on (axum connect info: serve the router with
/// `into_make_service_with_connect_info::<Conn>()`). [`busy`] marks it busy while a handler
/// runs, so a slow handler is never mistaken for a silent client.
#[derive(Clone)]
pub struct Conn {
    pub peer: SocketAddr,
    busy: Arc<AtomicUsize>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Listener>> for Conn {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Listener>) -> Self {
        Conn {
            peer: *stream.remote_addr(),
            busy: stream.io().busy.clone(),
        }
    }
}

/// Marks the request's connection busy until its handler has answered.
pub async fn busy(req: Request, next: Next) -> Response {
    let conn = req
        .extensions()
        .get::<axum::extract::ConnectInfo<Conn>>()
        .map(|c| c.0.busy.clone());
    struct Done(Option<Arc<AtomicUsize>>);
    impl Drop for Done {
        fn drop(&mut self) {
            if let Some(b) = &self.0 {
                b.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    if let Some(b) = &conn {
        b.fetch_add(1, Ordering::Relaxed);
    }
    let _done = Done(conn);
    next.run(req).await
}

/// A connection that fails with `TimedOut` once nothing has moved in either direction for
/// `idle` while no handler is working on it; it holds its connection slot until dropped.
pub struct Guarded {
    io: TcpStream,
    _slot: OwnedSemaphorePermit,
    idle: Duration,
    busy: Arc<AtomicUsize>,
    /// The last byte read or written.
    last: tokio::time::Instant,
    // One timer per direction: each wakes the task that waits on that direction.
    read_timer: Pin<Box<tokio::time::Sleep>>,
    write_timer: Pin<Box<tokio::time::Sleep>>,
}

impl Guarded {
    fn new(io: TcpStream, slot: OwnedSemaphorePermit, idle: Duration) -> Self {
        Guarded {
            io,
            _slot: slot,
            idle,
            busy: Arc::default(),
            last: tokio::time::Instant::now(),
            read_timer: Box::pin(tokio::time::sleep(idle)),
            write_timer: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

/// Passes `op` through, noting progress; while it waits, times the connection out once
/// `idle` has passed since the last progress and no handler is busy on it.
fn watch<T>(
    op: Poll<io::Result<T>>,
    timer: &mut Pin<Box<tokio::time::Sleep>>,
    last: &mut tokio::time::Instant,
    idle: Duration,
    busy: &AtomicUsize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<T>> {
    if op.is_ready() {
        *last = tokio::time::Instant::now();
        return op;
    }
    loop {
        if busy.load(Ordering::Relaxed) > 0 {
            // The handler's answer will write (progress) and poll again.
            return Poll::Pending;
        }
        let deadline = *last + idle;
        if tokio::time::Instant::now() >= deadline {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client idle longer than limits.client_idle_secs",
            )));
        }
        timer.as_mut().reset(deadline);
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let op = Pin::new(&mut this.io).poll_read(cx, buf);
        let busy = &this.busy;
        watch(
            op,
            &mut this.read_timer,
            &mut this.last,
            this.idle,
            busy,
            cx,
        )
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let op = Pin::new(&mut this.io).poll_write(cx, buf);
        let busy = &this.busy;
        watch(
            op,
            &mut this.write_timer,
            &mut this.last,
            this.idle,
            busy,
            cx,
        )
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let op = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        let busy = &this.busy;
        watch(
            op,
            &mut this.write_timer,
            &mut this.last,
            this.idle,
            busy,
            cx,
        )
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_its_burst_then_the_sustained_rate() {
        let limiter = RateLimiter::new(&LimitsConfig {
            requests_per_sec: 10,
            burst: 3,
            max_connections: 1,
            client_idle_secs: 1,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.take("token:ci", t0).unwrap();
        }
        let wait = limiter.take("token:ci", t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        limiter.take("token:other", t0).expect("callers are apart");
        limiter
            .take("token:ci", t0 + Duration::from_millis(100))
            .expect("one more after 1/rate");
        assert!(limiter
            .take("token:ci", t0 + Duration::from_millis(100))
            .is_err());
    }

    #[test]
    fn no_rate_means_no_limit() {
        let limiter = RateLimiter::new(&LimitsConfig {
            requests_per_sec: 0,
            ..LimitsConfig::default()
        });
        for _ in 0..10_000 {
            limiter.take("path:/v1/events", Instant::now()).unwrap();
        }
    }

    /// On a real socket: a handler slower than the idle limit still answers (its
    /// connection is busy, not idle), a silent client is closed, and a connection over
    /// `max_connections` waits for a slot instead of being served.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_handlers_answer_silent_clients_are_closed_connections_are_bounded() {
        use axum::routing::get;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let config = LimitsConfig {
            requests_per_sec: 0,
            burst: 1,
            max_connections: 2,
            client_idle_secs: 1,
        };
        let app = axum::Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(2500)).await;
                    "done"
                }),
            )
            .layer(axum::middleware::from_fn(busy))
            .into_make_service_with_connect_info::<Conn>();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(Listener::new(tcp, &config), app).await.unwrap();
        });

        let slow = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            let mut buf = [0u8; 1024];
            while !String::from_utf8_lossy(&answer).contains("done") {
                let n = c.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed before answering: {answer:?}");
                answer.extend_from_slice(&buf[..n]);
            }
        });
        // The second slot: a client that never finishes its headers.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        silent.write_all(b"GET /slow HTTP/1.1\r\n").await.unwrap();
        // A third connection waits for a slot: nothing is read from it yet.
        let mut third = TcpStream::connect(addr).await.unwrap();
        third
            .write_all(b"GET /missing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf))
            .await
            .expect("the silent client is closed")
            .unwrap_or(0);
        assert_eq!(n, 0, "closed without an answer");
        // Its slot freed, the third is served.
        let n = tokio::time::timeout(Duration::from_secs(10), third.read(&mut buf))
            .await
            .expect("the waiting client is served once a slot frees")
            .unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 404"));
        slow.await.unwrap();
    }
}
