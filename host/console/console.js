// The Edgeward web console: a client of the documented /v1 API and nothing else.
//
// No framework and no build step (cargo build needs no Node): one module, DOM built with
// createElement and textContent only (never innerHTML), so a name or value from the API is
// text, never markup; the page's Content-Security-Policy allows no inline script anyway.
// Signed in, the browser holds an HttpOnly session cookie; this page holds only the CSRF
// token every change sends (X-CSRF-Token), in sessionStorage.

const $ = (sel) => document.querySelector(sel);
const main = () => $("#main");

// Each navigation has a generation; a page whose data arrives after the user moved on does
// not overwrite the newer one.
let routeGen = 0;
function show(gen, ...nodes) {
  if (gen !== routeGen) return false;
  main().replaceChildren(...nodes);
  return true;
}

/** An element with attributes and children (strings become text). */
function el(tag, attrs = {}, ...children) {
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

function say(message, kind = "error") {
  const s = $("#status");
  s.textContent = message;
  s.className = kind;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

/** Calls the API; a change carries the session's CSRF token. Throws ApiError. */
async function api(method, path, body) {
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
    if (r.status === 401) showSignIn();
    throw new ApiError(r.status, e.code || `http_${r.status}`, e.message || r.statusText);
  }
  return data;
}

/** Runs `f`, showing an API error plainly (its stable code first). */
async function guarded(f, clear = true) {
  try {
    if (clear) say("", "");
    await f();
  } catch (e) {
    say(e instanceof ApiError ? e.message : String(e));
  }
}

const enc = encodeURIComponent;
let me = null;
const project = () => $("#project").value;

// ---- sign-in -------------------------------------------------------------------------

function showSignIn() {
  me = null;
  routeGen++;
  $("#nav").hidden = true;
  const input = el("input", { id: "token", type: "password", autocomplete: "off", required: true });
  const form = el(
    "form",
    { "aria-labelledby": "signin-title" },
    el("h2", { id: "signin-title", text: "Sign in" }),
    el("label", { for: "token", text: "API token (ew_…)" }),
    input,
    el("button", { type: "submit", text: "Sign in" }),
    el("p", {
      class: "hint",
      text: "The token is exchanged for a session of 12 hours; the page never keeps it.",
    }),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    guarded(async () => {
      const s = await api("POST", "/v1/sessions", { token: input.value });
      input.value = "";
      sessionStorage.setItem("csrf", s.csrf_token);
      // start() picks the first page (no hashchange: one route, not two).
      history.replaceState(null, "", location.pathname);
      await start();
    });
  });
  main().replaceChildren(form);
  input.focus();
}

async function signOut() {
  await guarded(async () => {
    await api("DELETE", "/v1/sessions/current");
    sessionStorage.removeItem("csrf");
    showSignIn();
    say("Signed out.", "ok");
  });
}

// ---- secrets: a file explorer of folders -----------------------------------------------

function secretsBase(scope, pkg) {
  if (scope === "platform") return "/v1/secrets/platform";
  if (scope === "user") return `/v1/users/${enc(me.user)}/secrets`;
  if (scope === "package") return `/v1/projects/${enc(project())}/packages/${enc(pkg)}/secrets`;
  return `/v1/projects/${enc(project())}/secrets`;
}

async function secretsPage(params, gen) {
  const scope = params.get("scope") || "project";
  const pkg = params.get("package") || "";
  const prefix = params.get("prefix") || "";
  const base = secretsBase(scope, pkg);
  const list = await api("GET", `${base}?prefix=${enc(prefix)}`);
  const go = (p) => {
    const q = new URLSearchParams({ scope, package: pkg, prefix: p });
    location.hash = `#/secrets?${q}`;
  };
  // The folder path as a breadcrumb.
  const crumbs = [el("button", { type: "button", class: "link", onclick: () => go(""), text: "/" })];
  let acc = "";
  for (const part of prefix.split("/").filter(Boolean)) {
    acc += `${part}/`;
    const at = acc;
    crumbs.push(el("button", { type: "button", class: "link", onclick: () => go(at), text: `${part}/` }));
  }
  const direct = list.secrets.filter((s) => !s.name.slice(prefix.length).includes("/"));
  const rows = direct.map((s) => secretRow(base, s, prefix));
  const folders = list.folders.map((f) =>
    el("li", {}, el("button", { type: "button", class: "folder", onclick: () => go(f), text: `📁 ${f.slice(prefix.length)}` })),
  );
  const scopeSelect = el(
    "select",
    { id: "scope", onchange: (e) => { const q = new URLSearchParams({ scope: e.target.value, package: pkg }); location.hash = `#/secrets?${q}`; } },
    ...["project", "package", "platform", "user"].map((s) => el("option", { value: s, selected: s === scope, text: s })),
  );
  const pkgInput = el("input", { id: "scope-package", value: pkg, size: 16 });
  show(gen, 
    el("h2", { text: `Secrets: ${scope} scope` }),
    el(
      "div",
      { class: "bar" },
      el("label", { for: "scope", text: "Scope" }),
      scopeSelect,
      scope === "package" ? [el("label", { for: "scope-package", text: "Package" }), pkgInput,
        el("button", { type: "button", onclick: () => { const q = new URLSearchParams({ scope, package: pkgInput.value }); location.hash = `#/secrets?${q}`; }, text: "Open" })] : null,
    ),
    el("nav", { "aria-label": "Folder", class: "crumbs" }, crumbs),
    el("ul", { class: "folders", "aria-label": "Folders" }, folders),
    el(
      "table",
      { "aria-label": "Secrets in this folder" },
      el("thead", {}, el("tr", {}, ["Name", "Version", "Updated", "By", "Description", "Labels", "Actions"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows),
    ),
    createForm(base, prefix),
  );
}

function secretRow(base, s, prefix) {
  const one = `${base}/${enc(s.name)}`;
  const out = el("td", { class: "reveal" });
  const labels = Object.entries(s.labels || {}).map(([k, v]) => `${k}=${v}`).join(" ");
  const actions = el(
    "td",
    {},
    el("button", {
      type: "button",
      text: "Reveal",
      "aria-label": `Reveal ${s.name}`,
      onclick: () => guarded(async () => {
        const v = await api("GET", one);
        out.replaceChildren(valueView(v.value), el("button", { type: "button", text: "Hide", onclick: () => out.replaceChildren() }));
      }),
    }),
    el("button", {
      type: "button",
      text: "Wrap",
      "aria-label": `Wrap ${s.name} in a single-use link`,
      onclick: () => guarded(async () => {
        const w = await api("POST", `${one}/wrap`, { ttl: 600 });
        const token = el("input", { readonly: true, value: w.token, "aria-label": "Wrapping token", size: 40 });
        out.replaceChildren(
          el("p", { text: `Single use, until ${w.expires_at}; redeem at ${w.unwrap_url}` }),
          token,
          el("button", { type: "button", text: "Copy", onclick: () => navigator.clipboard.writeText(w.token).then(() => say("Copied.", "ok")) }),
        );
      }),
    }),
    el("button", {
      type: "button",
      text: "Edit",
      "aria-label": `Edit ${s.name}`,
      // The form shows the current field names (a read, audited like Reveal); values left
      // blank stay as they are. Without the right to read, the form starts empty.
      onclick: () => guarded(async () => {
        let current;
        let note = "";
        try {
          current = (await api("GET", one)).value;
        } catch (e) {
          note = `The current value is not shown (${e.message}); what you enter replaces it.`;
        }
        out.replaceChildren(createForm(base, prefix, s, current, note));
      }),
    }),
    el("button", {
      type: "button",
      text: "Delete",
      "aria-label": `Delete ${s.name}`,
      onclick: () => guarded(async () => {
        if (!confirm(`Delete ${s.name} and every version?`)) return;
        try {
          await api("DELETE", one);
        } catch (e) {
          // Serving versions bind it: the API names them; deleting anyway is a second choice.
          if (!(e instanceof ApiError) || e.code !== "in_use") throw e;
          if (!confirm(`${e.message}\n\nDelete ${s.name} anyway?`)) return say(e.message);
          await api("DELETE", `${one}?force=true`);
        }
        say(`Deleted ${s.name}.`, "ok");
        route();
      }),
    }),
  );
  return [
    el("tr", {}, el("th", { scope: "row", text: s.name.slice(prefix.length) }), el("td", { text: s.version }), el("td", { text: s.updated_at }),
      el("td", { text: s.updated_by }), el("td", { text: s.description || "" }), el("td", { text: labels }), actions),
    el("tr", { class: "detail" }, out),
  ];
}

/** A value: a multi-field secret as a table of fields, a plain one as text. */
function valueView(value) {
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

/**
 * The form for a new secret, or (given `existing`) for editing one: a plain value or named
 * fields. Editing shows `current`'s field names; a value left blank stays as it is, and a form
 * that changes no value saves only the description (no new version).
 */
function createForm(base, prefix, existing, current, note = "") {
  const id = existing ? "edit" : "new";
  const name = el("input", { id: `${id}-name`, value: existing ? existing.name : prefix, required: true, size: 32, readonly: !!existing });
  const description = el("input", { id: `${id}-description`, size: 32, value: existing ? existing.description || "" : "" });
  const hasFields = current && typeof current === "object";
  const mode = el("select", { id: `${id}-mode` },
    el("option", { value: "plain", selected: !hasFields, text: "Plain value" }),
    el("option", { value: "fields", selected: !!hasFields, text: "Fields (name and value each)" }));
  const unchanged = existing && current !== undefined ? "unchanged" : "";
  const plain = el("input", { id: `${id}-value`, type: "password", autocomplete: "off", size: 40, placeholder: !hasFields ? unchanged : "" });
  const fields = el("tbody");
  const addField = (k = "") => {
    const n = fields.children.length + 1;
    fields.append(el("tr", {},
      el("td", {}, el("input", { "aria-label": `Field ${n} name`, class: "fk", value: k })),
      el("td", {}, el("input", { "aria-label": `Field ${n} value`, class: "fv", type: "password", autocomplete: "off", placeholder: k ? unchanged : "" }))));
  };
  if (hasFields) for (const k of Object.keys(current)) addField(k);
  else addField();
  const plainPart = el("div", { class: "plain" }, el("label", { for: `${id}-value`, text: "Value" }), plain);
  const fieldsPart = el("div", { class: "fields-part" },
    el("table", { "aria-label": existing ? `Fields of ${existing.name}` : "Fields of the new secret" },
      el("thead", {}, el("tr", {}, el("th", { text: "Field" }), el("th", { text: "Value" }))), fields),
    el("button", { type: "button", onclick: () => addField(), text: "Add a field" }));
  const showMode = () => { plainPart.hidden = mode.value !== "plain"; fieldsPart.hidden = mode.value !== "fields"; };
  mode.addEventListener("change", showMode);
  showMode();
  const form = el(
    "form",
    { "aria-labelledby": `${id}-title` },
    el("h3", { id: `${id}-title`, text: existing ? `Edit ${existing.name}` : "New secret" }),
    note ? el("p", { class: "note", text: note }) : null,
    el("label", { for: `${id}-name`, text: "Name (folders with /)" }), name,
    el("label", { for: `${id}-description`, text: "Description" }), description,
    el("label", { for: `${id}-mode`, text: "Kind" }), mode,
    plainPart, fieldsPart,
    el("button", { type: "submit", text: existing ? "Save" : "Create" }),
  );
  /** The value the form asks for; `undefined` when it changes none. Throws on a bad form. */
  const valueOf = () => {
    if (mode.value === "plain") {
      if (plain.value !== "") return plain.value;
      if (existing) return undefined;
      throw new ApiError(400, "bad_entry", "give the value");
    }
    const value = {};
    let changed = !hasFields;
    const rows = [...fields.children];
    rows.forEach((row, i) => {
      const k = row.querySelector(".fk").value.trim();
      const v = row.querySelector(".fv").value;
      if (!k && v) throw new ApiError(400, "bad_entry", `field ${i + 1} has a value but no name`);
      if (!k) return;
      if (k in value) throw new ApiError(400, "bad_entry", `the field ${k} is named twice`);
      if (v === "" && hasFields && k in current) value[k] = current[k];
      else { value[k] = v; changed = true; }
    });
    if (hasFields && Object.keys(value).length !== Object.keys(current).length) changed = true;
    if (Object.keys(value).length === 0) throw new ApiError(400, "bad_entry", "give at least one named field, or choose Plain value");
    return changed ? value : undefined;
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    guarded(async () => {
      const value = valueOf();
      const path = existing ? `${base}/${enc(existing.name)}` : base;
      if (existing && value === undefined) {
        // Metadata only: the value and its version stay.
        const w = await api("PATCH", path, { description: description.value });
        say(`Saved the description of ${existing.name}; the value stays version ${w.version}.`, "ok");
      } else if (existing) {
        const w = await api("PUT", path, { value, description: description.value });
        say(`Saved ${existing.name} as version ${w.version}.`, "ok");
      } else {
        const body = { name: name.value, value };
        if (description.value) body.description = description.value;
        await api("POST", base, body);
        say(`Created ${name.value}.`, "ok");
      }
      route();
    });
  });
  return form;
}

// ---- packages ---------------------------------------------------------------------------

async function packagesPage(params, gen) {
  const p = project();
  const name = params.get("package");
  if (name) return packagePage(p, name, gen);
  const list = await api("GET", `/v1/projects/${enc(p)}/packages`);
  show(gen, 
    el("h2", { text: `Packages of ${p}` }),
    el("table", { "aria-label": "Packages" },
      el("thead", {}, el("tr", {}, ["Package", "Current", "Versions", "Created"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, list.packages.map((k) => el("tr", {},
        el("th", { scope: "row" }, el("a", { href: `#/packages?package=${enc(k.name)}`, text: k.name })),
        el("td", { text: k.current_version ?? "-" }), el("td", { text: k.versions }), el("td", { text: k.created_at }))))),
    uploadForm(p),
  );
}

async function packagePage(p, name, gen) {
  const k = await api("GET", `/v1/projects/${enc(p)}/packages/${enc(name)}`);
  const manifest = el("pre", { class: "manifest", "aria-label": "Manifest of the current version" });
  const current = k.versions.find((v) => v.version === k.current_version);
  if (current) manifest.textContent = JSON.stringify(current.manifest, null, 2);
  show(gen, 
    el("h2", { text: `${p}/${name}` }),
    el("table", { "aria-label": "Versions" },
      el("thead", {}, el("tr", {}, ["Version", "", "Created", "By", "Size", "sha256", ""].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, k.versions.map((v) => el("tr", {},
        el("th", { scope: "row", text: v.version }),
        el("td", { text: v.version === k.current_version ? "current" : "" }),
        el("td", { text: v.created_at }), el("td", { text: v.created_by }), el("td", { text: v.size }),
        el("td", {}, el("code", { text: v.sha256.slice(0, 12) })),
        el("td", {}, v.version === k.current_version ? null : el("button", {
          type: "button",
          text: "Roll back to this",
          "aria-label": `Roll back to version ${v.version}`,
          onclick: () => guarded(async () => {
            await api("POST", `/v1/projects/${enc(p)}/packages/${enc(name)}/rollback`, { version: v.version });
            say(`Version ${v.version} is current.`, "ok");
            route();
          }),
        })))))),
    el("h3", { text: "Reads its callers' user secrets" }),
    el("p", { id: "user-secrets", text: current && current.manifest["user-secrets"]
      ? `${current.manifest["user-secrets"].join(", ")}: each caller grants this version before it runs with their token (Grants).`
      : "None: this version reads no user's secrets." }),
    el("h3", { text: "Manifest" }), manifest,
    el("button", {
      type: "button",
      class: "danger",
      text: "Delete package",
      onclick: () => guarded(async () => {
        if (!confirm(`Delete ${p}/${name} and every version?`)) return;
        await api("DELETE", `/v1/projects/${enc(p)}/packages/${enc(name)}`);
        location.hash = "#/packages";
      }),
    }),
  );
}

function uploadForm(p) {
  const name = el("input", { id: "upload-name", required: true, size: 20 });
  const file = el("input", { id: "upload-file", type: "file", accept: ".wasm,application/wasm" });
  const bar = el("progress", { id: "upload-progress", max: 100, value: 0, hidden: true, "aria-label": "Upload progress" });
  const drop = el("div", { class: "drop", tabindex: 0, text: "Drop a component (.wasm) here, or choose one" });
  const send = (f) => {
    if (!name.value) return say("bad_entry: name the package first");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/projects/${enc(p)}/packages/${enc(name.value)}/versions`);
    xhr.setRequestHeader("Content-Type", "application/wasm");
    xhr.setRequestHeader("X-CSRF-Token", sessionStorage.getItem("csrf") || "");
    bar.hidden = false;
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201) {
        say(`Deployed ${p}/${name.value} version ${body.version}.`, "ok");
        location.hash = `#/packages?package=${enc(name.value)}`;
      } else {
        const e = body.error || {};
        say(`${e.code || xhr.status}: ${e.message || "the upload failed"}`);
      }
    };
    xhr.onerror = () => say("unavailable: the upload did not reach the server");
    xhr.send(f);
  };
  file.addEventListener("change", () => file.files[0] && send(file.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files[0]) send(e.dataTransfer.files[0]); });
  return el("form", { "aria-labelledby": "upload-title", onsubmit: (e) => e.preventDefault() },
    el("h3", { id: "upload-title", text: "Upload a version" }),
    el("label", { for: "upload-name", text: "Package" }), name,
    el("label", { for: "upload-file", text: "Component" }), file, drop, bar);
}

// ---- executions (live) ------------------------------------------------------------------

let stream = null;

/** The execution statuses the API takes, from its own OpenAPI document (one list, no copy). */
let executionStatuses = null;
async function statuses() {
  if (executionStatuses) return executionStatuses;
  const r = await fetch("/v1/openapi.json", { credentials: "same-origin" });
  if (!r.ok) throw new ApiError(r.status, `http_${r.status}`, "cannot read the API's status list");
  const doc = await r.json();
  const found = doc.components?.schemas?.ExecutionStatus?.enum;
  if (!Array.isArray(found)) throw new ApiError(500, "internal", "the API's document has no ExecutionStatus list");
  executionStatuses = found;
  return found;
}

/** How many executions the page shows at first and adds with "Older". */
const EXECUTIONS_PAGE = 50;

async function executionsPage(params, gen) {
  const p = project();
  const status = params.get("status") || "";
  const body = el("tbody");
  const output = el("section", { "aria-label": "Execution output" });
  const seen = new Set();
  const known = await statuses();
  const filter = el("select", { id: "status-filter", onchange: (e) => { location.hash = `#/executions?status=${enc(e.target.value)}`; } },
    ...["", ...known].map((s) => el("option", { value: s, selected: s === status, text: s || "any" })));
  let shown = EXECUTIONS_PAGE;
  const older = el("button", { type: "button", id: "executions-older", text: "Older", onclick: () => guarded(async () => {
    shown += EXECUTIONS_PAGE;
    await history();
  }) });
  const rowOf = (x) => el("tr", { class: `exec ${x.status}`, "data-id": x.id },
      el("td", {}, el("button", { type: "button", class: "link", text: x.started_at, onclick: () => guarded(async () => {
        // A sealed execution's output is for the user it is sealed for, read with their key.
        const full = x.sealed_for === me.user
          ? await api("GET", `/v1/users/${enc(me.user)}/executions/${enc(x.id)}`)
          : await api("GET", `/v1/projects/${enc(p)}/executions/${enc(x.id)}`);
        if (x.sealed_for && x.sealed_for !== me.user) {
          output.replaceChildren(el("h3", { text: `Execution ${x.id}` }), el("p", { class: "sealed", text: full.output || `sealed for ${x.sealed_for}` }));
          return;
        }
        output.replaceChildren(el("h3", { text: `Execution ${x.id}` }),
          el("h4", { text: "stdout (masked)" }), el("pre", { text: full.stdout || "" }),
          el("h4", { text: "stderr (masked)" }), el("pre", { text: full.stderr || "" }));
      }) })),
      el("td", { text: x.package }), el("td", { text: x.sealed_for ? `${x.status} (sealed for ${x.sealed_for})` : x.status }), el("td", { text: x.duration_ms.toFixed(1) }),
      el("td", { text: x.method }), el("td", { text: x.path }));
  // History: the newest records stored, before any new one arrives on the stream.
  const history = async () => {
    const q = new URLSearchParams({ limit: String(shown) });
    if (status) q.set("status", status);
    const list = await api("GET", `/v1/projects/${enc(p)}/executions?${q}`);
    for (const x of list.executions) {
      if (seen.has(x.id)) continue;
      seen.add(x.id);
      body.append(rowOf(x));
    }
    older.hidden = list.executions.length < shown;
  };
  show(gen,
    el("h2", { text: `Executions of ${p} (live)` }),
    el("label", { for: "status-filter", text: "Status" }), filter,
    el("table", { "aria-label": "Executions" },
      el("thead", {}, el("tr", {}, ["Started", "Package", "Status", "ms", "Method", "Path"].map((h) => el("th", { scope: "col", text: h })))), body),
    older,
    output,
  );
  if (gen !== routeGen) return;
  await history();
  if (gen !== routeGen) return;
  const q = status ? `?status=${enc(status)}` : "";
  stream = new EventSource(`/v1/projects/${enc(p)}/executions/stream${q}`);
  stream.addEventListener("execution", (ev) => {
    const x = JSON.parse(ev.data);
    if (seen.has(x.id)) return;
    seen.add(x.id);
    body.prepend(rowOf(x));
  });
  stream.onerror = () => {
    if (gen === routeGen) say("the live stream of executions was interrupted; reload the page to resume");
  };
}

// ---- audit, members, tokens ----------------------------------------------------------------

async function auditPage(params, gen) {
  const actor = params.get("actor") || "";
  const q = new URLSearchParams({ limit: "200" });
  if (actor) q.set("actor", actor);
  if (!me.platform_admin) q.set("project", project());
  const list = await api("GET", `/v1/audit?${q}`);
  const actorInput = el("input", { id: "audit-actor", value: actor });
  show(gen, 
    el("h2", { text: "Audit" }),
    el("form", { onsubmit: (e) => { e.preventDefault(); location.hash = `#/audit?actor=${enc(actorInput.value)}`; } },
      el("label", { for: "audit-actor", text: "Actor" }), actorInput, el("button", { type: "submit", text: "Filter" })),
    el("table", { "aria-label": "Audit records" },
      el("thead", {}, el("tr", {}, ["When", "Actor", "Action", "Target", "Status", "Outcome", "Detail"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, list.entries.map((e) => el("tr", {}, el("td", { text: e.at }), el("td", { text: e.actor }), el("td", { text: e.action }),
        el("td", { text: e.target }), el("td", { text: e.status }), el("td", { text: e.outcome }), el("td", { text: e.detail || "" }))))),
  );
}

async function membersPage(params, gen) {
  const p = project();
  const list = await api("GET", `/v1/projects/${enc(p)}/members`);
  const user = el("input", { id: "member-user", required: true });
  const role = el("select", { id: "member-role" }, ["viewer", "developer", "admin"].map((r) => el("option", { value: r, text: r })));
  show(gen, 
    el("h2", { text: `Members of ${p}` }),
    el("table", { "aria-label": "Members" },
      el("thead", {}, el("tr", {}, ["User", "Role", "Since", "By", ""].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, list.members.map((m) => el("tr", {}, el("th", { scope: "row", text: m.user }), el("td", { text: m.role }),
        el("td", { text: m.granted_at }), el("td", { text: m.granted_by }),
        el("td", {}, el("button", { type: "button", text: "Remove", "aria-label": `Remove ${m.user}`, onclick: () => guarded(async () => {
          await api("DELETE", `/v1/projects/${enc(p)}/members/${enc(m.user)}`);
          route();
        }) })))))),
    el("form", { "aria-labelledby": "member-title", onsubmit: (e) => { e.preventDefault(); guarded(async () => {
      await api("PUT", `/v1/projects/${enc(p)}/members/${enc(user.value)}`, { role: role.value });
      route();
    }); } },
      el("h3", { id: "member-title", text: "Grant a role" }),
      el("label", { for: "member-user", text: "User" }), user, el("label", { for: "member-role", text: "Role" }), role,
      el("button", { type: "submit", text: "Grant" })),
  );
}

async function tokensPage(params, gen) {
  const list = await api("GET", `/v1/users/${enc(me.user)}/tokens`);
  const name = el("input", { id: "token-name" });
  const shown = el("div", { "aria-live": "polite" });
  // How this session's key was made: a key someone else redeemed shows their time, address
  // and client, not yours.
  const o = me.key_origin;
  const origin = o
    ? `Your key was made by redeeming enrollment code ewe_…${o.code_hint || "?"} (made by ${o.created_by}) at ${o.redeemed_at} from ${o.redeemed_from || "an unknown address"} with ${o.redeemed_client || "an unknown client"}. If that was not you, enroll again and revoke these tokens.`
    : me.user_key ? "Your key was not made by an enrollment on record." : "This session opens none of your user secrets (an admin issued the token it was made from).";
  show(gen, 
    el("h2", { text: `Tokens of ${me.user}` }),
    el("p", { id: "key-origin", text: origin }),
    el("table", { "aria-label": "Tokens" },
      el("thead", {}, el("tr", {}, ["Id", "Name", "Created", "Expires", "Revoked", ""].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, list.tokens.map((t) => {
        const mine = t.id === me.token_id;
        return el("tr", { class: mine ? "this-session" : undefined }, el("th", { scope: "row", text: t.id }),
          el("td", { text: mine ? `${t.name || ""} (this session)` : t.name }),
          el("td", { text: t.created_at }), el("td", { text: t.expires_at || "never" }), el("td", { text: t.revoked_at || "" }),
          el("td", {}, t.revoked_at ? null : el("button", { type: "button", text: "Revoke", "aria-label": `Revoke ${t.id}`, onclick: () => guarded(async () => {
            // Nothing is revoked on one click; the session's own token says what follows.
            const question = mine
              ? `Revoke ${t.id}? It is the token of this session: you will be signed out at once.`
              : `Revoke ${t.id}${t.name ? ` (${t.name})` : ""}? Whatever uses it is refused from now on; this cannot be undone.`;
            if (!confirm(question)) return;
            await api("DELETE", `/v1/users/${enc(me.user)}/tokens/${enc(t.id)}`);
            if (mine) return showSignIn();
            say(`Revoked ${t.id}.`, "ok");
            route();
          }) })));
      }))),
    el("form", { "aria-labelledby": "token-title", onsubmit: (e) => { e.preventDefault(); guarded(async () => {
      const t = await api("POST", `/v1/users/${enc(me.user)}/tokens`, { name: name.value || undefined });
      shown.replaceChildren(el("p", { text: "Shown once; store it now:" }), el("input", { readonly: true, value: t.token, size: 70, "aria-label": "New token" }));
    }); } },
      el("h3", { id: "token-title", text: "New token" }),
      el("label", { for: "token-name", text: "Name" }), name, el("button", { type: "submit", text: "Create" })),
    shown,
  );
}

// ---- grants: which code may read my user secrets --------------------------------------------

async function grantsPage(params, gen) {
  const list = await api("GET", `/v1/users/${enc(me.user)}/grants`);
  const target = el("input", { id: "grant-target", required: true, size: 30, placeholder: "project/package" });
  const version = el("input", { id: "grant-version", type: "number", min: 1, size: 6 });
  const review = el("div", { "aria-live": "polite" });
  const state = (g) => g.valid === false ? "invalid (made with another key)" : g.serving ? "serving" : "not serving";
  show(gen,
    el("h2", { text: `Grants of ${me.user}` }),
    el("p", { text: "A function reads your user secrets on your requests only in a version you granted here: its exact code and manifest. A new version asks again." }),
    el("table", { "aria-label": "Grants" },
      el("thead", {}, el("tr", {}, ["Package", "Version", "sha256", "Reads", "Writes", "Sends to", "State", "Granted", ""].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, list.grants.map((g) => el("tr", {},
        el("th", { scope: "row", text: `${g.project}/${g.package}` }), el("td", { text: g.version }),
        el("td", {}, el("code", { text: g.sha256.slice(0, 12) })),
        el("td", { text: g.user_secrets.join(", ") }), el("td", { text: g.writes_user_secrets ? "yes" : "no" }),
        el("td", { text: g.outbound_hosts.join(", ") || "none" }), el("td", { text: state(g) }), el("td", { text: g.granted_at }),
        el("td", {}, el("button", { type: "button", class: "danger", text: "Revoke", "aria-label": `Revoke the grant of ${g.project}/${g.package} version ${g.version}`, onclick: () => guarded(async () => {
          if (!confirm(`Revoke the grant of ${g.project}/${g.package} version ${g.version}? Your next call to it is refused until you grant it again.`)) return;
          await api("DELETE", `/v1/users/${enc(me.user)}/grants/${enc(g.id)}`);
          say("Grant revoked.", "ok");
          route();
        }) })))))),
    el("form", { "aria-labelledby": "grant-title", onsubmit: (e) => { e.preventDefault(); guarded(async () => {
      const [project, pkg] = target.value.split("/");
      const ask = { project, package: pkg, version: version.value ? Number(version.value) : undefined };
      const g = await api("POST", `/v1/users/${enc(me.user)}/grants`, { ...ask, preview: true });
      review.replaceChildren(
        el("h4", { text: `${g.project}/${g.package} version ${g.version}` }),
        el("dl", {},
          el("dt", { text: "Code sha256" }), el("dd", {}, el("code", { text: g.sha256 })),
          el("dt", { text: "Manifest sha256" }), el("dd", {}, el("code", { text: g.manifest_sha256 })),
          el("dt", { text: "Reads your" }), el("dd", { text: g.user_secrets.join(", ") }),
          el("dt", { text: "Writes them" }), el("dd", { text: g.writes_user_secrets ? "yes" : "no" }),
          el("dt", { text: "May send requests to" }), el("dd", { text: g.outbound_hosts.join(", ") || "nowhere" })),
        el("button", { type: "button", text: "Grant this version", onclick: () => guarded(async () => {
          await api("POST", `/v1/users/${enc(me.user)}/grants`, { ...ask, version: g.version });
          say(`Granted ${g.project}/${g.package} version ${g.version}.`, "ok");
          route();
        }) }));
    }); } },
      el("h3", { id: "grant-title", text: "Grant a package version" }),
      el("label", { for: "grant-target", text: "Package" }), target,
      el("label", { for: "grant-version", text: "Version (default: serving)" }), version,
      el("button", { type: "submit", text: "Review" })),
    review,
  );
}

// ---- routing ----------------------------------------------------------------------------

const pages = { secrets: secretsPage, packages: packagesPage, executions: executionsPage, audit: auditPage, members: membersPage, tokens: tokensPage, grants: grantsPage };

async function route() {
  if (!me) return;
  if (stream) { stream.close(); stream = null; }
  const [path, query] = (location.hash.slice(2) || "secrets").split("?");
  const page = pages[path] || secretsPage;
  for (const a of document.querySelectorAll("#nav a")) a.setAttribute("aria-current", a.getAttribute("href") === `#/${path}` ? "page" : "false");
  // A page shown after an action keeps the action's message.
  const gen = ++routeGen;
  await guarded(() => page(new URLSearchParams(query || ""), gen), false);
}

async function start() {
  try {
    me = await api("GET", "/v1/whoami");
  } catch {
    return showSignIn();
  }
  const projects = await api("GET", "/v1/projects");
  const select = $("#project");
  const chosen = sessionStorage.getItem("project");
  select.replaceChildren(...projects.projects.map((p) => el("option", { value: p.name, selected: p.name === chosen, text: p.name })));
  $("#who").textContent = `${me.user}${me.platform_admin ? " (platform admin)" : ""}`;
  $("#nav").hidden = false;
  // Someone in no project has no secrets or packages to show here: their grants, then.
  if (!location.hash) history.replaceState(null, "", projects.projects.length ? "#/secrets" : "#/grants");
  await route();
}

$("#project").addEventListener("change", (e) => { sessionStorage.setItem("project", e.target.value); route(); });
$("#signout").addEventListener("click", signOut);
window.addEventListener("hashchange", route);
start();
