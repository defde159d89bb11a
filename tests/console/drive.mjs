// Drives the web console in Debian's Chromium against a real server (tests/e2e/console.rs
// starts it and passes what it needs as JSON on argv[2]). Exits non-zero, saying what failed,
// at the first broken expectation; writes a screenshot of each page into `shots`.
//
// { api, listen, admin, viewer, wasm, shots, marker }

import { chromium } from "playwright-core";
import { mkdirSync, rmSync } from "node:fs";

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
  await page.goto(`${cfg.api}/#/audit`);
  await page.waitForSelector("table[aria-label='Audit records'] tbody tr");
  const audit = await page.textContent("table[aria-label='Audit records']");
  expect(audit.includes("GET /v1/projects/{project}/secrets/{name}") && audit.includes("/v1/projects/acme/secrets/team/db"), "the reveal is audited");
  expect(!audit.includes(cfg.marker), "the audit shows no value");
  await shot(page, "audit");

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
  await status(page, "Deployed acme/greeter version 1.");
  await page.waitForSelector("h2:text-is('acme/greeter')");
  await page.goto(`${cfg.api}/#/packages`);
  await page.waitForSelector("table[aria-label='Packages'] a:text-is('greeter')");
  await page.fill("#upload-name", "greeter");
  await page.setInputFiles("#upload-file", cfg.wasm);
  await status(page, "Deployed acme/greeter version 2.");
  await page.waitForSelector("h2:text-is('acme/greeter')");
  await page.goto(`${cfg.api}/#/executions`);
  await page.waitForSelector("table[aria-label='Executions']");
  // The stream is open: a request to the function shows up without a reload.
  await page.waitForTimeout(300);
  const r = await fetch(`${cfg.listen}/acme/greeter/`);
  expect(r.status === 200, `the function answered ${r.status}`);
  await page.waitForSelector("tr.exec td:text-is('greeter')", { timeout: 10_000 });
  await shot(page, "executions");

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
  await page.waitForFunction(() => true);
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
  await evil.waitForLoadState("load");
  await evil.waitForTimeout(500);

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
