"""Write Edgeward functions in Python: an HTTP handler, scoped secrets, credentials.

The shape of the Rust SDK (`edgeward-sdk`), over the bindings componentize-py generates for
the `edgeward:platform/function` world (`edgeward wit --out wit` writes that WIT)::

    import edgeward
    from edgeward import Response

    def handle(req):
        secret = edgeward.secrets.get("GREETING")
        if secret is None:
            return Response.text(200, f"hello, you asked for {req.path}\\n")
        return Response.text(200, f"{secret.reveal()} (from {secret.scope} scope)\\n")

    IncomingHandler = edgeward.handler(handle)

Build with ``componentize-py -d wit -w edgeward:platform/function componentize app -o app.wasm``.
Each request runs in a fresh instance: nothing a request read survives into the next one.
"""

import json as _json
from urllib.parse import parse_qsl, urlsplit

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import credentials as _credentials
from wit_world.imports import outgoing_handler as _outgoing
from wit_world.imports import secrets as _secrets
from wit_world.imports import streams as _streams
from wit_world.imports import types as _types

__all__ = ["Request", "Response", "Fetched", "Outgoing", "SecretsError", "fetch", "handler", "secrets"]

_CHUNK = 4096  # wasi:io's blocking-write-and-flush takes at most 4096 bytes a call


class SecretsError(Exception):
    """Why a secret could not be read: `code` is `bad_entry`, `denied` or `unavailable`."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _secrets_error(err):
    value = err.value if isinstance(err, Err) else err
    if isinstance(value, _secrets.Error_InvalidName):
        return SecretsError("bad_entry", value.value)
    if isinstance(value, _secrets.Error_Denied):
        return SecretsError("denied", value.value)
    if isinstance(value, _secrets.Error_Unavailable):
        return SecretsError("unavailable", value.value)
    return SecretsError("unavailable", str(value))


class Secret:
    """A resolved secret. Its value enters memory only through `reveal()` or `field()`."""

    def __init__(self, handle):
        self._handle = handle

    @property
    def name(self):
        return self._handle.name()

    @property
    def scope(self):
        """`package`, `project`, `platform` or `user`."""
        return self._handle.scope().name.lower()

    @property
    def version(self):
        return self._handle.version()

    def reveal(self):
        """The value: a string, or for a multi-field secret its JSON object as text."""
        return self._handle.reveal().value

    def is_object(self):
        return isinstance(self._handle.reveal(), _secrets.SecretValue_Object)

    def field(self, name):
        """One field of a multi-field secret, or None."""
        return self._handle.field(name)

    def __repr__(self):
        return f"Secret(name={self.name!r}, scope={self.scope!r}, value=***)"


class _Secrets:
    """`edgeward.secrets`: get, value, get_from, list."""

    SCOPES = ("package", "project", "platform", "user")

    @staticmethod
    def get(name):
        """Resolves package, then project, then platform scope; None when none holds `name`."""
        try:
            found = _secrets.get(name)
        except Err as err:
            raise _secrets_error(err) from None
        return None if found is None else Secret(found)

    @staticmethod
    def value(name):
        """The value of `name`, resolved as `get` resolves it, in one host call (no handle):
        a string, or a multi-field secret's JSON object as text; None when no scope holds it."""
        try:
            found = _secrets.get_value(name)
        except Err as err:
            raise _secrets_error(err) from None
        return None if found is None else found.value

    @staticmethod
    def get_from(scope, name):
        """Reads one scope only (`"user"` for the caller's own secrets)."""
        try:
            found = _secrets.get_from(_secrets.Scope[scope.upper()], name)
        except Err as err:
            raise _secrets_error(err) from None
        return None if found is None else Secret(found)

    @staticmethod
    def list():
        """The (scope, name) pairs this package may read; never values."""
        try:
            return [(scope.name.lower(), name) for scope, name in _secrets.list()]
        except Err as err:
            raise _secrets_error(err) from None


secrets = _Secrets()


class Request:
    """The request a function handles: `method`, `path` (after /project/package), `query`,
    `headers` (a list of (name, bytes)), `body` (bytes)."""

    def __init__(self, method, path_with_query, headers, body):
        self.method = method
        path, _, query = path_with_query.partition("?")
        self.path = path or "/"
        self.query = query or None
        self.headers = headers
        self.body = body

    def query_param(self, key):
        for k, v in parse_qsl(self.query or "", keep_blank_values=True):
            if k == key:
                return v
        return None

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v.decode("utf-8", "replace")
        return None

    def text(self):
        return self.body.decode("utf-8", "replace")


class Response:
    """A status, headers and a body."""

    def __init__(self, status=200, body=b"", headers=None):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else bytes(body)
        self.headers = list(headers or [])

    @classmethod
    def text(cls, status, body):
        return cls(status, body, [("content-type", "text/plain; charset=utf-8")])

    @classmethod
    def json(cls, status, value):
        body = value if isinstance(value, (str, bytes)) else _json.dumps(value)
        return cls(status, body, [("content-type", "application/json")])

    def with_header(self, name, value):
        self.headers.append((name, value))
        return self


class Fetched:
    """An outgoing request's answer: `status`, `headers`, `body` (bytes)."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def text(self):
        return self.body.decode("utf-8", "replace")


_METHODS = {
    "GET": _types.Method_Get, "HEAD": _types.Method_Head, "POST": _types.Method_Post,
    "PUT": _types.Method_Put, "DELETE": _types.Method_Delete, "CONNECT": _types.Method_Connect,
    "OPTIONS": _types.Method_Options, "TRACE": _types.Method_Trace, "PATCH": _types.Method_Patch,
}


def _method_name(method):
    if isinstance(method, _types.Method_Other):
        return method.value
    return type(method).__name__.removeprefix("Method_").upper()


def _read_all(body):
    stream = body.stream()
    chunks = []
    while True:
        try:
            chunks.append(stream.blocking_read(65536))
        except Err as err:
            if isinstance(err.value, _streams.StreamError_Closed):
                break
            raise
    stream.__exit__(None, None, None)
    _types.IncomingBody.finish(body)
    return b"".join(chunks)


def _write_all(body, data):
    stream = body.write()
    for start in range(0, len(data), _CHUNK):
        stream.blocking_write_and_flush(data[start : start + _CHUNK])
    stream.__exit__(None, None, None)


def _fields(headers):
    return _types.Fields.from_list(
        [(k, v.encode() if isinstance(v, str) else bytes(v)) for k, v in headers]
    )


class Outgoing:
    """An outgoing request; only to hosts the manifest's `[outbound]` allows.

    `with_credential("NAME")` has the host attach the declared credential as the request
    leaves, so its value never enters the function."""

    def __init__(self, method, url):
        self.method = method.upper()
        self.url = url
        self.headers = []
        self.data = b""
        self.credentials = []

    @classmethod
    def get(cls, url):
        return cls("GET", url)

    @classmethod
    def post(cls, url):
        return cls("POST", url)

    def header(self, name, value):
        self.headers.append((name, value))
        return self

    def body(self, data):
        self.data = data.encode() if isinstance(data, str) else bytes(data)
        return self

    def with_credential(self, name):
        self.credentials.append(name)
        return self

    def send(self):
        """The answer, or `OSError` with the wasi:http error (e.g. `HttpRequestDenied`)."""
        url = urlsplit(self.url)
        request = _types.OutgoingRequest(_fields(self.headers))
        method = _METHODS.get(self.method)
        request.set_method(method() if method else _types.Method_Other(self.method))
        request.set_scheme(_types.Scheme_Https() if url.scheme == "https" else _types.Scheme_Http())
        request.set_authority(url.netloc)
        request.set_path_with_query(url.path + (f"?{url.query}" if url.query else "") or "/")
        for name in self.credentials:
            try:
                _credentials.attach(request, name)
            except Err as err:
                raise _secrets_error(err) from None
        body = request.body()
        try:
            future = _outgoing.handle(request, None)
        except Err as err:
            raise OSError(type(err.value).__name__.removeprefix("ErrorCode_")) from None
        _write_all(body, self.data)
        _types.OutgoingBody.finish(body, None)
        while (answer := future.get()) is None:
            future.subscribe().block()
        if isinstance(answer, Err) or isinstance(answer.value, Err):
            err = answer.value if isinstance(answer, Err) else answer.value.value
            raise OSError(type(err).__name__.removeprefix("ErrorCode_"))
        response = answer.value.value
        headers = response.headers().entries()
        return Fetched(response.status(), headers, _read_all(response.consume()))


def fetch(method, url, headers=(), body=b""):
    """One outgoing request; see `Outgoing` for credentials."""
    out = Outgoing(method, url).body(body)
    for name, value in headers:
        out.header(name, value)
    return out.send()


def _run(handle, request, response_out):
    try:
        req = Request(
            _method_name(request.method()),
            request.path_with_query() or "/",
            request.headers().entries(),
            _read_all(request.consume()),
        )
        res = handle(req)
    except SecretsError as err:
        res = Response.text(503, f"secrets: {err}\n")
    response = _types.OutgoingResponse(_fields(res.headers))
    response.set_status_code(res.status)
    body = response.body()
    _types.ResponseOutparam.set(response_out, Ok(response))
    _write_all(body, res.body)
    _types.OutgoingBody.finish(body, None)


def handler(handle):
    """The `IncomingHandler` class componentize-py exports, calling `handle(Request) -> Response`.

    In the app module: `IncomingHandler = edgeward.handler(handle)`."""

    class IncomingHandler(exports.IncomingHandler):
        def handle(self, request, response_out):
            _run(handle, request, response_out)

    return IncomingHandler
