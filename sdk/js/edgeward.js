// Write Edgeward functions in JavaScript: an HTTP handler, scoped secrets, credentials.
//
// The shape of the Rust SDK (`edgeward-sdk`), over the bindings componentize-js makes for the
// `edgeward:platform/function` world (`edgeward wit --out wit` writes that WIT):
//
//   import { handler, secrets, Response } from './edgeward.js';
//
//   export const incomingHandler = handler((req) => {
//     const secret = secrets.get('GREETING');
//     if (!secret) return Response.text(200, `hello, you asked for ${req.path}\n`);
//     return Response.text(200, `${secret.reveal()} (from ${secret.scope} scope)\n`);
//   });
//
// Build with `componentize-js app.js --wit wit --world-name function -o app.wasm`.
// Each request runs in a fresh instance: nothing a request read survives into the next one.

import * as witSecrets from 'edgeward:platform/secrets@0.1.0';
import { attach } from 'edgeward:platform/credentials@0.1.0';
import {
  Fields,
  IncomingBody,
  OutgoingBody,
  OutgoingRequest,
  OutgoingResponse,
  ResponseOutparam,
} from 'wasi:http/types@0.2.12';
import { handle as sendRequest } from 'wasi:http/outgoing-handler@0.2.12';

const CHUNK = 4096; // wasi:io's blocking-write-and-flush takes at most 4096 bytes a call
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const ERROR_CODES = { 'invalid-name': 'bad_entry', denied: 'denied', unavailable: 'unavailable' };

/** Why a secret could not be read: `code` is `bad_entry`, `denied` or `unavailable`. */
export class SecretsError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.code = code;
  }
}

function secretsError(e) {
  const payload = e && e.payload;
  if (payload && payload.tag) {
    return new SecretsError(ERROR_CODES[payload.tag] || 'unavailable', payload.val);
  }
  return e;
}

/** A resolved secret. Its value enters memory only through `reveal()` or `field()`. */
export class Secret {
  #handle;
  constructor(handle) {
    this.#handle = handle;
  }
  get name() {
    return this.#handle.name();
  }
  /** `package`, `project`, `platform` or `user`. */
  get scope() {
    return this.#handle.scope();
  }
  get version() {
    return Number(this.#handle.version());
  }
  /** The value: a string, or for a multi-field secret its JSON object as text. */
  reveal() {
    return this.#handle.reveal().val;
  }
  isObject() {
    return this.#handle.reveal().tag === 'object';
  }
  /** One field of a multi-field secret, or undefined. */
  field(name) {
    return this.#handle.field(name);
  }
  toString() {
    return `Secret(${this.name}, ${this.scope}, ***)`;
  }
  toJSON() {
    return { name: this.name, scope: this.scope, value: '***' };
  }
}

function wrap(call) {
  let found;
  try {
    found = call();
  } catch (e) {
    throw secretsError(e);
  }
  return found === undefined ? undefined : new Secret(found);
}

/** `secrets.get(name)`: package, then project, then platform scope; undefined when none has it. */
export const secrets = {
  get: (name) => wrap(() => witSecrets.get(name)),
  /** The value alone, resolved as `get` resolves it, in one host call: a string (a multi-field
   * secret's JSON object as text), or undefined when no scope has it. */
  value(name) {
    let found;
    try {
      found = witSecrets.getValue(name);
    } catch (e) {
      throw secretsError(e);
    }
    return found === undefined ? undefined : found.val;
  },
  /** One scope only (`'user'` for the caller's own secrets). */
  getFrom: (scope, name) => wrap(() => witSecrets.getFrom(scope, name)),
  /** [scope, name] pairs this package may read; never values. */
  list() {
    try {
      return witSecrets.list();
    } catch (e) {
      throw secretsError(e);
    }
  },
};

function readAll(body) {
  const stream = body.stream();
  const chunks = [];
  let length = 0;
  for (;;) {
    let chunk;
    try {
      chunk = stream.blockingRead(65536n);
    } catch (e) {
      if (e.payload && e.payload.tag === 'closed') break;
      throw e;
    }
    chunks.push(chunk);
    length += chunk.length;
  }
  stream[Symbol.dispose]();
  IncomingBody.finish(body);
  const all = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

function writeAll(body, data) {
  const stream = body.write();
  for (let at = 0; at < data.length; at += CHUNK) {
    stream.blockingWriteAndFlush(data.subarray(at, at + CHUNK));
  }
  stream[Symbol.dispose]();
}

const bytes = (v) => (typeof v === 'string' ? encoder.encode(v) : new Uint8Array(v));
const fields = (headers) => Fields.fromList(headers.map(([k, v]) => [k, bytes(v)]));

/** The request a function handles: `method`, `path` (after /project/package), `query`,
 * `headers` ([name, Uint8Array] pairs), `body` (Uint8Array). */
export class Request {
  constructor(method, pathWithQuery, headers, body) {
    const q = pathWithQuery.indexOf('?');
    this.method = method;
    this.path = (q < 0 ? pathWithQuery : pathWithQuery.slice(0, q)) || '/';
    this.query = q < 0 ? undefined : pathWithQuery.slice(q + 1);
    this.headers = headers;
    this.body = body;
  }
  queryParam(key) {
    const value = new URLSearchParams(this.query || '').get(key);
    return value === null ? undefined : value;
  }
  header(name) {
    const found = this.headers.find(([k]) => k.toLowerCase() === name.toLowerCase());
    return found ? decoder.decode(found[1]) : undefined;
  }
  text() {
    return decoder.decode(this.body);
  }
}

/** A status, headers and a body. */
export class Response {
  constructor(status = 200, body = '', headers = []) {
    this.status = status;
    this.body = bytes(body);
    this.headers = [...headers];
  }
  static text(status, body) {
    return new Response(status, body, [['content-type', 'text/plain; charset=utf-8']]);
  }
  static json(status, value) {
    const body = typeof value === 'string' ? value : JSON.stringify(value);
    return new Response(status, body, [['content-type', 'application/json']]);
  }
  withHeader(name, value) {
    this.headers.push([name, value]);
    return this;
  }
}

/** An outgoing request's answer: `status`, `headers`, `body` (Uint8Array). */
export class Fetched {
  constructor(status, headers, body) {
    this.status = status;
    this.headers = headers;
    this.body = body;
  }
  text() {
    return decoder.decode(this.body);
  }
}

const METHODS = ['get', 'head', 'post', 'put', 'delete', 'connect', 'options', 'trace', 'patch'];

/** An outgoing request; only to hosts the manifest's `[outbound]` allows.
 * `withCredential(name)` has the host attach the declared credential as the request leaves,
 * so its value never enters the function. */
export class Outgoing {
  constructor(method, url) {
    this.method = method.toUpperCase();
    this.url = url;
    this.headers = [];
    this.data = new Uint8Array();
    this.credentials = [];
  }
  static get(url) {
    return new Outgoing('GET', url);
  }
  static post(url) {
    return new Outgoing('POST', url);
  }
  header(name, value) {
    this.headers.push([name, value]);
    return this;
  }
  body(data) {
    this.data = bytes(data);
    return this;
  }
  withCredential(name) {
    this.credentials.push(name);
    return this;
  }
  /** The answer; throws an Error naming the wasi:http error (e.g. `HTTP-request-denied`). */
  send() {
    const url = new URL(this.url);
    const request = new OutgoingRequest(fields(this.headers));
    const lower = this.method.toLowerCase();
    request.setMethod(METHODS.includes(lower) ? { tag: lower } : { tag: 'other', val: this.method });
    request.setScheme({ tag: url.protocol === 'https:' ? 'HTTPS' : 'HTTP' });
    request.setAuthority(url.host);
    request.setPathWithQuery(`${url.pathname}${url.search}` || '/');
    for (const name of this.credentials) {
      try {
        attach(request, name);
      } catch (e) {
        throw secretsError(e);
      }
    }
    const body = request.body();
    let future;
    try {
      future = sendRequest(request, undefined);
    } catch (e) {
      throw new Error(e.payload ? e.payload.tag : String(e));
    }
    writeAll(body, this.data);
    OutgoingBody.finish(body, undefined);
    let answer;
    while ((answer = future.get()) === undefined) future.subscribe().block();
    if (answer.tag === 'err' || answer.val.tag === 'err') {
      const err = answer.tag === 'err' ? answer.val : answer.val.val;
      throw new Error(err && err.tag ? err.tag : String(err));
    }
    const response = answer.val.val;
    return new Fetched(response.status(), response.headers().entries(), readAll(response.consume()));
  }
}

/** One outgoing request; see `Outgoing` for credentials. */
export function fetchOut(method, url, { headers = [], body = '' } = {}) {
  const out = new Outgoing(method, url).body(body);
  for (const [name, value] of headers) out.header(name, value);
  return out.send();
}

function methodName(method) {
  return method.tag === 'other' ? method.val : method.tag.toUpperCase();
}

/** The `wasi:http/incoming-handler` export, calling `handle(Request) -> Response`:
 * `export const incomingHandler = handler(handle);` */
export function handler(handle) {
  return {
    handle(incoming, responseOut) {
      let res;
      try {
        const req = new Request(
          methodName(incoming.method()),
          incoming.pathWithQuery() || '/',
          incoming.headers().entries(),
          readAll(incoming.consume()),
        );
        res = handle(req);
      } catch (e) {
        if (!(e instanceof SecretsError)) throw e;
        res = Response.text(503, `secrets: ${e.message}\n`);
      }
      const response = new OutgoingResponse(fields(res.headers));
      response.setStatusCode(res.status);
      const body = response.body();
      ResponseOutparam.set(responseOut, { tag: 'ok', val: response });
      writeAll(body, res.body);
      OutgoingBody.finish(body, undefined);
    },
  };
}
