// The Edgeward web console: a client of the documented /v1 API and nothing else.
//
// No framework and no build step (cargo build needs no Node): ES modules (this one, the shared
// `ui.js`, the packages pages in `packages.js`), DOM built with createElement and textContent only (never innerHTML), so a name or value from the API is
// text, never markup; the page's Content-Security-Policy allows no inline script anyway.
// Signed in, the browser holds an HttpOnly session cookie; this page holds only the CSRF
// token every change sends (X-CSRF-Token), in sessionStorage.

import { $, ApiError, api, el, enc, guarded, main, nav, project, say, show, state, valueView, when } from "./ui.js";
import { packagesPage } from "./packages.js";

// ---- sign-in -------------------------------------------------------------------------

function showSignIn() {
  state.me = null;
  nav.gen++;
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
  if (scope === "user") return `/v1/users/${enc(state.me.user)}/secrets`;
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
    importForm(base, scope),
  );
}

function secretRow(base, s, prefix) {
  const one = `${base}/${enc(s.name)}`;
  const out = el("td", { class: "reveal", colspan: 7 });
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
      text: "Versions",
      "aria-label": `Versions of ${s.name}`,
      onclick: () => guarded(() => versionsView(one, s, out)),
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
    el("tr", {}, el("th", { scope: "row", text: s.name.slice(prefix.length) }), el("td", { text: s.version }), el("td", {}, when(s.updated_at)),
      el("td", { text: s.updated_by }), el("td", { text: s.description || "" }), el("td", { text: labels }), actions),
    el("tr", { class: "detail" }, out),
  ];
}

/**
 * A secret's kept versions, newest first: numbers, times and writers (no value). A version's
 * value shows only on request (a read, audited, refused without the right to read); rolling
 * back writes that value again as a new version, after a confirmation.
 */
async function versionsView(one, s, out) {
  const list = await api("GET", `${one}/versions`);
  const shown = el("div", { class: "version-value", "aria-live": "polite" });
  const row = (v) => el("tr", { class: v.current ? "current" : undefined },
    el("th", { scope: "row", text: v.version }),
    el("td", { text: v.current ? "current" : v.deleted ? "deleted" : "" }),
    el("td", {}, when(v.created_at)), el("td", { text: v.created_by || "" }),
    el("td", {}, v.deleted ? null : [
      el("button", { type: "button", text: "View", "aria-label": `View version ${v.version} of ${s.name}`, onclick: () => guarded(async () => {
        const r = await api("GET", `${one}?version=${v.version}`);
        shown.replaceChildren(el("h5", { text: `${s.name}, version ${v.version}` }), valueView(r.value),
          el("button", { type: "button", text: "Hide", onclick: () => shown.replaceChildren() }));
      }) }),
      v.current ? null : el("button", { type: "button", class: "danger", text: "Roll back to this", "aria-label": `Roll back ${s.name} to version ${v.version}`, onclick: () => guarded(async () => {
        if (!confirm(`Make version ${v.version}'s value of ${s.name} current again? It is written as a new version; the current value stays in the history.`)) return;
        const w = await api("POST", `${one}/rollback`, { version: v.version });
        say(`Rolled ${s.name} back to the value of version ${v.version}, now version ${w.version}.`, "ok");
        state.route();
      }) }),
    ]));
  out.replaceChildren(
    el("h4", { text: `Versions of ${s.name}` }),
    el("table", { class: "versions", "aria-label": `Versions of ${s.name}` },
      el("thead", {}, el("tr", {}, ["Version", "", "Written", "By", ""].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, list.versions.slice().reverse().map(row))),
    shown,
    el("button", { type: "button", text: "Close", onclick: () => out.replaceChildren() }),
  );
}

/**
 * Bulk import into the open scope: a JSON object (`{"NAME": "value" | {fields}}`) or
 * `KEY=value` lines (blank lines and `#` comments skipped, one pair of surrounding quotes
 * taken off). The server checks every name and value before it writes any and imports all or
 * nothing; the page refuses what it can see is wrong before sending.
 */
function parseImport(text) {
  const trimmed = text.trim();
  if (!trimmed) throw new ApiError(400, "bad_entry", "nothing to import");
  if (trimmed.startsWith("{")) {
    let object;
    try {
      object = JSON.parse(trimmed);
    } catch (e) {
      throw new ApiError(400, "bad_entry", `not valid JSON: ${e.message}`);
    }
    if (!object || typeof object !== "object" || Array.isArray(object)) throw new ApiError(400, "bad_entry", "the JSON must be an object of names");
    return object;
  }
  const object = {};
  trimmed.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const at = line.indexOf("=");
    if (at < 1) throw new ApiError(400, "bad_entry", `line ${i + 1} is not KEY=value`);
    const key = line.slice(0, at).trim().replace(/^export\s+/, "");
    let value = line.slice(at + 1).trim();
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) value = value.slice(1, -1);
    if (Object.hasOwn(object, key)) throw new ApiError(400, "bad_entry", `line ${i + 1}: ${key} is given twice`);
    object[key] = value;
  });
  if (!Object.keys(object).length) throw new ApiError(400, "bad_entry", "no KEY=value line to import");
  return object;
}

function importForm(base, scope) {
  const text = el("textarea", { id: "import-text", rows: 5, cols: 60, spellcheck: "false", autocomplete: "off",
    placeholder: '{"NAME": "value", "db": {"user": "…", "password": "…"}}  or  NAME=value lines' });
  return el("form", { "aria-labelledby": "import-title", onsubmit: (e) => { e.preventDefault(); guarded(async () => {
    const entries = parseImport(text.value);
    const names = Object.keys(entries);
    if (!confirm(`Import ${names.length} secret${names.length === 1 ? "" : "s"} into the ${scope} scope (${names.join(", ")})? A name that exists gets a new version.`)) return;
    try {
      const r = await api("PUT", base, entries);
      text.value = "";
      say(`Imported ${r.imported.length}: ${r.imported.join(", ")}.`, "ok");
      state.route();
    } catch (err) {
      // All or nothing: a refused import wrote none of them.
      if (!(err instanceof ApiError)) throw err;
      const why = err.message.slice(err.code.length + 2);
      if (err.status < 500) throw new ApiError(err.status, err.code, `${why}; nothing was imported`);
      // The backend failed part way: the embedded store wrote nothing (one transaction); on
      // Vault the writes made before the failure were undone. The list shows the scope as it is.
      await state.route();
      throw new ApiError(err.status, err.code, `${why}; the import did not happen (anything written before the failure was undone): the list shows the scope as it is now`);
    }
  }); } },
    el("h3", { id: "import-title", text: "Import" }),
    el("label", { for: "import-text", text: "A JSON object, or KEY=value lines: all or nothing" }), text,
    el("button", { type: "submit", text: "Import" }),
  );
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
  // A page at a time, each older one from the API's cursor (`before`, the last record's id).
  const size = Number(params.get("limit")) || EXECUTIONS_PAGE;
  let before = null;
  const older = el("button", { type: "button", id: "executions-older", text: "Older", hidden: true, onclick: () => guarded(() => history()) });
  const rowOf = (x) => el("tr", { class: `exec ${x.status}`, "data-id": x.id },
      el("td", {}, el("button", { type: "button", class: "link", title: `${x.started_at} (UTC)`, text: new Date(x.started_at).toLocaleString(), onclick: () => guarded(async () => {
        // A sealed execution's output is for the user it is sealed for, read with their key.
        const full = x.sealed_for === state.me.user
          ? await api("GET", `/v1/users/${enc(state.me.user)}/executions/${enc(x.id)}`)
          : await api("GET", `/v1/projects/${enc(p)}/executions/${enc(x.id)}`);
        if (x.sealed_for && x.sealed_for !== state.me.user) {
          output.replaceChildren(el("h3", { text: `Execution ${x.id}` }), el("p", { class: "sealed", text: full.output || `sealed for ${x.sealed_for}` }));
          return;
        }
        output.replaceChildren(el("h3", { text: `Execution ${x.id}` }),
          el("h4", { text: "stdout (masked)" }), el("pre", { text: full.stdout || "" }),
          el("h4", { text: "stderr (masked)" }), el("pre", { text: full.stderr || "" }));
      }) })),
      el("td", { text: x.package }), el("td", { text: x.sealed_for ? `${x.status} (sealed for ${x.sealed_for})` : x.status }), el("td", { text: x.duration_ms.toFixed(1) }),
      el("td", { text: x.method }), el("td", { text: x.path }));
  // History: the newest records stored, before any new one arrives on the stream; "Older"
  // fetches the page after the last one shown.
  const history = async () => {
    const q = new URLSearchParams({ limit: String(size) });
    if (status) q.set("status", status);
    if (before) q.set("before", before);
    const list = await api("GET", `/v1/projects/${enc(p)}/executions?${q}`);
    for (const x of list.executions) {
      if (seen.has(x.id)) continue;
      seen.add(x.id);
      body.append(rowOf(x));
    }
    before = list.next_before || null;
    older.hidden = !before;
  };
  show(gen,
    el("h2", { text: `Executions of ${p} (live)` }),
    el("label", { for: "status-filter", text: "Status" }), filter,
    el("table", { "aria-label": "Executions", id: "executions" },
      el("thead", {}, el("tr", {}, ["Started", "Package", "Status", "ms", "Method", "Path"].map((h) => el("th", { scope: "col", text: h })))), body),
    older,
    output,
  );
  if (gen !== nav.gen) return;
  await history();
  if (gen !== nav.gen) return;
  const q = status ? `?status=${enc(status)}` : "";
  stream = new EventSource(`/v1/projects/${enc(p)}/executions/stream${q}`);
  // Marked once the stream is open, so whoever waits for new records knows they will come.
  stream.onopen = () => { const t = document.querySelector("#executions"); if (t) t.dataset.stream = "open"; };
  stream.addEventListener("execution", (ev) => {
    const x = JSON.parse(ev.data);
    if (seen.has(x.id)) return;
    seen.add(x.id);
    body.prepend(rowOf(x));
  });
  stream.onerror = () => {
    if (gen === nav.gen) say("the live stream of executions was interrupted; reload the page to resume");
  };
}

// ---- audit, members, tokens ----------------------------------------------------------------

/** The outcomes an audit record has. */
const OUTCOMES = ["ok", "denied", "unauthenticated", "rejected", "error"];

/** A `datetime-local` input's value (the reader's local time) as RFC 3339 UTC. */
const utc = (local) => (local ? new Date(local).toISOString() : "");
/** The other way, for showing a filter again. */
function localInput(iso) {
  if (!iso) return "";
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}T${pad(t.getHours())}:${pad(t.getMinutes())}`;
}

/**
 * The audit log, newest first, a page at a time ("Older" follows the API's `before` cursor),
 * filtered by actor, action, outcome and time; times in local time, UTC on hover. Fits 1280 px:
 * fixed columns, long targets wrap.
 */
async function auditPage(params, gen) {
  const f = Object.fromEntries(["actor", "action", "outcome", "since", "until"].map((k) => [k, params.get(k) || ""]));
  const size = Number(params.get("limit")) || 50;
  const base = new URLSearchParams({ limit: String(size) });
  for (const [k, v] of Object.entries(f)) if (v) base.set(k, v);
  if (!state.me.platform_admin) base.set("project", project());
  const body = el("tbody");
  let before = null;
  const more = async () => {
    const q = new URLSearchParams(base);
    if (before) q.set("before", String(before));
    const list = await api("GET", `/v1/audit?${q}`);
    for (const e of list.entries) {
      body.append(el("tr", { class: `audit ${e.outcome}`, "data-id": e.id }, el("td", {}, when(e.at)), el("td", { text: e.actor }), el("td", { class: "action", text: e.action }),
        el("td", { class: "target", text: e.target }), el("td", { text: e.status }), el("td", { text: e.outcome }), el("td", { class: "detail", text: e.detail || "" })));
    }
    before = list.next_before ?? null;
    older.hidden = before === null;
  };
  const older = el("button", { type: "button", id: "audit-older", text: "Older", hidden: true, onclick: () => guarded(more) });
  const input = (k, attrs = {}) => el("input", { id: `audit-${k}`, value: f[k], ...attrs });
  const actor = input("actor", { size: 12 });
  const action = input("action", { size: 34, placeholder: "PUT /v1/projects/{project}/secrets/{name}" });
  const outcome = el("select", { id: "audit-outcome" }, ["", ...OUTCOMES].map((o) => el("option", { value: o, selected: o === f.outcome, text: o || "any" })));
  const since = el("input", { id: "audit-since", type: "datetime-local", value: localInput(f.since) });
  const until = el("input", { id: "audit-until", type: "datetime-local", value: localInput(f.until) });
  const filter = (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of [["actor", actor.value], ["action", action.value], ["outcome", outcome.value], ["since", utc(since.value)], ["until", utc(until.value)]]) if (v) q.set(k, v);
    if (params.get("limit")) q.set("limit", params.get("limit"));
    location.hash = `#/audit?${q}`;
  };
  show(gen,
    el("h2", { text: "Audit" }),
    el("form", { class: "filters", "aria-label": "Filter the audit log", onsubmit: filter },
      el("label", { for: "audit-actor", text: "Actor" }), actor,
      el("label", { for: "audit-action", text: "Action" }), action,
      el("label", { for: "audit-outcome", text: "Outcome" }), outcome,
      el("label", { for: "audit-since", text: "From" }), since,
      el("label", { for: "audit-until", text: "To" }), until,
      el("button", { type: "submit", text: "Filter" })),
    el("table", { class: "audit", "aria-label": "Audit records" },
      el("colgroup", {}, ["when", "actor", "action", "target", "status", "outcome", "detail"].map((c) => el("col", { class: `c-${c}` }))),
      el("thead", {}, el("tr", {}, ["When", "Actor", "Action", "Target", "Status", "Outcome", "Detail"].map((h) => el("th", { scope: "col", text: h })))),
      body),
    older,
  );
  if (gen !== nav.gen) return;
  await more();
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
  const list = await api("GET", `/v1/users/${enc(state.me.user)}/tokens`);
  const name = el("input", { id: "token-name" });
  const shown = el("div", { "aria-live": "polite" });
  // How this session's key was made: a key someone else redeemed shows their time, address
  // and client, not yours.
  const o = state.me.key_origin;
  const origin = o
    ? `Your key was made by redeeming enrollment code ewe_…${o.code_hint || "?"} (made by ${o.created_by}) at ${o.redeemed_at} from ${o.redeemed_from || "an unknown address"} with ${o.redeemed_client || "an unknown client"}. If that was not you, enroll again and revoke these tokens.`
    : state.me.user_key ? "Your key was not made by an enrollment on record." : "This session opens none of your user secrets (an admin issued the token it was made from).";
  show(gen, 
    el("h2", { text: `Tokens of ${state.me.user}` }),
    el("p", { id: "key-origin", text: origin }),
    el("table", { "aria-label": "Tokens" },
      el("thead", {}, el("tr", {}, ["Id", "Name", "Created", "Expires", "Revoked", ""].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, list.tokens.map((t) => {
        const mine = t.id === state.me.token_id;
        return el("tr", { class: mine ? "this-session" : undefined }, el("th", { scope: "row", text: t.id }),
          el("td", { text: mine ? `${t.name || ""} (this session)` : t.name }),
          el("td", { text: t.created_at }), el("td", { text: t.expires_at || "never" }), el("td", { text: t.revoked_at || "" }),
          el("td", {}, t.revoked_at ? null : el("button", { type: "button", text: "Revoke", "aria-label": `Revoke ${t.id}`, onclick: () => guarded(async () => {
            // Nothing is revoked on one click; the session's own token says what follows.
            const question = mine
              ? `Revoke ${t.id}? It is the token of this session: you will be signed out at once.`
              : `Revoke ${t.id}${t.name ? ` (${t.name})` : ""}? Whatever uses it is refused from now on; this cannot be undone.`;
            if (!confirm(question)) return;
            await api("DELETE", `/v1/users/${enc(state.me.user)}/tokens/${enc(t.id)}`);
            if (mine) return showSignIn();
            say(`Revoked ${t.id}.`, "ok");
            route();
          }) })));
      }))),
    el("form", { "aria-labelledby": "token-title", onsubmit: (e) => { e.preventDefault(); guarded(async () => {
      const t = await api("POST", `/v1/users/${enc(state.me.user)}/tokens`, { name: name.value || undefined });
      shown.replaceChildren(el("p", { text: "Shown once; store it now:" }), el("input", { readonly: true, value: t.token, size: 70, "aria-label": "New token" }));
    }); } },
      el("h3", { id: "token-title", text: "New token" }),
      el("label", { for: "token-name", text: "Name" }), name, el("button", { type: "submit", text: "Create" })),
    shown,
  );
}

// ---- grants: which code may read my user secrets --------------------------------------------

async function grantsPage(params, gen) {
  const list = await api("GET", `/v1/users/${enc(state.me.user)}/grants`);
  const target = el("input", { id: "grant-target", required: true, size: 30, placeholder: "project/package" });
  const version = el("input", { id: "grant-version", type: "number", min: 1, size: 6 });
  const review = el("div", { "aria-live": "polite" });
  const grantState = (g) => g.valid === false ? "invalid (made with another key)" : g.serving ? "serving" : "not serving";
  show(gen,
    el("h2", { text: `Grants of ${state.me.user}` }),
    el("p", { text: "A function reads your user secrets on your requests only in a version you granted here: its exact code and manifest. A new version asks again." }),
    el("table", { "aria-label": "Grants" },
      el("thead", {}, el("tr", {}, ["Package", "Version", "sha256", "Reads", "Writes", "Sends to", "State", "Granted", ""].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, list.grants.map((g) => el("tr", {},
        el("th", { scope: "row", text: `${g.project}/${g.package}` }), el("td", { text: g.version }),
        el("td", {}, el("code", { text: g.sha256.slice(0, 12) })),
        el("td", { text: g.user_secrets.join(", ") }), el("td", { text: g.writes_user_secrets ? "yes" : "no" }),
        el("td", { text: g.outbound_hosts.join(", ") || "none" }), el("td", { text: grantState(g) }), el("td", { text: g.granted_at }),
        el("td", {}, el("button", { type: "button", class: "danger", text: "Revoke", "aria-label": `Revoke the grant of ${g.project}/${g.package} version ${g.version}`, onclick: () => guarded(async () => {
          if (!confirm(`Revoke the grant of ${g.project}/${g.package} version ${g.version}? Your next call to it is refused until you grant it again.`)) return;
          await api("DELETE", `/v1/users/${enc(state.me.user)}/grants/${enc(g.id)}`);
          say("Grant revoked.", "ok");
          route();
        }) })))))),
    el("form", { "aria-labelledby": "grant-title", onsubmit: (e) => { e.preventDefault(); guarded(async () => {
      const [project, pkg] = target.value.split("/");
      const ask = { project, package: pkg, version: version.value ? Number(version.value) : undefined };
      const g = await api("POST", `/v1/users/${enc(state.me.user)}/grants`, { ...ask, preview: true });
      review.replaceChildren(
        el("h4", { text: `${g.project}/${g.package} version ${g.version}` }),
        el("dl", {},
          el("dt", { text: "Code sha256" }), el("dd", {}, el("code", { text: g.sha256 })),
          el("dt", { text: "Manifest sha256" }), el("dd", {}, el("code", { text: g.manifest_sha256 })),
          el("dt", { text: "Reads your" }), el("dd", { text: g.user_secrets.join(", ") }),
          el("dt", { text: "Writes them" }), el("dd", { text: g.writes_user_secrets ? "yes" : "no" }),
          el("dt", { text: "May send requests to" }), el("dd", { text: g.outbound_hosts.join(", ") || "nowhere" })),
        el("button", { type: "button", text: "Grant this version", onclick: () => guarded(async () => {
          await api("POST", `/v1/users/${enc(state.me.user)}/grants`, { ...ask, version: g.version });
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
  if (!state.me) return;
  if (stream) { stream.close(); stream = null; }
  const [path, query] = (location.hash.slice(2) || "secrets").split("?");
  const page = pages[path] || secretsPage;
  for (const a of document.querySelectorAll("#nav a")) a.setAttribute("aria-current", a.getAttribute("href") === `#/${path}` ? "page" : "false");
  // A page shown after an action keeps the action's message.
  const gen = ++nav.gen;
  await guarded(() => page(new URLSearchParams(query || ""), gen), false);
}

async function start() {
  try {
    state.me = await api("GET", "/v1/whoami");
  } catch {
    return showSignIn();
  }
  const projects = await api("GET", "/v1/projects");
  const select = $("#project");
  const chosen = sessionStorage.getItem("project");
  select.replaceChildren(...projects.projects.map((p) => el("option", { value: p.name, selected: p.name === chosen, text: p.name })));
  $("#who").textContent = `${state.me.user}${state.me.platform_admin ? " (platform admin)" : ""}`;
  $("#nav").hidden = false;
  // Someone in no project has no secrets or packages to show here: their grants, then.
  if (!location.hash) history.replaceState(null, "", projects.projects.length ? "#/secrets" : "#/grants");
  await route();
}

state.unauthenticated = showSignIn;
state.route = route;
$("#project").addEventListener("change", (e) => { sessionStorage.setItem("project", e.target.value); route(); });
$("#signout").addEventListener("click", signOut);
window.addEventListener("hashchange", route);
start();
