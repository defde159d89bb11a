//! Per-request store state: a sandboxed WASI context, wasi-http, secrets and limits.

use crate::secrets::guest::{SecretsCtx, SecretsView};
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Outbound HTTP policy. Until a manifest allowlist is enforced, every outbound request is
/// refused with the WASI error for a denied request.
#[derive(Debug, Default)]
pub struct OutboundPolicy;

impl wasmtime_wasi_http::WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// Everything one request's store holds.
pub struct HostState {
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) outbound: OutboundPolicy,
    pub(crate) secrets: SecretsCtx,
    pub(crate) limits: StoreLimits,
}

impl HostState {
    pub(crate) fn secrets_view(&mut self) -> SecretsView<'_> {
        SecretsView {
            ctx: &mut self.secrets,
            table: &mut self.table,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// The pre-instantiated proxy for this host's store state.
pub type HostStateProxyPre = wasmtime_wasi_http::p2::bindings::ProxyPre<HostState>;
