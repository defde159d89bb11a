//! The OpenAPI document, made from the route table ([`super::routes`]): each route's method,
//! path, path parameters, query, request and response types, the statuses its rule and shape
//! imply, and whether it needs a token. Served at `GET /v1/openapi.json`.

use super::model::ErrorBody;
use super::policy::Need;
use axum::Json;
use axum::http::Method;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::OnceLock;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref,
    RefOr, Required, ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

/// Components collected from a type: its own schema and those it refers to.
type Collect = fn(&mut Vec<(String, RefOr<Schema>)>);

/// A JSON body's type, by name, with its schemas.
#[derive(Clone)]
pub struct Payload {
    name: Cow<'static, str>,
    collect: Collect,
}

impl Payload {
    /// The payload of type `T`.
    pub fn json<T: ToSchema>() -> Payload {
        Payload {
            name: T::name(),
            collect: |schemas| {
                schemas.push((T::name().into_owned(), T::schema()));
                T::schemas(schemas);
            },
        }
    }

    fn reference(&self) -> RefOr<Schema> {
        RefOr::Ref(Ref::from_schema_name(self.name.clone()))
    }
}

/// What a route takes and gives, beyond its method, path and rule.
#[derive(Clone, Default)]
pub struct Doc {
    /// A one-line summary.
    pub summary: &'static str,
    /// Its JSON request body.
    pub request: Option<Payload>,
    /// Whether the body may be left out.
    pub body_optional: bool,
    /// Its success status and body (`None`: no body).
    pub response: Option<(u16, Option<Payload>)>,
    /// Its query parameters.
    pub query: Option<fn() -> Vec<Parameter>>,
    /// Statuses it answers beyond those implied.
    pub extra: Vec<u16>,
}

/// Any JSON document (the OpenAPI document itself).
#[derive(serde::Serialize)]
pub struct AnyJson;

impl PartialSchema for AnyJson {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Object).into()
    }
}

impl ToSchema for AnyJson {}

fn method(m: &Method) -> HttpMethod {
    match *m {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        Method::HEAD => HttpMethod::Head,
        _ => HttpMethod::Get,
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No content",
        400 => "Bad input: `bad_entry`",
        401 => "No valid token: `unauthenticated`",
        403 => "Not allowed: `denied`",
        404 => "No such thing: `not_found`",
        409 => "The name is taken: `already_exists`",
        413 => "Too large: `too_large`",
        422 => "Refused: the component or manifest (`bad_manifest`, `not_a_component`, …)",
        503 => "A backend cannot be reached: `unavailable`",
        _ => "",
    }
}

/// The statuses a route answers besides success: from its rule, its parameters and body.
fn error_statuses(route: &super::Route) -> BTreeSet<u16> {
    let mut s: BTreeSet<u16> = route.doc.extra.iter().copied().collect();
    let has_params = route.path.contains('{');
    let open = matches!(
        route.path.as_str(),
        "/v1/health" | "/v1/openapi.json" | "/v1/ready"
    );
    if open {
        return s;
    }
    s.insert(400);
    // Every other route reads the store, which may be unreachable.
    s.insert(503);
    if !matches!(route.need, Need::Public) {
        s.insert(401);
    }
    if !matches!(route.need, Need::Public | Need::Authenticated) || has_params {
        s.insert(403);
    }
    if has_params || matches!(route.need, Need::Public) {
        s.insert(404);
    }
    if matches!(route.method, Method::POST | Method::PUT | Method::PATCH) {
        s.insert(409);
        s.insert(413);
    }
    s
}

/// The OpenAPI document of every route.
pub fn document() -> OpenApi {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    Payload::json::<ErrorBody>().collect_into(&mut schemas);
    let mut paths = PathsBuilder::new();
    for route in super::routes() {
        let doc = &route.doc;
        let mut op = OperationBuilder::new()
            .summary(Some(doc.summary))
            .operation_id(Some(operation_id(&route.method, &route.path)))
            .tag(route.path.split('/').nth(2).unwrap_or("v1"));
        for name in path_params(&route.path) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name.clone())
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(param_schema(&name))),
            );
        }
        if let Some(query) = doc.query {
            for p in query() {
                op = op.parameter(p);
            }
        }
        if let Some(body) = &doc.request {
            body.collect_into(&mut schemas);
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(body.reference())).build(),
                    )
                    .required(Some(if doc.body_optional {
                        Required::False
                    } else {
                        Required::True
                    }))
                    .build(),
            ));
        }
        if route.path.ends_with("/versions") {
            op = op.request_body(Some(upload_body()));
        }
        let (status, body) = doc.response.clone().unwrap_or((200, None));
        let mut ok = ResponseBuilder::new().description(reason(status));
        if let Some(body) = &body {
            body.collect_into(&mut schemas);
            ok = ok.content(
                "application/json",
                ContentBuilder::new().schema(Some(body.reference())).build(),
            );
        }
        if route.path.ends_with("/executions/stream") {
            ok = ok.content(
                "text/event-stream",
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .build(),
            );
        }
        op = op.response(status.to_string(), ok.build());
        for s in error_statuses(&route) {
            if s == status {
                continue;
            }
            let body = if route.path == "/v1/ready" {
                Payload::json::<super::model::Ready>()
            } else {
                Payload::json::<ErrorBody>()
            };
            op = op.response(
                s.to_string(),
                ResponseBuilder::new().description(reason(s)).content(
                    "application/json",
                    ContentBuilder::new().schema(Some(body.reference())).build(),
                ),
            );
        }
        if !matches!(route.need, Need::Public) {
            op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        paths = paths.path(
            route.path.clone(),
            PathItem::new(method(&route.method), op.build()),
        );
    }
    // `paths` merges operations of one path given one at a time.
    let mut components = ComponentsBuilder::new().security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    let mut seen = BTreeSet::new();
    for (name, schema) in schemas {
        if seen.insert(name.clone()) {
            components = components.schema(name, schema);
        }
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Edgeward API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The control plane of Edgeward. Errors are {\"error\": {\"code\", \"message\"}} \
                     with a stable code; a bearer token (Authorization: Bearer ew_…) on every \
                     route but the public ones.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .build()
}

impl Payload {
    fn collect_into(&self, schemas: &mut Vec<(String, RefOr<Schema>)>) {
        (self.collect)(schemas);
    }
}

fn upload_body() -> utoipa::openapi::request_body::RequestBody {
    let binary = ObjectBuilder::new()
        .schema_type(Type::String)
        .content_media_type("application/wasm")
        .build();
    let multipart = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "component",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .content_media_type("application/wasm"),
        )
        .required("component")
        .property(
            "manifest",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("edgeward.toml")),
        )
        .property(
            "secrets",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("secrets.json, seeding package-scope secrets")),
        )
        .property(
            "bindings",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "a JSON object {\"ENV\": \"NAME\" or \"NAME#FIELD\"}: secret bindings over \
                 the manifest's [env], each checked at deploy (422 unresolved_binding)",
                )),
        )
        .property(
            "env",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "a JSON object {\"KEY\": \"VALUE\"}: literals over the manifest's [env]",
                )),
        )
        .build();
    RequestBodyBuilder::new()
        .content(
            "application/wasm",
            ContentBuilder::new().schema(Some(binary)).build(),
        )
        .content(
            "multipart/form-data",
            ContentBuilder::new().schema(Some(multipart)).build(),
        )
        .required(Some(Required::True))
        .build()
}

/// The rule of a name, as a pattern.
pub const NAME_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,62}$";
/// The rule of a secret name, as a pattern.
pub const SECRET_NAME_PATTERN: &str =
    "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,127})*$";

fn param_schema(name: &str) -> ObjectBuilder {
    let s = ObjectBuilder::new().schema_type(Type::String);
    match name {
        "project" | "package" | "user" => s.pattern(Some(NAME_PATTERN)),
        "name" => s
            .pattern(Some(SECRET_NAME_PATTERN))
            .max_length(Some(crate::names::SECRET_NAME_MAX)),
        // An execution id; a token's public id, or the token itself.
        "id" => s.pattern(Some("^[0-9a-f-]{36}$")),
        "token" => s.pattern(Some("^[A-Za-z0-9_]{1,128}$")),
        _ => s,
    }
}

fn path_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_string)
        .collect()
}

fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for seg in path.trim_start_matches("/v1/").split('/') {
        id.push('_');
        id.push_str(seg.trim_start_matches('{').trim_end_matches('}'));
    }
    id
}

/// `GET /v1/openapi.json`.
pub async fn serve() -> Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(
        DOC.get_or_init(|| serde_json::to_value(document()).unwrap_or(Value::Null))
            .clone(),
    )
}

#[cfg(test)]
mod tests {
    /// The console's executions filter reads the status list from this document: it must be
    /// there, and be the runtime's own list, every variant.
    #[test]
    fn the_document_lists_every_execution_status() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let listed = &doc["components"]["schemas"]["ExecutionStatus"]["enum"];
        let expected: Vec<&str> = crate::runtime::ExecutionStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(listed, &serde_json::json!(expected), "{listed}");
    }
}
