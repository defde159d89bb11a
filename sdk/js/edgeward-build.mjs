#!/usr/bin/env node
// Builds a JavaScript function into a component: `componentize-js`'s own command line, with
// the same arguments (`node edgeward-build.mjs app.js --wit wit --world-name function -o app.wasm`),
// and one difference: the first of its steps, splicing the WIT world's bindings into the
// SpiderMonkey engine, is kept in a cache and not done again while its inputs are the same.
//
// That step depends only on the engine, the WIT package, the world and the features; it is
// 3 of componentize-js's 5 seconds, on every save in `edgeward dev`. Its result is stored under
// $XDG_CACHE_HOME/edgeward/componentize-js (or ~/.cache/...), named by the sha256 of
// everything it depends on: componentize-js's version, the engine's bytes, every file of the
// WIT package, the world and the features. Your source is not one of them: it is
// snapshotted afterwards (wizer), every build. EDGEWARD_SPLICE_CACHE=off turns the cache off.
//
// componentize-js is found in this project's node_modules, else on PATH (as `componentize-js`).
// If its internals are not the ones this file knows (another version), it builds without the
// cache and says so.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

function componentizeJsRoot() {
  try {
    // `exports` maps the package to src/componentize.js.
    const entry = new URL(import.meta.resolve('@bytecodealliance/componentize-js'));
    return dirname(dirname(entry.pathname));
  } catch {}
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const bin = join(dir, 'componentize-js');
    if (dir && existsSync(bin)) return dirname(dirname(realpathSync(bin)));
  }
  console.error(
    'error: componentize-js not found: run `npm install` in this directory (or put componentize-js on your PATH)',
  );
  process.exit(1);
}

const root = componentizeJsRoot();
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
const { splicer } = await import(pathToFileURL(join(root, 'lib/spidermonkey-embedding-splicer.js')).href);

// Every file under the WIT path (a directory or one file), in a stable order.
function witDigest(hash, path) {
  const walk = (p) => {
    if (statSync(p).isDirectory()) {
      for (const name of readdirSync(p).sort()) walk(join(p, name));
    } else {
      hash.update(relative(path, p)).update('\0').update(readFileSync(p)).update('\0');
    }
  };
  walk(path);
}

function cacheDir() {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'edgeward', 'componentize-js');
}

// Keeps the newest few entries (each is an engine, ~10 MB).
function prune(dir, keep) {
  const entries = readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .map((n) => ({ n, t: statSync(join(dir, n)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { n } of entries.slice(keep)) {
    const stem = n.slice(0, -'.json'.length);
    rmSync(join(dir, n), { force: true });
    rmSync(join(dir, `${stem}.wasm`), { force: true });
  }
}

const splice = splicer?.spliceBindings;
if (process.env.EDGEWARD_SPLICE_CACHE === 'off') {
  // Built as componentize-js alone would.
} else if (typeof splice !== 'function' || splice.length !== 6) {
  console.error(`note: componentize-js ${version} is not the one edgeward-build.mjs knows; building without its cache`);
} else {
  splicer.spliceBindings = (engine, features, witWorld, witPath, worldName, debug) => {
    const hash = createHash('sha256');
    hash.update(JSON.stringify([version, features, witWorld ?? null, worldName ?? null, !!debug]));
    hash.update(createHash('sha256').update(engine).digest());
    if (witPath) witDigest(hash, witPath);
    const key = hash.digest('hex');
    const dir = cacheDir();
    const wasmPath = join(dir, `${key}.wasm`);
    const jsonPath = join(dir, `${key}.json`);
    try {
      const meta = JSON.parse(readFileSync(jsonPath, 'utf8'));
      const wasm = new Uint8Array(readFileSync(wasmPath));
      if (createHash('sha256').update(wasm).digest('hex') === meta.sha256) {
        return { wasm, jsBindings: meta.jsBindings, exports: meta.exports, imports: meta.imports };
      }
    } catch {}
    const spliced = splice(engine, features, witWorld, witPath, worldName, debug);
    try {
      mkdirSync(dir, { recursive: true });
      const tmp = `.${process.pid}-${Date.now()}`;
      // The engine first, its description last: an entry is complete when its .json is there.
      writeFileSync(wasmPath + tmp, spliced.wasm);
      renameSync(wasmPath + tmp, wasmPath);
      const meta = {
        sha256: createHash('sha256').update(spliced.wasm).digest('hex'),
        jsBindings: spliced.jsBindings,
        exports: spliced.exports,
        imports: spliced.imports,
      };
      writeFileSync(jsonPath + tmp, JSON.stringify(meta));
      renameSync(jsonPath + tmp, jsonPath);
      prune(dir, 8);
    } catch (e) {
      console.error(`note: the splice cache in ${dir} is not writable (${e.message}); building without it`);
    }
    return spliced;
  };
}

// componentize-js's own command line, reading this process's arguments.
await import(pathToFileURL(join(root, 'src/cli.js')).href);
