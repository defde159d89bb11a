// What every page of the console shares: the DOM builder (text only, never markup), the
// status line, the API client with its CSRF header, the navigation generation, the signed-in
// user, and the time and value views. No page logic lives here.

export const $ = (sel) => document.querySelector(sel);
export const main = () => $("#main");
export const enc = encodeURIComponent;

/** The signed-in user (`GET /v1/whoami`), what the API client does on a 401, and how a page
 * is shown again after a change (both set by console.js). */
export const state = { me: null, unauthenticated: () => {}, route: () => {} };
export const project = () => $("#project").value;

// Each navigation has a generation; a page whose data arrives after the user moved on does
// not overwrite the newer one.
export const nav = { gen: 0 };
export function show(gen, ...nodes) {
  if (gen !== nav.gen) return false;
  main().replaceChildren(...nodes);
  return true;
}

/** An element with attributes and children (strings become text). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  }
  return e;
}

export function say(message, kind = "error") {
  const s = $("#status");
  s.textContent = message;
  s.className = kind;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

/** Calls the API; a change carries the session's CSRF token. Throws ApiError. */
export async function api(method, path, body) {
  const headers = {};
  if (method !== "GET") headers["X-CSRF-Token"] = sessionStorage.getItem("csrf") || "";
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  if (r.status === 204) return null;
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = data.error || {};
    if (r.status === 401) state.unauthenticated();
    throw new ApiError(r.status, e.code || `http_${r.status}`, e.message || r.statusText);
  }
  return data;
}

/** Runs `f`, showing an API error plainly (its stable code first). */
export async function guarded(f, clear = true) {
  try {
    if (clear) say("", "");
    await f();
  } catch (e) {
    say(e instanceof ApiError ? e.message : String(e));
  }
}

/** A time from the API (RFC 3339, UTC) in the reader's local time, UTC on hover. */
export function when(iso) {
  if (!iso) return el("span", { text: "" });
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return el("span", { text: iso });
  const local = t.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
  return el("time", { datetime: iso, title: `${iso.replace("T", " ").replace("Z", "")} UTC`, text: local });
}

/** A value: a multi-field secret as a table of fields, a plain one as text. */
export function valueView(value) {
  if (value && typeof value === "object") {
    return el(
      "table",
      { class: "fields", "aria-label": "Fields" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Field" }), el("th", { scope: "col", text: "Value" }))),
      el("tbody", {}, Object.entries(value).map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }), el("td", { text: typeof v === "string" ? v : JSON.stringify(v) })))),
    );
  }
  return el("code", { text: String(value) });
}
