// whisk-rs Node.js action launcher (embedded in and started by whisk-proxy).
//
// Long-lived: started once per container before any /init. Protocol
// (ActionLoop style), identical to the Python launcher:
//  * at startup it writes {"ok": true} on fd 3 (ready acknowledgement);
//  * it reads one JSON request per line on stdin;
//  * {"init": {"main", "binary", "dir", "env"}} loads the action: a script in
//    <dir>/index.js (a global `function main` or `exports.main`), or for a zip
//    the package in <dir> (package.json "main" or index.js);
//  * {"value": {...}, "env": {...}} calls the function, awaits a Promise and
//    answers with its JSON result or {"error": "<message>"};
//  * {"id": n, "value", "env"} (OpenWhisk's intra-container concurrency) runs
//    at once, without waiting for the runs before it to end, and is answered
//    "n <result>"; process.env is shared, so concurrent runs see the
//    __OW_* variables of the latest one (as in OpenWhisk's Node.js runtime);
//  * every answer is one line on fd 3; stdout/stderr are synchronous for
//    pipes and files on Linux, so the function's output precedes it.
'use strict';

const fs = require('fs');
const path = require('path');
const Module = require('module');

const ANSWER_FD = 3;
const GLOBAL_KEY = '__whisk_main__';

let mainFn = null;
let previousEnv = [];

function answer(payload) {
  const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const data = Buffer.from(text + '\n', 'utf8');
  let offset = 0;
  while (offset < data.length) {
    offset += fs.writeSync(ANSWER_FD, data, offset, data.length - offset);
  }
}

function loadScript(dir, name) {
  const file = path.join(dir, 'index.js');
  const source = fs.readFileSync(file, 'utf8');
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(dir);
  // A plain `function main(){}` is module-local: export it through a global.
  const trailer = /^[A-Za-z_$][\w$]*$/.test(name)
    ? `\n;globalThis.${GLOBAL_KEY} = typeof ${name} === 'function' ? ${name} : undefined;\n`
    : '\n';
  mod._compile(source + trailer, file);
  const found = globalThis[GLOBAL_KEY];
  delete globalThis[GLOBAL_KEY];
  const exported = mod.exports && mod.exports[name];
  return typeof exported === 'function' ? exported : found;
}

function init(spec) {
  const name = spec.main || 'main';
  for (const [key, value] of Object.entries(spec.env || {})) {
    process.env[key] = String(value);
  }
  let fn;
  try {
    process.chdir(spec.dir);
    if (spec.binary) {
      const exported = require(spec.dir);
      fn = exported && exported[name];
    } else {
      fn = loadScript(spec.dir, name);
    }
  } catch (err) {
    console.error(err && err.stack ? err.stack : err);
    return { error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
  }
  if (typeof fn !== 'function') {
    return { error: `Invalid function: ${name} not defined` };
  }
  mainFn = fn;
  return { ok: true };
}

async function run(message) {
  const env = message.env || {};
  for (const key of previousEnv) {
    if (!(key in env)) delete process.env[key];
  }
  Object.assign(process.env, env);
  previousEnv = Object.keys(env);
  let result;
  try {
    result = await mainFn(message.value || {});
  } catch (err) {
    console.error(err && err.stack ? err.stack : err);
    const error = err instanceof Error ? err.message : (err === undefined ? 'undefined' : err);
    return JSON.stringify({ error });
  }
  if (result === undefined) result = {};
  try {
    const text = JSON.stringify(result);
    return text === undefined ? 'null' : text;
  } catch (err) {
    return JSON.stringify({ error: `The action did not return a JSON-serializable value: ${err.message}` });
  }
}

async function handle(line) {
  let message;
  try {
    message = JSON.parse(line);
  } catch (err) {
    answer({ error: `launcher: malformed request: ${err.message}` });
    return;
  }
  if (message.init) {
    answer(mainFn ? { error: 'Cannot initialize the action more than once.' } : init(message.init));
  } else if (!mainFn) {
    answer({ error: 'The action has not been initialized.' });
  } else {
    answer(await run(message));
  }
}

// A run with an id: after the init before it, concurrently with other runs.
async function handleConcurrent(id, message) {
  if (!mainFn) {
    answer(`${id} ${JSON.stringify({ error: 'The action has not been initialized.' })}`);
    return;
  }
  answer(`${id} ${await run(message)}`);
}

function concurrentRun(line) {
  if (!line.startsWith('{"id":')) return null;
  try {
    const message = JSON.parse(line);
    return Number.isInteger(message.id) ? message : null;
  } catch (err) {
    return null;
  }
}

let pending = '';
let queue = Promise.resolve();
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  pending += chunk;
  let newline;
  while ((newline = pending.indexOf('\n')) >= 0) {
    const line = pending.slice(0, newline);
    pending = pending.slice(newline + 1);
    const message = concurrentRun(line);
    if (message) {
      const after = queue;
      after.then(() => handleConcurrent(message.id, message));
    } else {
      queue = queue.then(() => handle(line));
    }
  }
});
process.stdin.on('end', () => queue.then(() => process.exit(0)));
answer({ ok: true });
