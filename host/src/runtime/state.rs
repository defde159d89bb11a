//! Per-request store state: a sandboxed WASI context, wasi-http, secrets and limits.

use crate::secrets::guest::bindings::edgeward::platform::credentials;
use crate::secrets::guest::bindings::edgeward::platform::secrets::Error as SecretsError;
use crate::secrets::guest::{SecretsCtx, SecretsView};
use wasmtime::component::Resource;
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

/// `edgeward:platform/credentials`: the runtime's side of the guest interface (the outgoing
/// request and its credentials session are the runtime's; the bindings are generated once,
/// with the secrets interface, in `secrets::guest`).
impl credentials::Host for HostState {
    /// Sets the declared header of `request` to the credential's placeholder; the value goes in
    /// when the request is sent (runtime/credentials.rs).
    fn attach(
        &mut self,
        request: Resource<wasmtime_wasi_http::p2::types::HostOutgoingRequest>,
        name: String,
    ) -> wasmtime::Result<Result<(), SecretsError>> {
        let Some(session) = self.outbound.credentials.clone() else {
            return Ok(Err(SecretsError::Denied(format!(
                "credential {name}: this package declares no [[outbound.credentials]]"
            ))));
        };
        let Some((header, placeholder)) = session.header(&name) else {
            return Ok(Err(SecretsError::Denied(format!(
                "credential {name}: not declared in this package's [[outbound.credentials]]"
            ))));
        };
        let req = self.table.get_mut(&request)?;
        // An outgoing request's headers are immutable once it is built; the host's own mark
        // is the exception.
        req.headers.set_mutable(usize::MAX);
        let set = req.headers.set(
            &mut self.outbound,
            header.to_string(),
            vec![placeholder.as_bytes().to_vec()],
        );
        req.headers.set_immutable();
        match set {
            Ok(()) => Ok(Ok(())),
            Err(e) => Ok(Err(SecretsError::Denied(format!(
                "credential {name}: the request's {header} header cannot be set: {e}"
            )))),
        }
    }
}
