//! What both listeners share: deadlines on every connection, a cap on connections per client
//! address, and accept loops that back off instead of spinning when the process runs out of
//! file descriptors.
//!
//! Deadlines, per connection:
//! - **first request**: from accept until the first request's headers are read (first byte,
//!   HTTP/1-vs-2 detection, a partial HTTP/2 preface, headers): `header_timeout`;
//! - **header read** of later HTTP/1 requests: `header_timeout` (hyper's own);
//! - **idle**: a connection with no request in flight for `idle_timeout` is closed (HTTP/1
//!   keep-alive and HTTP/2 alike); HTTP/2 also pings every `idle_timeout / 2` and drops a peer
//!   that does not answer;
//! - **request-body idle**: a body that sends nothing for `body_idle_timeout` fails.

use bytes::Bytes;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// The connection limits of both listeners.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// From accept to the first request's headers; and each later HTTP/1 header read.
    pub header_timeout: Duration,
    /// How long a connection may sit with no request in flight.
    pub idle_timeout: Duration,
    /// The longest pause inside a request body.
    pub body_idle_timeout: Duration,
    /// Connections one client address may hold open on one listener.
    pub max_per_ip: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_idle_timeout: Duration::from_secs(30),
            max_per_ip: 1024,
        }
    }
}

/// Open connections per client address on one listener.
#[derive(Debug, Default)]
pub struct PerIp {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection's place in [`PerIp`], given back on drop.
#[derive(Debug)]
pub struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.table.open.lock()
            && let Some(n) = open.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl PerIp {
    /// A slot for a connection from `ip`, or `None` if it holds `max` already.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut open = self.open.lock().ok()?;
        let n = open.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// What a connection is doing, for its deadlines.
#[derive(Debug)]
pub struct Activity {
    started: Instant,
    /// Requests whose response has not been sent whole yet.
    in_flight: AtomicUsize,
    /// Whether a request has been seen.
    seen: AtomicBool,
    /// When the last request ended, in milliseconds since `started`.
    last_ms: AtomicU64,
}

impl Activity {
    /// A new connection's activity.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            seen: AtomicBool::new(false),
            last_ms: AtomicU64::new(0),
        })
    }

    /// A request began; the guard ends it when dropped (with the response body).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.seen.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    fn since_start(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .last_ms
            .store(self.0.since_start(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Resolves when the connection has broken a deadline: no first request within
/// `header_timeout` of accept, or no request in flight for `idle_timeout`. The caller then
/// drops the connection (nothing is in flight, so nothing is lost).
pub async fn watchdog(activity: Arc<Activity>, limits: ConnLimits) {
    loop {
        let now_ms = activity.since_start();
        let busy = activity.in_flight.load(Ordering::Acquire) > 0;
        let (from, allowed) = if !activity.seen.load(Ordering::Relaxed) {
            (0, limits.header_timeout)
        } else {
            (
                activity.last_ms.load(Ordering::Relaxed),
                limits.idle_timeout,
            )
        };
        let allowed_ms = u64::try_from(allowed.as_millis()).unwrap_or(u64::MAX);
        let deadline = from.saturating_add(allowed_ms);
        if !busy && now_ms >= deadline {
            return;
        }
        let wait = if busy {
            allowed_ms.max(1)
        } else {
            deadline - now_ms
        };
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// A response body that keeps its request counted as in flight until it is sent (or dropped).
pub struct Guarded<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> Guarded<B> {
    /// `inner`, holding `in_flight` until done.
    pub fn new(inner: B, in_flight: InFlight) -> Guarded<B> {
        Guarded {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Guarded<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Why a request body failed.
#[derive(Debug)]
pub enum BodyError {
    /// The connection's own error.
    Hyper(hyper::Error),
    /// The client sent nothing for the body-idle deadline.
    Idle(Duration),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Hyper(e) => e.fmt(f),
            BodyError::Idle(d) => write!(f, "the request body sent nothing for {d:?}"),
        }
    }
}

impl std::error::Error for BodyError {}

impl From<BodyError> for wasmtime_wasi_http::Error {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Hyper(e) => e.into(),
            BodyError::Idle(_) => wasmtime_wasi_http::Error::ConnectionReadTimeout,
        }
    }
}

/// A request body that fails when the client pauses longer than the body-idle deadline.
pub struct IdleBody {
    inner: hyper::body::Incoming,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl IdleBody {
    /// `inner`, failing after `idle` without a frame.
    pub fn new(inner: hyper::body::Incoming, idle: Duration) -> IdleBody {
        IdleBody {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl hyper::body::Body for IdleBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, BodyError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + self.idle;
                self.timer.as_mut().reset(deadline);
                Poll::Ready(frame.map(|f| f.map_err(BodyError::Hyper)))
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::Idle(self.idle)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Accepts the next connection on `listener` with Nagle's algorithm off, from an address
/// under its cap. A connection over the cap is closed at once. After a failed accept (out of
/// file descriptors, say) it waits, doubling from 10 ms to 1 s while failures go on, and
/// returns `None`, so the caller loops on without spinning; each listener backs off alone.
pub async fn accept(
    listener: &tokio::net::TcpListener,
    what: &'static str,
    per_ip: &Arc<PerIp>,
    max_per_ip: usize,
    backoff: &mut Duration,
) -> Option<(tokio::net::TcpStream, SocketAddr, IpSlot)> {
    match listener.accept().await {
        Ok((stream, peer)) => {
            *backoff = Duration::ZERO;
            let Some(slot) = per_ip.admit(peer.ip(), max_per_ip) else {
                warn_rate_limited(what, "a client address is over its connection cap; closed");
                return None;
            };
            let _ = stream.set_nodelay(true);
            Some((stream, peer, slot))
        }
        Err(e) => {
            *backoff = (*backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
            warn_rate_limited(
                what,
                &format!("accept failed ({e}); backing off {backoff:?}"),
            );
            tokio::time::sleep(*backoff).await;
            None
        }
    }
}

/// Accept failures: at most one warning a second, the rest at debug.
static ACCEPT_FAILURES: LogLimit = LogLimit::new();

fn warn_rate_limited(what: &str, message: &str) {
    if ACCEPT_FAILURES.admit() {
        tracing::warn!(%what, "{message}");
    } else {
        tracing::debug!(%what, "{message}");
    }
}

/// At most one warning a second of one kind: a failure that repeats on every request (a backend
/// down, a listener out of file descriptors) warns once a second and logs the rest at debug.
/// One per kind, as a `static`.
#[derive(Debug)]
pub struct LogLimit(AtomicU64);

impl LogLimit {
    /// A limit that has warned of nothing yet.
    pub const fn new() -> LogLimit {
        LogLimit(AtomicU64::new(u64::MAX))
    }

    /// Whether a warning may be logged now (the first this second).
    pub fn admit(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.0.swap(now, Ordering::Relaxed) != now
    }
}

impl Default for LogLimit {
    fn default() -> LogLimit {
        LogLimit::new()
    }
}

/// Reads and discards up to `limit` bytes of a request body a handler refused, for at most a
/// few seconds. A client that is still sending then reads the refusal instead of finding the
/// connection closed under it.
pub async fn drain<B>(body: B, limit: usize)
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, limit);
    let _ = tokio::time::timeout(Duration::from_secs(5), limited.collect()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_caps_and_gives_back() {
        let t = Arc::new(PerIp::default());
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let a = t.admit(ip, 2).unwrap();
        let _b = t.admit(ip, 2).unwrap();
        assert!(t.admit(ip, 2).is_none());
        assert!(t.admit("10.1.2.4".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(t.admit(ip, 2).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_fires_on_silence_and_waits_for_requests() {
        let limits = ConnLimits {
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(5),
            ..ConnLimits::default()
        };
        // Silent from the start: the first-request deadline.
        let a = Activity::new();
        let started = tokio::time::Instant::now();
        watchdog(a, limits).await;
        assert!(started.elapsed() >= Duration::from_secs(1));
        // A request in flight holds it; after it ends, the idle deadline counts.
        let a = Activity::new();
        let req = a.begin();
        let dog = tokio::spawn(watchdog(a.clone(), limits));
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!dog.is_finished(), "busy connections are not closed");
        drop(req);
        tokio::time::sleep(Duration::from_secs(6)).await;
        // (Paused time: the watchdog's sleeps complete as the clock advances.)
        tokio::time::timeout(Duration::from_secs(10), dog)
            .await
            .unwrap()
            .unwrap();
    }
}
