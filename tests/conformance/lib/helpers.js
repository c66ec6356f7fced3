// Shared helpers of the conformance tests: the client built from the environment, raw HTTP,
// unique names, bounded polling and error assertions.
'use strict'

const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const openwhisk = require('openwhisk')

function requiredEnv (name) {
  const value = process.env[name]
  if (!value) {
    throw new Error(`environment variable ${name} is not set; see tests/conformance/README.md`)
  }
  return value
}

const apihost = requiredEnv('__OW_API_HOST').replace(/\/+$/, '')
const apiKey = requiredEnv('__OW_API_KEY')
const namespace = process.env.__OW_NAMESPACE || 'guest'

/** A client of the server under test (optionally with another key/namespace). */
function client (opts = {}) {
  return openwhisk({
    apihost,
    api_key: opts.apiKey || apiKey,
    namespace: opts.namespace || namespace
  })
}

/** A name no other test (or earlier run) uses. */
function uniqueName (prefix) {
  return `${prefix}-${crypto.randomBytes(5).toString('hex')}`
}

function basicAuth (key) {
  return 'Basic ' + Buffer.from(key).toString('base64')
}

/**
 * Raw HTTP to the API, for what the client cannot express (malformed bodies, query flags it
 * drops, names it refuses). `path` is below `/api/v1`. Returns {status, headers, text, json}.
 */
async function raw (method, path, { body, headers = {}, key = apiKey, auth = true } = {}) {
  const h = { ...headers }
  if (auth) h.Authorization = basicAuth(key)
  const res = await fetch(`${apihost}/api/v1${path}`, {
    method,
    headers: h,
    body,
    signal: AbortSignal.timeout(120000)
  })
  const text = await res.text()
  let json
  try { json = JSON.parse(text) } catch (_) { json = undefined }
  return { status: res.status, headers: res.headers, text, json }
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/**
 * Calls `fn` until it resolves to something other than undefined, or until `timeoutMs`.
 * Rejections with a statusCode of 404 count as "not yet"; other rejections propagate.
 */
async function poll (what, fn, { timeoutMs = 60000, intervalMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      const value = await fn()
      if (value !== undefined) return value
      last = 'no value yet'
    } catch (err) {
      if (err.statusCode !== 404) throw err
      last = err.message
    }
    if (Date.now() > deadline) {
      throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms (last: ${last})`)
    }
    await sleep(intervalMs)
  }
}

/** Waits for the activation record of `id` to exist and returns it. */
function waitForActivation (ow, id, timeoutMs = 60000) {
  return poll(`activation ${id}`, () => ow.activations.get(id), { timeoutMs })
}

/** Awaits `promise`, expects it to reject with `statusCode`, returns the error. */
async function rejectsWith (promise, statusCode) {
  let result
  try {
    result = await promise
  } catch (err) {
    assert.equal(err.statusCode, statusCode,
      `expected HTTP ${statusCode}, got ${err.statusCode}: ${err.message} ${JSON.stringify(err.error)}`)
    return err
  }
  assert.fail(`expected HTTP ${statusCode}, but the call succeeded with ${JSON.stringify(result).slice(0, 500)}`)
}

/** Asserts OpenWhisk's error body: {error: string, code: string}. */
function assertErrorBody (body, context = '') {
  assert.ok(body && typeof body === 'object', `${context} error body is not a JSON object: ${JSON.stringify(body)}`)
  assert.equal(typeof body.error, 'string', `${context} error body lacks "error": ${JSON.stringify(body)}`)
  assert.ok(body.code !== undefined && body.code !== null, `${context} error body lacks "code": ${JSON.stringify(body)}`)
}

/** Deletes an action, ignoring "does not exist". */
async function cleanupAction (ow, name) {
  try { await ow.actions.delete({ name }) } catch (err) {
    if (err.statusCode !== 404) throw err
  }
}

const ACTIVATION_ID = /^[0-9a-f]{32}$/

/** One log line as OpenWhisk formats it: "<ISO time> <stream>: <text>" (time may be padded). */
function parseLogLine (line) {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)\s+(stdout|stderr): (.*)$/s.exec(line)
  if (!m) return undefined
  return { time: m[1], stream: m[2], text: m[3] }
}

/**
 * A new user made as an operator makes one (`whisk admin user create SUBJECT --namespace NS`
 * with limits): its `uuid:key`. Standalone: the admin socket in WHISK_DATA_DIR; distributed:
 * the deployment's CouchDB (WHISK_ADMIN_COUCHDB).
 */
function createUser (subject, namespace, perMinute = 120, concurrent = 30) {
  const { execFileSync } = require('node:child_process')
  const bin = process.env.WHISK_BIN
  const dataDir = process.env.WHISK_DATA_DIR
  assert.ok(bin, 'WHISK_BIN (path of the whisk binary) must be set to make users')
  assert.ok(dataDir, 'WHISK_DATA_DIR (data dir of the running server) must be set to make users')
  const args = ['admin', 'user', 'create', subject,
    '--namespace', namespace,
    '--invocations-per-minute', String(perMinute),
    '--concurrent-invocations', String(concurrent),
    ...(process.env.WHISK_ADMIN_COUCHDB ? ['--couchdb', process.env.WHISK_ADMIN_COUCHDB] : ['--data-dir', dataDir])]
  let out
  try {
    out = execFileSync(bin, args, { encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    assert.fail(`${bin} ${args.join(' ')} failed (${err.status}): ${err.stdout}\n${err.stderr}`)
  }
  const m = /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:\S+)/.exec(out)
  assert.ok(m, `no uuid:key in the output of ${bin} ${args.join(' ')}: ${JSON.stringify(out)}`)
  return m[1]
}

module.exports = {
  createUser,
  apihost,
  apiKey,
  namespace,
  client,
  uniqueName,
  raw,
  sleep,
  poll,
  waitForActivation,
  rejectsWith,
  assertErrorBody,
  cleanupAction,
  parseLogLine,
  ACTIVATION_ID
}
