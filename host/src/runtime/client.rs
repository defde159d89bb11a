//! The HTTP client behind guests' outbound requests: hyper-util's pooled client, whose
//! connector resolves a host once, refuses denied addresses (unless the operator allows private
//! destinations), connects to an address it checked (no second lookup a rebinding DNS server
//! could answer differently), and verifies TLS against the host name the guest asked for.
//!
//! Connections are kept and reused across requests and executions (keyed by scheme, host and
//! port), so a function calling the same API on every request pays for TCP and TLS once. Each
//! thread that runs guests (a data-plane worker, or a thread of the server's runtime) keeps its
//! own pools, and their connections are driven on that thread's runtime: an outbound request
//! never crosses threads (two hand-offs and their wake-ups per request when one pool lived on
//! the server's runtime; BENCHMARKS.md). A connection is only ever used by guests of its own
//! thread, who wait for it without computing, so running a guest there does not starve anyone
//! else's response. A worker that drains drops its pools ([`release_thread_pools`]), so idle
//! upstream connections do not hold it open. What a connection may carry is decided per request
//! before it is sent (the package's allowlist, its credentials); the connector decides only
//! where a connection may go, the same for every package of the host.

use super::outbound::{denied_ip, denied_name, metadata_ip};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi_http::Error;

/// How long a connection attempt (lookup, TCP, TLS) may take when the guest sets no limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an idle pooled connection is kept.
const IDLE: Duration = Duration::from_secs(60);
/// Idle connections kept per destination.
const IDLE_PER_HOST: usize = 32;

/// The outbound clients of one TLS configuration: per thread, one pool that refuses private
/// destinations and one that allows them (the operator's `--outbound-allow-private`, which a
/// reload may change). A new configuration (SIGHUP's `--outbound-ca`) is a new `OutboundClient`,
/// and each thread's pools are made again on its next request.
pub struct OutboundClient {
    id: u64,
    tls: Arc<rustls::ClientConfig>,
}

/// One thread's pools.
struct Pools {
    strict: Client<PinnedConnector, wasmtime_wasi_http::WasiBody>,
    private: Client<PinnedConnector, wasmtime_wasi_http::WasiBody>,
}

thread_local! {
    /// This thread's pools, and the [`OutboundClient`] they were made for.
    static POOLS: std::cell::RefCell<Option<(u64, Pools)>> = const { std::cell::RefCell::new(None) };
}

/// Drops this thread's pools: their idle connections close and their tasks end (requests in
/// flight keep theirs until they finish).
pub fn release_thread_pools() {
    let _ = POOLS.try_with(|pools| pools.borrow_mut().take());
}

impl std::fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundClient").finish_non_exhaustive()
    }
}

impl OutboundClient {
    /// Clients that verify TLS with `tls`.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> OutboundClient {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        OutboundClient {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            tls,
        }
    }

    /// This thread's pool for `allow_private`, made on first use (or after a new configuration).
    fn pool(&self, allow_private: bool) -> Client<PinnedConnector, wasmtime_wasi_http::WasiBody> {
        POOLS.with(|pools| {
            let mut pools = pools.borrow_mut();
            let (id, current) = pools
                .take()
                .filter(|(id, _)| *id == self.id)
                .unwrap_or_else(|| (self.id, self.pools()));
            let client = if allow_private {
                current.private.clone()
            } else {
                current.strict.clone()
            };
            *pools = Some((id, current));
            client
        })
    }

    /// New pools for this configuration, their connections driven on the caller's runtime.
    fn pools(&self) -> Pools {
        let build = |allow_private| {
            Client::builder(OnCurrent)
                .pool_idle_timeout(IDLE)
                .pool_max_idle_per_host(IDLE_PER_HOST)
                .build(PinnedConnector {
                    allow_private,
                    tls: self.tls.clone(),
                })
        };
        Pools {
            strict: build(false),
            private: build(true),
        }
    }

    /// Sends `request` (an absolute URI) on a pooled connection, or a new one to a checked
    /// address; the response, and a connection future that is already driven by the pool.
    pub async fn send(
        &self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        allow_private: bool,
        first_byte_timeout: Duration,
    ) -> Result<http::Response<hyper::body::Incoming>, Error> {
        let client = self.pool(allow_private);
        match tokio::time::timeout(first_byte_timeout, client.request(request)).await {
            Err(_) => Err(Error::ConnectionReadTimeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(unwrap_error(e)),
        }
    }
}

/// The guest-facing error of a failed client request: the connector's own (a denied address, a
/// failed lookup) where there is one, else the transport's.
fn unwrap_error(e: hyper_util::client::legacy::Error) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(s) = source {
        if let Some(c) = s.downcast_ref::<ConnectError>()
            && let Some(inner) = c.0.lock().ok().and_then(|mut g| g.take())
        {
            return inner;
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return Error::InternalError(Some(h.to_string()));
        }
        source = s.source();
    }
    if e.is_connect() {
        Error::ConnectionRefused
    } else {
        Error::InternalError(Some(e.to_string()))
    }
}

/// A connector's failure, carrying the error the guest sees.
pub struct ConnectError(Mutex<Option<Error>>, String);

impl ConnectError {
    fn new(e: Error) -> ConnectError {
        let text = e.to_string();
        ConnectError(Mutex::new(Some(e)), text)
    }
}

impl std::fmt::Debug for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for ConnectError {}

/// Runs connection work on the runtime of the thread that made the connection.
#[derive(Clone)]
pub struct OnCurrent;

impl<F> hyper::rt::Executor<F> for OnCurrent
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        drop(tokio::spawn(fut));
    }
}

/// Connects where the platform allows: see the module's documentation.
#[derive(Clone)]
pub struct PinnedConnector {
    allow_private: bool,
    tls: Arc<rustls::ClientConfig>,
}

impl tower_service::Service<http::Uri> for PinnedConnector {
    type Response = Stream;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let (allow_private, tls) = (self.allow_private, self.tls.clone());
        Box::pin(async move {
            connect(&uri, allow_private, tls)
                .await
                .map_err(ConnectError::new)
        })
    }
}

/// Resolves `uri`'s host once, refuses denied addresses, connects to a checked one, and for
/// `https` verifies the certificate against the host name asked for.
async fn connect(
    uri: &http::Uri,
    allow_private: bool,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Stream, Error> {
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    // Metadata names and addresses are refused even where private destinations are allowed.
    if denied_name(bare) {
        return Err(Error::DestinationIpProhibited);
    }
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((bare, port)))
            .await
            .map_err(|_| Error::DnsTimeout)?
            .map_err(|_| Error::DnsError {
                rcode: None,
                info_code: None,
            })?
            .collect(),
    };
    let allowed: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| !metadata_ip(a.ip()) && (allow_private || !denied_ip(a.ip())))
        .collect();
    if allowed.is_empty() {
        if addrs.is_empty() {
            return Err(Error::DestinationNotFound);
        }
        tracing::debug!(%host, "outbound request to a private address denied");
        return Err(Error::DestinationIpProhibited);
    }
    // Connect to a checked address; the name is not looked up again.
    let mut last = None;
    for addr in &allowed {
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                if !https {
                    return Ok(Stream::Plain(TokioIo::new(stream)));
                }
                let name = match bare.parse::<IpAddr>() {
                    Ok(ip) => rustls::pki_types::ServerName::from(ip),
                    Err(_) => rustls::pki_types::ServerName::try_from(bare.to_string())
                        .map_err(|_| Error::HttpRequestUriInvalid)?,
                };
                let connector = tokio_rustls::TlsConnector::from(tls);
                let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, stream))
                    .await
                    .map_err(|_| Error::ConnectionTimeout)?
                    .map_err(Error::Tls)?;
                return Ok(Stream::Tls(Box::new(TokioIo::new(tls))));
            }
            Ok(Err(e)) => last = Some(Error::Connect(e)),
            Err(_) => last = Some(Error::ConnectionTimeout),
        }
    }
    Err(last.unwrap_or(Error::ConnectionRefused))
}

/// A connection: plain TCP, or TLS over it.
pub enum Stream {
    /// `http`.
    Plain(TokioIo<tokio::net::TcpStream>),
    /// `https`.
    Tls(Box<TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
