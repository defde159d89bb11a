// The console's packages: the list, an upload (a component, with an optional manifest and
// secrets.json), a package's versions and rollback, and its settings (env bindings, outbound
// hosts, credentials, write grants, limits) saved as a new version of the serving component
// through `PUT …/packages/{package}/manifest`, the same deploy an upload goes through.

import { ApiError, api, el, enc, guarded, project, say, show, state, when } from "./ui.js";

export async function packagesPage(params, gen) {
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
        el("td", { text: k.current_version ?? "-" }), el("td", { text: k.versions }), el("td", {}, when(k.created_at)))))),
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
        el("td", {}, when(v.created_at)), el("td", { text: v.created_by }), el("td", { text: v.size }),
        el("td", {}, el("code", { text: v.sha256.slice(0, 12) })),
        el("td", {}, v.version === k.current_version ? null : el("button", {
          type: "button",
          text: "Roll back to this",
          "aria-label": `Roll back to version ${v.version}`,
          onclick: () => guarded(async () => {
            await api("POST", `/v1/projects/${enc(p)}/packages/${enc(name)}/rollback`, { version: v.version });
            say(`Version ${v.version} is current.`, "ok");
            state.route();
          }),
        })))))),
    el("h3", { text: "Reads its callers' user secrets" }),
    el("p", { id: "user-secrets", text: current && current.manifest["user-secrets"]
      ? `${current.manifest["user-secrets"].join(", ")}: each caller grants this version before it runs with their token (Grants).`
      : "None: this version reads no user's secrets." }),
    current ? settingsForm(p, name, current) : null,
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

/** The limits a manifest may set, as the API names them. */
const LIMITS = ["timeout-ms", "memory-mb", "max-request-bytes", "max-response-bytes", "max-concurrency", "max-outbound-requests"];
/** The scopes a function may be allowed to write. */
const WRITE_SCOPES = ["package", "project", "platform", "user"];

/** Rows of inputs, one per entry, with a button that adds an empty one. */
function rows(label, columns, entries) {
  const body = el("tbody");
  const add = (values = []) => {
    const n = body.children.length + 1;
    body.append(el("tr", {}, columns.map((c, i) => el("td", {},
      el("input", { "aria-label": `${label} ${n} ${c.split(" ")[0].toLowerCase()}`, "data-col": i, value: values[i] ?? "", size: i === 0 ? 18 : 30 })))));
  };
  for (const e of entries) add(e);
  const table = el("table", { class: "rows", "aria-label": label },
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", text: c })))), body);
  return {
    node: el("div", { class: "rows-part" }, table,
      el("button", { type: "button", text: `Add ${label.toLowerCase().replace(/s$/, "")}`, onclick: () => add() })),
    values: () => [...body.children].map((tr) => [...tr.querySelectorAll("input")].map((i) => i.value.trim()))
      .filter((vs) => vs.some((v) => v !== "")),
  };
}

/**
 * The serving version's settings as a form. What the form does not show (the secrets
 * allowlist, user-secrets, env prefixes) is kept as it is; a save is a new version of the same
 * component, refused if another version started serving since the page was read.
 */
function settingsForm(p, name, current) {
  const m = current.manifest || {};
  const env = Object.entries(m.env || {}).filter(([k]) => k !== "expand");
  const envRows = rows("Environment variables", ["Name", "Value (literal, secret:NAME[#field] or credential:NAME)"], env);
  const outbound = m.outbound || {};
  const hosts = el("textarea", { id: "settings-hosts", rows: 3, cols: 50, text: (outbound.hosts || []).join("\n") });
  const creds = rows("Credentials", ["Secret", "Hosts (space-separated)", "Header", "Format"],
    (outbound.credentials || []).map((c) => [c.secret, (c.hosts || []).join(" "), c.header || "", c.format || ""]));
  const writes = WRITE_SCOPES.map((s) => el("label", { class: "check" },
    el("input", { type: "checkbox", id: `settings-write-${s}`, value: s, checked: (m["write-secrets"] || []).includes(s) }), ` ${s}`));
  const writeAs = el("select", { id: "settings-write-as" },
    ["user", "package"].map((w) => el("option", { value: w, selected: (m["write-secrets-as"] || "user") === w, text: w })));
  const limits = LIMITS.map((l) => [l, el("input", { id: `settings-${l}`, type: "number", min: 1, value: m.limits?.[l] ?? "", placeholder: "server default", size: 10 })]);

  /** The manifest the form describes: the current one with the shown parts replaced. */
  const manifestOf = () => {
    const next = structuredClone(m);
    const vars = {};
    for (const [k, v] of envRows.values()) {
      if (!k) throw new ApiError(400, "bad_entry", `an environment variable with the value ${JSON.stringify(v)} has no name`);
      if (k === "expand") throw new ApiError(400, "bad_entry", "`expand` is not a variable name");
      vars[k] = v;
    }
    next.env = { ...vars, ...(m.env?.expand ? { expand: m.env.expand } : {}) };
    const credentials = creds.values().map(([secret, hs, header, format]) => {
      const c = { secret, hosts: hs.split(/\s+/).filter(Boolean) };
      if (header) c.header = header;
      if (format) c.format = format;
      const kept = (outbound.credentials || []).find((o) => o.secret === secret);
      if (kept?.field) c.field = kept.field;
      return c;
    });
    next.outbound = { hosts: hosts.value.split(/\s+/).filter(Boolean), ...(credentials.length ? { credentials } : {}) };
    next["write-secrets"] = writes.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    if (writeAs.value === "user") delete next["write-secrets-as"];
    else next["write-secrets-as"] = writeAs.value;
    next.limits = {};
    for (const [l, input] of limits) if (input.value !== "") next.limits[l] = Number(input.value);
    return next;
  };
  return el("form", { "aria-labelledby": "settings-title", class: "settings", onsubmit: (e) => { e.preventDefault(); guarded(async () => {
    const d = await api("PUT", `/v1/projects/${enc(p)}/packages/${enc(name)}/manifest`, { manifest: manifestOf(), base_version: current.version });
    say(`Saved the settings as version ${d.version} of ${p}/${name} (the code of version ${current.version}); it serves now.`, "ok");
    state.route();
  }); } },
    el("h3", { id: "settings-title", text: `Settings (version ${current.version})` }),
    el("p", { class: "hint", text: "Saved as a new version of the same code. Users who granted this package their secrets are asked again when the settings change." }),
    el("h4", { text: "Environment" }), envRows.node,
    el("h4", { text: "Outbound" }),
    el("label", { for: "settings-hosts", text: "Hosts it may call (one per line)" }), hosts,
    el("h4", { text: "Credentials the host attaches" }), creds.node,
    el("h4", { text: "Secret writes" }),
    el("fieldset", {}, el("legend", { text: "Scopes it may write" }), writes),
    el("label", { for: "settings-write-as", text: "Package-scope writes act as" }), writeAs,
    el("h4", { text: "Limits" }),
    el("div", { class: "limits" }, limits.map(([l, input]) => [el("label", { for: `settings-${l}`, text: l }), input])),
    el("button", { type: "submit", text: "Save as a new version" }),
  );
}

/** Upload: a component, and optionally a manifest and a secrets.json (multipart then). */
function uploadForm(p) {
  const name = el("input", { id: "upload-name", required: true, size: 20 });
  const file = el("input", { id: "upload-file", type: "file", accept: ".wasm,application/wasm" });
  const manifest = el("input", { id: "upload-manifest", type: "file", accept: ".toml,.json" });
  const secrets = el("input", { id: "upload-secrets", type: "file", accept: ".json,application/json" });
  const bar = el("progress", { id: "upload-progress", max: 100, value: 0, hidden: true, "aria-label": "Upload progress" });
  const drop = el("div", { class: "drop", tabindex: 0, text: "Drop a component (.wasm) here, or choose one" });
  let dropped = null;
  const send = () => {
    const component = dropped || file.files[0];
    if (!name.value) return say("bad_entry: name the package first");
    if (!component) return say("bad_entry: choose the component (.wasm)");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1/projects/${enc(p)}/packages/${enc(name.value)}/versions`);
    xhr.setRequestHeader("X-CSRF-Token", sessionStorage.getItem("csrf") || "");
    let body = component;
    if (manifest.files[0] || secrets.files[0]) {
      // The browser writes the multipart boundary into the Content-Type itself.
      body = new FormData();
      body.append("component", component);
      if (manifest.files[0]) body.append("manifest", manifest.files[0]);
      if (secrets.files[0]) body.append("secrets", secrets.files[0]);
    } else {
      xhr.setRequestHeader("Content-Type", "application/wasm");
    }
    bar.hidden = false;
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; };
    xhr.onload = () => {
      let b = {};
      try { b = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201) {
        const kept = b.manifest_kept_from ? ` (settings kept from version ${b.manifest_kept_from})` : "";
        const seeded = b.secrets_set?.length ? `; secrets.json set ${b.secrets_set.join(", ")}` : "";
        say(`Deployed ${p}/${name.value} version ${b.version}${kept}${seeded}.`, "ok");
        location.hash = `#/packages?package=${enc(name.value)}`;
      } else {
        const e = b.error || {};
        say(`${e.code || xhr.status}: ${e.message || "the upload failed"}`);
      }
    };
    xhr.onerror = () => say("unavailable: the upload did not reach the server");
    xhr.send(body);
  };
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (!e.dataTransfer.files[0]) return;
    dropped = e.dataTransfer.files[0];
    drop.textContent = `Component: ${dropped.name}`;
  });
  file.addEventListener("change", () => { dropped = null; drop.textContent = "Drop a component (.wasm) here, or choose one"; });
  return el("form", { "aria-labelledby": "upload-title", onsubmit: (e) => { e.preventDefault(); send(); } },
    el("h3", { id: "upload-title", text: "Upload a version" }),
    el("label", { for: "upload-name", text: "Package" }), name,
    el("label", { for: "upload-file", text: "Component" }), file, drop,
    el("label", { for: "upload-manifest", text: "Manifest (edgeward.toml or JSON; optional)" }), manifest,
    el("label", { for: "upload-secrets", text: "secrets.json (optional)" }), secrets,
    el("p", { class: "hint", text: "Without a manifest the new version keeps the current version's settings, bindings included. A secrets.json sets package secrets, all or nothing, before the version serves." }),
    el("button", { type: "submit", id: "upload-send", text: "Deploy" }),
    bar);
}
