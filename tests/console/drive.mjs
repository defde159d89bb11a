// Drives the web console in Debian's Chromium against a real server (tests/e2e/console.rs
// starts it and passes what it needs as JSON on argv[2]). Exits non-zero, saying what failed,
// at the first broken expectation; writes a screenshot of each page into `shots`.
//
// { api, listen, admin, viewer, alice, wasm, inspect, shots, marker }

import { chromium } from "playwright-core";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cfg = JSON.parse(process.argv[2]);
mkdirSync(cfg.shots, { recursive: true });
rmSync(`${cfg.shots}/failure.png`, { force: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

let step = "start";
const fail = (msg) => {
  throw new Error(`${step}: ${msg}`);
};
const expect = (cond, msg) => cond || fail(msg);

async function shot(page, name) {
  await page.screenshot({ path: `${cfg.shots}/${name}.png`, fullPage: true });
}

async function status(page, includes) {
  await page.waitForFunction(
    (text) => document.querySelector("#status").textContent.includes(text),
    includes,
    { timeout: 20_000 },
  ).catch(async () => fail(`status never said ${JSON.stringify(includes)}; it says ${JSON.stringify(await page.textContent("#status"))}`));
}

/** Waits (bounded) for a condition of this script's own state, such as a dialog seen. */
async function until(cond, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) fail(`never: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Accepts (or dismisses) the next dialog, recording its message in `into`. */
function answerNext(page, into, accept = true) {
  page.removeAllListeners("dialog");
  page.once("dialog", (d) => { into.push(d.message()); return accept ? d.accept() : d.dismiss(); });
}

/** The environment the `inspect` function at `target` sees. */
async function envOf(target) {
  const r = await fetch(`${cfg.listen}/${target}/`);
  expect(r.status === 200, `${target} answered ${r.status}`);
  return Object.fromEntries((await r.json()).env);
}

async function signIn(page, token, project = "acme") {
  await page.goto(`${cfg.api}/`);
  await page.fill("#token", token);
  await page.click("form button[type=submit]");
  await page.waitForSelector("#nav:not([hidden])", { timeout: 10_000 });
  if (project) await page.selectOption("#project", project);
}

let page;
const posts = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  const dialogs = [];
  page.on("dialog", (d) => {
    dialogs.push(d.message());
    d.accept();
  });
  page.on("request", (r) => { if (r.method() !== "GET") posts.push(`${Date.now()} ${r.method()} ${r.url()}`); });
  page.on("console", (m) => posts.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => posts.push(`page error: ${e.message}`));
  page.on("response", (r) => { if (r.status() >= 400) posts.push(`${r.status()} ${r.request().method()} ${r.url()}`); });
  const cspViolations = [];
  page.on("console", (m) => {
    if (m.text().includes("Content Security Policy")) cspViolations.push(m.text());
  });

  step = "sign in";
  await page.goto(`${cfg.api}/`);
  await shot(page, "sign-in");
  await signIn(page, cfg.admin);
  expect((await page.textContent("#who")).includes("admin"), "the header names the user");

  step = "create a folder secret with two fields";
  await page.goto(`${cfg.api}/#/secrets`);
  await page.waitForSelector("#new-name");
  await page.fill("#new-name", "team/db");
  await page.fill("#new-description", '<img src=x onerror="window.__xss=1">');
  await page.selectOption("#new-mode", "fields");
  await page.fill("input[aria-label='Field 1 name']", "user");
  await page.fill("input[aria-label='Field 1 value']", "app");
  await page.click("text=Add a field");
  await page.fill("input[aria-label='Field 2 name']", "password");
  await page.fill("input[aria-label='Field 2 value']", cfg.marker);
  // A field name holding markup (names cannot; a field of a multi-field secret can).
  await page.click("text=Add a field");
  await page.fill("input[aria-label='Field 3 name']", '<img src=x onerror="window.__xss=2">');
  await page.fill("input[aria-label='Field 3 value']", "<script>window.__xss=3</script>");
  await page.click("form[aria-labelledby=new-title] button[type=submit]");
  await status(page, "Created team/db.");
  await page.click("button.folder:has-text('team/')");
  await page.waitForSelector("th:text-is('db')");
  expect(
    (await page.textContent("table[aria-label='Secrets in this folder']")).includes('<img src=x onerror="window.__xss=1">'),
    "the description shows as text",
  );
  expect(!(await page.evaluate(() => window.__xss)), "a description ran as markup");
  expect(!(await page.textContent("body")).includes(cfg.marker), "values stay hidden until revealed");
  await shot(page, "secrets");

  step = "reveal it, and see the audit row";
  await page.click("button[aria-label='Reveal team/db']");
  await page.waitForSelector("table.fields");
  expect((await page.textContent("table.fields")).includes(cfg.marker), "the revealed fields hold the value");
  expect(
    (await page.textContent("table.fields")).includes('<img src=x onerror="window.__xss=2">'),
    "a field name holding markup shows as text",
  );
  expect(!(await page.evaluate(() => window.__xss)), "a field name or value ran as markup");
  await shot(page, "secret-revealed");

  step = "edit it: the current field names shown, one value changed, a new version";
  await page.click("button[aria-label='Edit team/db']");
  await page.waitForSelector("form[aria-labelledby=edit-title]");
  expect((await page.inputValue("form[aria-labelledby=edit-title] input[aria-label='Field 2 name']")) === "password", "the edit shows the current field names");
  expect(!(await page.textContent("body")).includes(cfg.marker), "the edit form shows no value");
  await page.fill("form[aria-labelledby=edit-title] input[aria-label='Field 1 value']", "app2");
  await page.click("form[aria-labelledby=edit-title] button[type=submit]");
  await status(page, "Saved team/db as version 2.");
  await page.click("button[aria-label='Reveal team/db']");
  await page.waitForSelector("table.fields");
  const kept = await page.textContent("table.fields");
  expect(kept.includes("app2") && kept.includes(cfg.marker), `the fields left blank kept their values: ${kept}`);

  step = "metadata-only edit: no new version";
  await page.click("button[aria-label='Edit team/db']");
  await page.waitForSelector("form[aria-labelledby=edit-title]");
  await page.fill("#edit-description", "orders database");
  await page.click("form[aria-labelledby=edit-title] button[type=submit]");
  await status(page, "Saved the description of team/db; the value stays version 2.");
  await page.waitForSelector("td:text-is('orders database')");
  await shot(page, "secret-metadata-edit");

  step = "versions: the history, a version's fields on request, a rollback after a confirmation";
  await page.click("button[aria-label='Versions of team/db']");
  await page.waitForSelector("table[aria-label='Versions of team/db'] tbody tr");
  const history = await page.textContent("table[aria-label='Versions of team/db']");
  expect(history.includes("current") && !history.includes(cfg.marker), `the history lists versions, no value: ${history}`);
  expect((await page.$$("table[aria-label='Versions of team/db'] tbody tr")).length === 2, "two versions");
  await page.click("button[aria-label='View version 1 of team/db']");
  await page.waitForSelector(".version-value table.fields");
  const v1 = await page.textContent(".version-value table.fields");
  expect(v1.includes("app") && !v1.includes("app2") && v1.includes(cfg.marker), `version 1's fields: ${v1}`);
  await shot(page, "secret-versions");
  const confirmsRb = [];
  answerNext(page, confirmsRb, false);
  await page.click("button[aria-label='Roll back team/db to version 1']");
  await until(() => confirmsRb.length === 1, "a confirmation before the rollback");
  expect(!(await page.textContent("#status")).includes("Rolled"), "dismissed, nothing rolled back");
  answerNext(page, confirmsRb);
  await page.click("button[aria-label='Roll back team/db to version 1']");
  await status(page, "Rolled team/db back to the value of version 1, now version 3.");
  expect(confirmsRb[1].includes("new version"), `the confirmation says what happens: ${confirmsRb[1]}`);
  page.on("dialog", (d) => { dialogs.push(d.message()); d.accept(); });
  await page.click("button[aria-label='Reveal team/db']");
  await page.waitForSelector("table.fields");
  const rolled = await page.textContent("table.fields");
  expect(rolled.includes("app") && !rolled.includes("app2"), `rolled back: ${rolled}`);

  step = "new secret: a plain value; a field value without a name is refused, nothing stored";
  await page.goto(`${cfg.api}/#/secrets`);
  await page.waitForSelector("#new-name");
  await page.fill("#new-name", "PLAIN_ONE");
  await page.selectOption("#new-mode", "fields");
  await page.fill("input[aria-label='Field 1 value']", "orphan-value");
  await page.click("form[aria-labelledby=new-title] button[type=submit]");
  await status(page, "bad_entry: field 1 has a value but no name");
  await page.selectOption("#new-mode", "plain");
  await page.fill("#new-value", "plain-v");
  await page.click("form[aria-labelledby=new-title] button[type=submit]");
  await status(page, "Created PLAIN_ONE.");
  await page.click("button[aria-label='Reveal PLAIN_ONE']");
  await page.waitForSelector("td.reveal code:text-is('plain-v')");
  await shot(page, "secret-plain");

  step = "bulk import: KEY=value lines and JSON, all or nothing";
  const confirmsImp = [];
  answerNext(page, confirmsImp);
  await page.fill("#import-text", '# from .env\nIMP_ONE=one\nexport IMP_TWO="two words"\n');
  await page.click("form[aria-labelledby=import-title] button[type=submit]");
  await status(page, "Imported 2: IMP_ONE, IMP_TWO.");
  expect(confirmsImp[0].includes("IMP_ONE, IMP_TWO"), `the confirmation names them: ${confirmsImp}`);
  await page.waitForSelector("th:text-is('IMP_TWO')");
  await page.click("button[aria-label='Reveal IMP_TWO']");
  await page.waitForSelector("td.reveal code:text-is('two words')");
  // One bad name among good ones: refused whole, nothing written.
  answerNext(page, confirmsImp);
  await page.fill("#import-text", '{"IMP_GOOD": "g", "imp bad": "b", "IMP_DB": {"user": "u"}}');
  await page.click("form[aria-labelledby=import-title] button[type=submit]");
  await status(page, "nothing was imported");
  expect((await page.textContent("#status")).startsWith("bad_entry"), "the stable code first");
  await shot(page, "secrets-import-refused");
  await page.goto(`${cfg.api}/#/members`);
  await page.goto(`${cfg.api}/#/secrets`);
  await page.waitForSelector("th:text-is('IMP_ONE')");
  expect(!(await page.textContent("table[aria-label='Secrets in this folder']")).includes("IMP_GOOD"), "a refused import wrote nothing");
  // A line that is not KEY=value is refused before anything is sent.
  await page.fill("#import-text", "IMP_X=1\nnot a pair\n");
  await page.click("form[aria-labelledby=import-title] button[type=submit]");
  await status(page, "bad_entry: line 2 is not KEY=value");
  answerNext(page, confirmsImp);
  await page.fill("#import-text", '{"IMP_DB": {"user": "u", "password": "p"}}');
  await page.click("form[aria-labelledby=import-title] button[type=submit]");
  await status(page, "Imported 1: IMP_DB.");
  expect(confirmsImp.length === 3, `one confirmation per import sent: ${confirmsImp}`);
  page.on("dialog", (d) => { dialogs.push(d.message()); d.accept(); });
  await shot(page, "secrets-import");

  step = "audit: the reveal recorded, pages, filters, 1280 px, local time with UTC on hover";
  await page.goto(`${cfg.api}/#/audit`);
  await page.waitForSelector("table[aria-label='Audit records'] tbody tr");
  const audit = await page.textContent("table[aria-label='Audit records']");
  expect(audit.includes("GET /v1/projects/{project}/secrets/{name}") && audit.includes("/v1/projects/acme/secrets/team/db"), "the reveal is audited");
  expect(!audit.includes(cfg.marker), "the audit shows no value");
  const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  expect(fits, "the audit page scrolls sideways at 1280 px");
  const cut = await page.$$eval("table[aria-label='Audit records'] td", (tds) => tds.filter((td) => td.scrollWidth > td.clientWidth + 1).length);
  expect(cut === 0, `${cut} audit cells are cut`);
  const title = await page.getAttribute("table[aria-label='Audit records'] tbody tr time", "title");
  expect(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d.*UTC$/.test(title || ""), `the time's UTC on hover: ${title}`);
  await shot(page, "audit");
  // Pages of five: "Older" follows the cursor; no record twice.
  await page.goto(`${cfg.api}/#/audit?limit=5`);
  await page.waitForFunction(() => document.querySelectorAll("tr.audit").length === 5);
  await page.click("#audit-older");
  await page.waitForFunction(() => document.querySelectorAll("tr.audit").length === 10);
  const ids = await page.$$eval("tr.audit", (rs) => rs.map((r) => Number(r.dataset.id)));
  expect(new Set(ids).size === 10 && ids.every((id, i) => i === 0 || id < ids[i - 1]), `ten records, newest first, once each: ${ids}`);
  // Filters: an action and an outcome.
  await page.fill("#audit-action", "POST /v1/projects/{project}/secrets");
  await page.selectOption("#audit-outcome", "ok");
  await page.click("form.filters button[type=submit]");
  await page.waitForFunction(() => location.hash.includes("outcome=ok") && document.querySelectorAll("tr.audit").length > 0);
  // Rows of the filtered page only (the unfiltered page had other actions), none vacuously.
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll("tr.audit")];
    return rows.length > 0 && rows.every((tr) => tr.querySelector("td.action").textContent === "POST /v1/projects/{project}/secrets" && tr.classList.contains("ok"));
  });
  // A time window in the future holds nothing.
  await page.goto(`${cfg.api}/#/audit?since=2999-01-01T00:00:00.000Z`);
  await page.waitForSelector("table[aria-label='Audit records']");
  await page.waitForFunction(() => document.querySelectorAll("tr.audit").length === 0 && document.querySelector("#audit-older").hidden);
  expect((await page.inputValue("#audit-since")).startsWith("2999-01-01") || (await page.inputValue("#audit-since")).startsWith("2998-12-31"), "the filter shows again");
  await shot(page, "audit-filtered");

  step = "an injected inline script does not run (CSP)";
  const ran = await page.evaluate(() => {
    const s = document.createElement("script");
    s.textContent = "window.__inline = 1";
    document.body.append(s);
    return window.__inline;
  });
  expect(ran === undefined, "inline script ran despite the CSP");

  step = "upload a component, see its first execution live";
  await page.goto(`${cfg.api}/#/executions`);
  await page.waitForSelector("table[aria-label='Executions']");
  await page.goto(`${cfg.api}/#/packages`);
  await page.waitForSelector("#upload-name");
  await page.fill("#upload-name", "greeter");
  await page.setInputFiles("#upload-file", cfg.wasm);
  await page.click("#upload-send");
  await status(page, "Deployed acme/greeter version 1.");
  await page.waitForSelector("h2:text-is('acme/greeter')");
  await page.goto(`${cfg.api}/#/packages`);
  await page.waitForSelector("table[aria-label='Packages'] a:text-is('greeter')");
  await page.fill("#upload-name", "greeter");
  await page.setInputFiles("#upload-file", cfg.wasm);
  await page.click("#upload-send");
  await status(page, "Deployed acme/greeter version 2");
  await page.waitForSelector("h2:text-is('acme/greeter')");
  await page.goto(`${cfg.api}/#/executions`);
  await page.waitForSelector("table[aria-label='Executions']");
  // Once the stream is open, a request to the function shows up without a reload.
  await page.waitForSelector("table#executions[data-stream='open']", { timeout: 10_000 });
  const r = await fetch(`${cfg.listen}/acme/greeter/`);
  expect(r.status === 200, `the function answered ${r.status}`);
  await page.waitForSelector("tr.exec td:text-is('greeter')", { timeout: 10_000 });
  await shot(page, "executions");
  const r2 = await fetch(`${cfg.listen}/acme/greeter/again`);
  expect(r2.status === 200, `the function answered ${r2.status}`);
  await page.waitForFunction(() => document.querySelectorAll("tr.exec").length >= 2, null, { timeout: 10_000 });

  step = "executions: older pages through the API's cursor";
  await page.goto(`${cfg.api}/#/executions?limit=1`);
  await page.waitForFunction(() => document.querySelectorAll("tr.exec").length === 1);
  const newest = await page.getAttribute("tr.exec", "data-id");
  await page.click("#executions-older");
  await page.waitForFunction(() => document.querySelectorAll("tr.exec").length === 2);
  const paged = await page.$$eval("tr.exec", (rs) => rs.map((r) => r.dataset.id));
  expect(paged[0] === newest && paged[1] !== newest, `the older page follows the first: ${paged}`);
  expect((await page.getAttribute("tr.exec button.link", "title")).endsWith("(UTC)"), "UTC on hover");

  step = "executions: history on open, the filter from the API's own status list, errors said";
  // No new traffic: the page opened afresh shows what is stored.
  await page.goto(`${cfg.api}/#/secrets`);
  await page.goto(`${cfg.api}/#/executions`);
  await page.waitForSelector("tr.exec td:text-is('greeter')", { timeout: 10_000 });
  const options = await page.$$eval("#status-filter option", (os) => os.map((o) => o.value));
  for (const s of ["ok", "guest_error", "trapped", "timed_out", "out_of_memory", "limited", "unbound"]) {
    expect(options.includes(s), `the status filter lacks ${s}: ${options}`);
  }
  expect(!options.includes("trap") && !options.includes("error"), `the filter offers statuses the API refuses: ${options}`);
  await page.selectOption("#status-filter", "trapped");
  await page.waitForFunction(() => location.hash === "#/executions?status=trapped");
  await page.waitForSelector("table[aria-label='Executions']");
  await page.waitForFunction(() => document.querySelectorAll("tr.exec").length === 0);
  expect(!(await page.textContent("#status")).includes("bad_entry"), "a status the API refused");
  await shot(page, "executions-filtered");
  // A failed request says so on the page (a status the API does not know, by hand).
  await page.goto(`${cfg.api}/#/executions?status=trap`);
  await status(page, "bad_entry");
  const icon = await page.getAttribute("link[rel='icon']", "href");
  const iconAnswer = await fetch(`${cfg.api}${icon}`);
  expect(iconAnswer.status === 200, `the favicon answered ${iconAnswer.status}`);

  step = "roll back";
  await page.goto(`${cfg.api}/#/packages?package=greeter`);
  await page.waitForSelector("button[aria-label='Roll back to version 1']");
  await page.click("button[aria-label='Roll back to version 1']");
  await status(page, "Version 1 is current.");
  await page.waitForSelector("button[aria-label='Roll back to version 2']");
  await shot(page, "package");

  step = "upload with a manifest and a secrets.json; then new code alone keeps them";
  const files = mkdtempSync(join(tmpdir(), "edgeward-console-"));
  writeFileSync(join(files, "edgeward.toml"), '[env]\nGREETING = "from-upload"\nSEED = "secret:UPLOAD_SEED"\n');
  writeFileSync(join(files, "secrets.json"), JSON.stringify({ UPLOAD_SEED: "seeded-value" }));
  await page.goto(`${cfg.api}/#/packages`);
  await page.waitForSelector("#upload-name");
  await page.fill("#upload-name", "insp");
  await page.setInputFiles("#upload-file", cfg.inspect);
  await page.setInputFiles("#upload-manifest", join(files, "edgeward.toml"));
  await page.setInputFiles("#upload-secrets", join(files, "secrets.json"));
  await shot(page, "upload-form");
  await page.click("#upload-send");
  await status(page, "Deployed acme/insp version 1; secrets.json set UPLOAD_SEED.");
  let env = await envOf("acme/insp");
  expect(env.GREETING === "from-upload" && env.SEED === "seeded-value", `the manifest and secrets.json serve: ${JSON.stringify(env)}`);
  await page.goto(`${cfg.api}/#/packages`);
  await page.waitForSelector("#upload-name");
  await page.fill("#upload-name", "insp");
  await page.setInputFiles("#upload-file", cfg.inspect);
  await page.click("#upload-send");
  await status(page, "Deployed acme/insp version 2 (settings kept from version 1).");
  env = await envOf("acme/insp");
  expect(env.GREETING === "from-upload" && env.SEED === "seeded-value", `new code alone keeps the settings: ${JSON.stringify(env)}`);
  rmSync(files, { recursive: true, force: true });

  step = "package settings: shown, edited, saved as a new version that serves";
  await page.waitForSelector("h2:text-is('acme/insp')");
  await page.waitForSelector("form[aria-labelledby=settings-title]");
  expect((await page.inputValue("input[aria-label='Environment variables 1 name']")) === "GREETING", "the bindings are shown");
  expect((await page.inputValue("input[aria-label='Environment variables 2 value']")) === "secret:UPLOAD_SEED", "a secret binding shows its reference");
  await page.fill("input[aria-label='Environment variables 1 value']", "from-settings");
  await page.click("text=Add environment variable");
  await page.fill("input[aria-label='Environment variables 3 name']", "DB_USER");
  await page.fill("input[aria-label='Environment variables 3 value']", "secret:IMP_DB#user");
  await page.fill("#settings-hosts", "https://api.example.com");
  await page.click("text=Add credential");
  await page.fill("input[aria-label='Credentials 1 secret']", "IMP_ONE");
  await page.fill("input[aria-label='Credentials 1 hosts']", "https://api.example.com");
  await page.check("#settings-write-package");
  await page.fill("#settings-timeout-ms", "4000");
  await shot(page, "package-settings");
  // From the keyboard: the full-page screenshot leaves Chromium restoring the scroll position,
  // and a pointer click right after it can land beside the button.
  await page.focus("form[aria-labelledby=settings-title] button[type=submit]");
  await page.keyboard.press("Enter");
  await status(page, "Saved the settings as version 3 of acme/insp (the code of version 2); it serves now.");
  env = await envOf("acme/insp");
  expect(env.GREETING === "from-settings" && env.DB_USER === "u" && env.SEED === "seeded-value", `the saved version serves the new bindings: ${JSON.stringify(env)}`);
  await page.waitForSelector("form[aria-labelledby=settings-title] h3:text-is('Settings (version 3)')");
  expect((await page.inputValue("#settings-timeout-ms")) === "4000" && await page.isChecked("#settings-write-package"), "the saved settings show again");
  // A setting the server refuses: said, and nothing deployed.
  await page.fill("input[aria-label='Credentials 1 hosts']", "https://elsewhere.example");
  await page.click("form[aria-labelledby=settings-title] button[type=submit]");
  await status(page, "bad_manifest");
  await page.goto(`${cfg.api}/#/packages`);
  await page.goto(`${cfg.api}/#/packages?package=insp`);
  await page.waitForSelector("form[aria-labelledby=settings-title] h3:text-is('Settings (version 3)')");
  await shot(page, "package-settings-saved");

  step = "members and tokens";
  await page.goto(`${cfg.api}/#/members`);
  await page.waitForSelector("table[aria-label='Members'] tbody tr");
  await shot(page, "members");
  await page.goto(`${cfg.api}/#/tokens`);
  await page.waitForSelector("table[aria-label='Tokens'] tbody tr");
  expect((await page.textContent("tr.this-session")).includes("(this session)"), "the session's own token is marked");
  await page.fill("#token-name", "to-revoke");
  await page.click("form[aria-labelledby='token-title'] button[type='submit']");
  await page.waitForSelector("input[aria-label='New token']");
  await page.goto(`${cfg.api}/#/secrets`);
  await page.goto(`${cfg.api}/#/tokens`);
  await page.waitForSelector("td:text-is('to-revoke')");
  const row = page.locator("tr", { has: page.locator("td:text-is('to-revoke')") });
  // Dismissed, nothing is revoked; accepted, it is. (The page's usual dialog listener, which
  // accepts and records, steps aside for these two.)
  const confirms = [];
  page.removeAllListeners("dialog");
  page.once("dialog", (d) => { confirms.push(d.message()); d.dismiss(); });
  await row.locator("button:text-is('Revoke')").click();
  await until(() => confirms.length === 1, "a confirmation before the revoke");
  expect(confirms.length === 1 && confirms[0].includes("Revoke") && !confirms[0].includes("this session"), `no confirmation: ${confirms}`);
  expect((await row.textContent()).includes("Revoke"), "dismissed, the token is still live");
  page.once("dialog", (d) => { confirms.push(d.message()); d.accept(); });
  await row.locator("button:text-is('Revoke')").click();
  await status(page, "Revoked");
  expect(confirms.length === 2, `one confirmation each: ${confirms}`);
  page.on("dialog", (d) => { dialogs.push(d.message()); d.accept(); });
  await shot(page, "tokens");

  step = "keyboard: the skip link and sections are reachable by Tab";
  await page.goto(`${cfg.api}/#/secrets`);
  await page.reload();
  await page.waitForSelector("#new-name");
  await page.keyboard.press("Tab");
  expect((await page.evaluate(() => document.activeElement.className)) === "skip", "the first Tab reaches the skip link");

  step = "sign out";
  await page.click("#signout");
  await page.waitForSelector("#token");
  await page.reload();
  await page.waitForSelector("#token");
  expect(await page.isHidden("#nav"), "signed out, the sections are gone");

  step = "a viewer cannot reveal";
  await signIn(page, cfg.viewer);
  await page.goto(`${cfg.api}/#/secrets?scope=project&package=&prefix=team%2F`);
  await page.waitForSelector("button[aria-label='Reveal team/db']");
  await page.click("button[aria-label='Reveal team/db']");
  await status(page, "denied:");
  expect(!(await page.textContent("body")).includes(cfg.marker), "the viewer saw the value");
  await shot(page, "viewer-denied");

  step = "a user grants a package version her user secrets";
  await page.click("#signout");
  await page.waitForSelector("#token");
  // Alice is in no project: the console opens on her grants.
  await signIn(page, cfg.alice, null);
  await page.waitForSelector("table[aria-label='Grants']");
  await page.goto(`${cfg.api}/#/grants`);
  await page.waitForSelector("table[aria-label='Grants']");
  await page.fill("#grant-target", "acme/needs");
  await page.click("form[aria-labelledby='grant-title'] button[type='submit']");
  await page.waitForSelector("text=Grant this version");
  expect((await page.textContent("#main")).includes("API_KEY"), "the review names what it reads");
  await page.click("text=Grant this version");
  await status(page, "Granted acme/needs version 1.");
  await page.waitForSelector("table[aria-label='Grants'] tbody tr");
  expect((await page.textContent("table[aria-label='Grants']")).includes("serving"), "the grant is of the version serving");
  await shot(page, "grants");
  await page.goto(`${cfg.api}/#/tokens`);
  await page.waitForSelector("#key-origin");
  expect((await page.textContent("#key-origin")).includes("redeeming enrollment code ewe_…"), "the tokens page says how her key was made");

  step = "a cross-site page posting a form with the session";
  const evil = await context.newPage();
  await evil.route("http://evil.example/**", (route) =>
    route.fulfill({
      contentType: "text/html",
      body: `<form id=f method=POST action="${cfg.api}/v1/projects" enctype="text/plain"><input name='{"name":"forged","x":"' value='"}'></form><script>document.getElementById('f').submit()</script>`,
    }),
  );
  await evil.goto("http://evil.example/attack");
  // The forged form navigates to the API's answer: wait for that answer, not for a time.
  await evil.waitForURL(`${cfg.api}/v1/projects`, { timeout: 10_000 });
  await evil.waitForLoadState("load");

  expect(cspViolations.length === 0 || cspViolations.every((v) => v.includes("inline")), `CSP violations: ${cspViolations.join(" | ")}`);
  expect(dialogs.length === 0, `dialogs opened: ${dialogs.join(" | ")}`);
  console.log("console: every flow passed");
} catch (e) {
  console.error(`console test failed at ${step}: ${e.message}`);
  if (page) {
    await page.screenshot({ path: `${cfg.shots}/failure.png`, fullPage: true }).catch(() => {});
    console.error(posts.join("\n"));
    console.error(`the page: ${page.url()}\nstatus: ${await page.textContent("#status").catch(() => "?")}\nmain: ${(await page.textContent("#main").catch(() => "?")).slice(0, 2000)}`);
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
