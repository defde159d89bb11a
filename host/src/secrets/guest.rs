//! The guest side of secrets: `edgeward:platform/secrets` implemented over a [`Resolver`].
//!
//! Backend and resolution errors become the WIT `error` variant (`Ok(Err(_))`); only a broken
//! resource handle traps. Every value a guest obtained is remembered for the execution record
//! (names and scopes) and for masking its output.

use super::{ResolveError, Resolver, Scope, SecretValue, StoredSecret};
use wasmtime::component::{HasData, Resource, ResourceTable};

#[allow(missing_docs)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "edgeward:platform/imports",
        // Lookups may wait on the backend; the resource's methods only read what the host
        // already holds, so they are plain calls (no future per call).
        imports: {
            "edgeward:platform/secrets.[method]secret.name": trappable,
            "edgeward:platform/secrets.[method]secret.scope": trappable,
            "edgeward:platform/secrets.[method]secret.version": trappable,
            "edgeward:platform/secrets.[method]secret.reveal": trappable,
            "edgeward:platform/secrets.[method]secret.field": trappable,
            "edgeward:platform/secrets.[drop]secret": trappable,
            // Attaching only marks the request; the value is resolved when it is sent.
            "edgeward:platform/credentials.attach": trappable,
            default: async | trappable,
        },
        with: {
            "edgeward:platform/secrets.secret": super::GuestSecret,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

pub use bindings::edgeward::platform::credentials::add_to_linker as add_credentials_to_linker;
use bindings::edgeward::platform::secrets as wit;
pub use bindings::edgeward::platform::secrets::add_to_linker;

/// A secret handed to a guest, behind a resource handle.
#[derive(Debug)]
pub struct GuestSecret {
    scope: Scope,
    secret: StoredSecret,
}

/// Per-execution secrets state: the resolver and what this execution has read.
#[derive(Debug)]
pub struct SecretsCtx {
    resolver: Resolver,
    /// Who may write through this execution, when a user's token triggered it.
    writer: Option<std::sync::Arc<super::writes::Writer>>,
    /// `scope:name` of each secret handed out, as the execution record lists them.
    resolved: Vec<String>,
    revealed: Vec<SecretValue>,
}

impl SecretsCtx {
    /// State for one execution.
    pub fn new(resolver: Resolver) -> SecretsCtx {
        SecretsCtx {
            resolver,
            writer: None,
            resolved: Vec::new(),
            revealed: Vec::new(),
        }
    }

    /// Lets the guest write (WIT `set` and `delete`) as `writer` says.
    pub fn with_writer(mut self, writer: Option<std::sync::Arc<super::writes::Writer>>) -> Self {
        self.writer = writer;
        self
    }

    /// Records a secret handed to the guest (through a lookup or its environment): its name
    /// for the record, its value for masking. Each is kept once, so a guest looping on `get`
    /// grows neither; a value that changed between two reads (a rotation) is kept as well.
    pub fn note_bound(&mut self, scope: Scope, secret: &StoredSecret) {
        let (scope, name) = (scope.as_str(), secret.name.as_str());
        // `scope:name`, compared in place (neither a scope nor a secret name holds ':').
        let is_this = |r: &String| {
            r.len() == scope.len() + 1 + name.len()
                && r.starts_with(scope)
                && r.as_bytes()[scope.len()] == b':'
                && r.ends_with(name)
        };
        if !self.resolved.iter().any(is_this) {
            let mut entry = String::with_capacity(scope.len() + 1 + name.len());
            entry.push_str(scope);
            entry.push(':');
            entry.push_str(name);
            self.resolved.push(entry);
        }
        let value = secret.value.expose();
        if !self.revealed.iter().any(|v| v.expose() == value) {
            self.revealed.push(secret.value.clone());
        }
    }

    /// The secrets this execution resolved, as `scope:name`.
    pub fn resolved(&self) -> &[String] {
        &self.resolved
    }

    /// The values this execution obtained, for masking its output.
    pub fn revealed(&self) -> &[SecretValue] {
        &self.revealed
    }

    /// Takes what the execution record needs: the names resolved and the values to mask.
    pub fn take(&mut self) -> (Vec<String>, Vec<SecretValue>) {
        (
            std::mem::take(&mut self.resolved),
            std::mem::take(&mut self.revealed),
        )
    }
}

/// What the generated `Host` traits are implemented for: the store's secrets state and table.
pub struct SecretsView<'a> {
    /// This execution's secrets state.
    pub ctx: &'a mut SecretsCtx,
    /// The store's resource table.
    pub table: &'a mut ResourceTable,
}

/// Marks [`SecretsView`] as the data `add_to_linker` hands to the host implementation.
pub struct Secrets;

impl HasData for Secrets {
    type Data<'a> = SecretsView<'a>;
}

impl From<Scope> for wit::Scope {
    fn from(s: Scope) -> Self {
        match s {
            Scope::Package => wit::Scope::Package,
            Scope::Project => wit::Scope::Project,
            Scope::Platform => wit::Scope::Platform,
            Scope::User => wit::Scope::User,
        }
    }
}

impl From<wit::Scope> for Scope {
    fn from(s: wit::Scope) -> Self {
        match s {
            wit::Scope::Package => Scope::Package,
            wit::Scope::Project => Scope::Project,
            wit::Scope::Platform => Scope::Platform,
            wit::Scope::User => Scope::User,
        }
    }
}

/// The one place write errors become WIT errors.
fn write_to_wit(e: super::writes::WriteError) -> wit::WriteError {
    use super::writes::WriteError as E;
    match e {
        E::InvalidName(m) => wit::WriteError::InvalidName(m),
        E::InvalidValue(m) => wit::WriteError::InvalidValue(m),
        E::TooLarge(m) => wit::WriteError::TooLarge(m),
        E::Denied(m) => wit::WriteError::Denied(m),
        E::Unavailable(m) => wit::WriteError::Unavailable(m),
    }
}

/// What a guest without a writer is told: no user's token came with the request.
const NO_WRITER: &str = "a function writes secrets only with the rights of the user whose \
                         token triggered it, and this request carried none";

/// The one place resolver errors become WIT errors.
fn to_wit(e: ResolveError) -> wit::Error {
    match e {
        ResolveError::InvalidName(m) => wit::Error::InvalidName(m),
        ResolveError::Denied(m) => wit::Error::Denied(m),
        ResolveError::Unavailable(m) => wit::Error::Unavailable(m),
    }
}

/// A value as the guest receives it: a copy in its own memory, text or a JSON object's text.
fn to_wit_value(value: &SecretValue) -> wit::SecretValue {
    let text = value.expose().to_string();
    if value.is_object() {
        wit::SecretValue::Object(text)
    } else {
        wit::SecretValue::Text(text)
    }
}

impl SecretsView<'_> {
    fn hand_out(
        &mut self,
        scope: Scope,
        secret: StoredSecret,
    ) -> wasmtime::Result<Resource<GuestSecret>> {
        self.ctx.note_bound(scope, &secret);
        Ok(self.table.push(GuestSecret { scope, secret })?)
    }
}

impl wit::Host for SecretsView<'_> {
    async fn get(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Option<Resource<GuestSecret>>, wit::Error>> {
        match self.ctx.resolver.get(&name).await {
            Ok(Some((scope, secret))) => Ok(Ok(Some(self.hand_out(scope, secret)?))),
            Ok(None) => Ok(Ok(None)),
            Err(e) => Ok(Err(to_wit(e))),
        }
    }

    async fn get_from(
        &mut self,
        scope: wit::Scope,
        name: String,
    ) -> wasmtime::Result<Result<Option<Resource<GuestSecret>>, wit::Error>> {
        let scope = Scope::from(scope);
        match self.ctx.resolver.get_from(scope, &name).await {
            Ok(Some(secret)) => Ok(Ok(Some(self.hand_out(scope, secret)?))),
            Ok(None) => Ok(Ok(None)),
            Err(e) => Ok(Err(to_wit(e))),
        }
    }

    async fn get_value(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Option<wit::SecretValue>, wit::Error>> {
        match self.ctx.resolver.get(&name).await {
            Ok(Some((scope, secret))) => {
                self.ctx.note_bound(scope, &secret);
                Ok(Ok(Some(to_wit_value(&secret.value))))
            }
            Ok(None) => Ok(Ok(None)),
            Err(e) => Ok(Err(to_wit(e))),
        }
    }

    async fn set(
        &mut self,
        scope: wit::Scope,
        name: String,
        value: wit::SecretValue,
    ) -> wasmtime::Result<Result<u64, wit::WriteError>> {
        let Some(writer) = self.ctx.writer.clone() else {
            return Ok(Err(wit::WriteError::Denied(NO_WRITER.into())));
        };
        let (text, object) = match value {
            wit::SecretValue::Text(t) => (t, false),
            wit::SecretValue::Object(o) => (o, true),
        };
        let value = match super::writes::value_of(text, object) {
            Ok(v) => v,
            Err(e) => return Ok(Err(write_to_wit(e))),
        };
        let written = writer
            .set(&self.ctx.resolver, scope.into(), &name, &value)
            .await;
        // The function knows the value; its output is masked for it all the same.
        if written.is_ok()
            && !self
                .ctx
                .revealed
                .iter()
                .any(|v| v.expose() == value.expose())
        {
            self.ctx.revealed.push(value);
        }
        Ok(written.map_err(write_to_wit))
    }

    async fn delete(
        &mut self,
        scope: wit::Scope,
        name: String,
    ) -> wasmtime::Result<Result<bool, wit::WriteError>> {
        let Some(writer) = self.ctx.writer.clone() else {
            return Ok(Err(wit::WriteError::Denied(NO_WRITER.into())));
        };
        Ok(writer
            .delete(&self.ctx.resolver, scope.into(), &name)
            .await
            .map_err(write_to_wit))
    }

    async fn list(&mut self) -> wasmtime::Result<Result<Vec<(wit::Scope, String)>, wit::Error>> {
        Ok(self
            .ctx
            .resolver
            .list()
            .await
            .map(|names| {
                names
                    .into_iter()
                    .map(|(scope, name)| (scope.into(), name.as_str().to_string()))
                    .collect()
            })
            .map_err(to_wit))
    }
}

impl wit::HostSecret for SecretsView<'_> {
    fn name(&mut self, this: Resource<GuestSecret>) -> wasmtime::Result<String> {
        Ok(self.table.get(&this)?.secret.name.as_str().to_string())
    }

    fn scope(&mut self, this: Resource<GuestSecret>) -> wasmtime::Result<wit::Scope> {
        Ok(self.table.get(&this)?.scope.into())
    }

    fn version(&mut self, this: Resource<GuestSecret>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&this)?.secret.version)
    }

    fn reveal(&mut self, this: Resource<GuestSecret>) -> wasmtime::Result<wit::SecretValue> {
        Ok(to_wit_value(&self.table.get(&this)?.secret.value))
    }

    fn field(
        &mut self,
        this: Resource<GuestSecret>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        let value = &self.table.get(&this)?.secret.value;
        Ok(value.field(&name).map(|text| text.to_string()))
    }

    fn drop(&mut self, this: Resource<GuestSecret>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
