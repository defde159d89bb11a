//! Per-request store state: a sandboxed WASI context, wasi-http, secrets and limits.

use crate::secrets::guest::{SecretsCtx, SecretsView};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Everything one request's store holds.
pub struct HostState {
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) outbound: super::outbound::Outbound,
    pub(crate) secrets: SecretsCtx,
    pub(crate) limits: super::limits::GuestLimits,
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
