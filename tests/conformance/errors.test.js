// Failure modes: authentication, missing entities, malformed and oversized requests, and
// actions that raise, time out, return garbage, exit, lack `main` or flood their logs — after
// which the platform must still serve a normal invocation.
'use strict'

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./lib/helpers')

const ow = h.client()
const created = []
after(async () => { for (const name of created) await h.cleanupAction(ow, name) })

const PY_HELLO = 'def main(args):\n    return {"greeting": "hello " + args.get("name", "stranger")}\n'

async function createPy (prefix, code, extra = {}) {
  const name = h.uniqueName(prefix)
  created.push(name)
  await ow.actions.create({ name, action: code, kind: 'python:3', ...extra })
  return name
}

/** A blocking invoke that must fail with 502; returns the activation record from the body. */
async function invokeFails (name, status) {
  const err = await h.rejectsWith(ow.actions.invoke({ name, blocking: true }), 502)
  const record = err.error
  assert.ok(record && record.response, `502 body is not an activation record: ${JSON.stringify(record)}`)
  assert.match(record.activationId, h.ACTIVATION_ID)
  assert.equal(record.response.status, status, JSON.stringify(record.response))
  assert.equal(record.response.success, false)
  assert.ok(record.response.result && typeof record.response.result.error === 'string',
    `result.error must be a string: ${JSON.stringify(record.response.result)}`)
  // The failed activation is stored like any other.
  const stored = await h.waitForActivation(ow, record.activationId)
  assert.equal(stored.response.status, status)
  return record
}

let hello
before(async () => {
  hello = await createPy('py-hello', PY_HELLO)
})

test('a bad key is 401', { timeout: 30000 }, async () => {
  const bad = h.client({ apiKey: '23bc46b1-71f6-4ed5-8c54-816aa4f8c502:not-the-right-key' })
  const err = await h.rejectsWith(bad.actions.list(), 401)
  h.assertErrorBody(err.error, '401')
  assert.equal(err.error.error, 'The supplied authentication is invalid')

  const unknown = h.client({ apiKey: '00000000-0000-0000-0000-000000000000:nobody' })
  await h.rejectsWith(unknown.namespaces.list(), 401)
  await h.rejectsWith(unknown.actions.invoke({ name: hello, blocking: true }), 401)
})

test('no credentials is 401 with a Basic challenge', { timeout: 30000 }, async () => {
  const res = await h.raw('GET', '/namespaces/_/actions', { auth: false })
  assert.equal(res.status, 401, res.text)
  h.assertErrorBody(res.json, '401')
  assert.match(res.headers.get('www-authenticate') || '', /^Basic realm=/)
})

test('GET /api/v1 answers without auth', { timeout: 30000 }, async () => {
  const res = await h.raw('GET', '', { auth: false })
  assert.equal(res.status, 200, res.text)
  assert.equal(res.json.api_version_path, 'v1')
})

test('get of a missing action is 404', { timeout: 30000 }, async () => {
  const err = await h.rejectsWith(ow.actions.get({ name: h.uniqueName('missing') }), 404)
  h.assertErrorBody(err.error, '404')
  assert.equal(err.error.error, 'The requested resource does not exist.')
  await h.rejectsWith(ow.actions.delete({ name: h.uniqueName('missing') }), 404)
})

test('a malformed body is 400', { timeout: 30000 }, async () => {
  const name = h.uniqueName('malformed')
  const res = await h.raw('PUT', `/namespaces/_/actions/${name}`, {
    body: '{bad json',
    headers: { 'Content-Type': 'application/json' }
  })
  assert.equal(res.status, 400, `PUT {bad json -> ${res.status} ${res.text}`)
  h.assertErrorBody(res.json, '400')
  await h.rejectsWith(ow.actions.get({ name }), 404)

  const invoke = await h.raw('POST', `/namespaces/_/actions/${hello}?blocking=true`, {
    body: '{bad json',
    headers: { 'Content-Type': 'application/json' }
  })
  assert.equal(invoke.status, 400, `POST {bad json -> ${invoke.status} ${invoke.text}`)
  h.assertErrorBody(invoke.json, '400')
})

test('an action without exec or with an unknown kind is 400', { timeout: 30000 }, async () => {
  const name = h.uniqueName('noexec')
  const noExec = await h.raw('PUT', `/namespaces/_/actions/${name}`, {
    body: JSON.stringify({ parameters: [] }),
    headers: { 'Content-Type': 'application/json' }
  })
  assert.equal(noExec.status, 400, noExec.text)
  h.assertErrorBody(noExec.json, '400')

  const err = await h.rejectsWith(ow.actions.create({ name, action: 'x', kind: 'cobol:85' }), 400)
  h.assertErrorBody(err.error, '400')
  await h.rejectsWith(ow.actions.get({ name }), 404)
})

test('a 2 MB invoke payload is 413', { timeout: 60000 }, async () => {
  const big = 'x'.repeat(2 * 1024 * 1024)
  const err = await h.rejectsWith(ow.actions.invoke({ name: hello, blocking: true, params: { big } }), 413)
  h.assertErrorBody(err.error, '413')
  // The client keeps connections alive: a server that answers 413 before reading the body must
  // say `Connection: close` (or drain the body), else the next request on that socket fails.
  const next = await ow.actions.get({ name: hello })
  assert.equal(next.name, hello)
})

test('an action that raises is an application error (502)', { timeout: 90000 }, async () => {
  const name = await createPy('py-raise', 'def main(args):\n    raise Exception("boom from the action")\n')
  const record = await invokeFails(name, 'application error')
  assert.match(record.response.result.error, /boom from the action/)
})

test('an action that returns {error} is an application error (502)', { timeout: 90000 }, async () => {
  const name = await createPy('py-apperr', 'def main(args):\n    return {"error": "told you so"}\n')
  const record = await invokeFails(name, 'application error')
  assert.deepEqual(record.response.result, { error: 'told you so' })
})

test('an action that outlives its time limit is a developer error (502)', { timeout: 90000 }, async () => {
  const name = await createPy('py-sleep',
    'import time\ndef main(args):\n    time.sleep(3)\n    return {"slept": True}\n',
    { limits: { timeout: 1000 } })
  const record = await invokeFails(name, 'action developer error')
  assert.equal(record.response.result.error, 'The action exceeded its time limits of 1000 milliseconds.')
  const timeout = record.annotations.find(a => a.key === 'timeout')
  assert.equal(timeout && timeout.value, true, 'annotation timeout=true on a timed-out activation')
})

test('an action that returns a non-dictionary is a developer error (502)', { timeout: 90000 }, async () => {
  const name = await createPy('py-nondict', 'def main(args):\n    return 42\n')
  await invokeFails(name, 'action developer error')
})

test('an action that calls sys.exit(1) is a developer error (502)', { timeout: 90000 }, async () => {
  const name = await createPy('py-exit', 'import sys\ndef main(args):\n    sys.exit(1)\n')
  await invokeFails(name, 'action developer error')
})

test('an action without main: create succeeds, invoke is a developer error (502)', { timeout: 90000 }, async () => {
  const name = await createPy('py-nomain', 'def not_main(args):\n    return {}\n')
  await invokeFails(name, 'action developer error')
})

test('an action with a syntax error: invoke is a developer error (502)', { timeout: 90000 }, async () => {
  const name = await createPy('py-syntax', 'def main(args:\n    return {}\n')
  await invokeFails(name, 'action developer error')
})

test('an action that prints 100 MB of logs completes with truncated logs', { timeout: 300000 }, async () => {
  const name = await createPy('py-flood',
    'import sys\ndef main(args):\n    sys.stdout.write(("x"*1023+"\\n")*102400)\n    sys.stdout.flush()\n    return {"flooded": True}\n',
    { limits: { timeout: 120000 } })
  const { activationId } = await ow.actions.invoke({ name })
  const record = await h.waitForActivation(ow, activationId, 240000)
  assert.equal(record.response.status, 'success', JSON.stringify(record.response))
  assert.deepEqual(record.response.result, { flooded: true })
  const logs = (await ow.activations.logs(activationId)).logs
  assert.ok(logs.length > 0, 'some logs are kept')
  assert.ok(logs.length < 102400, `logs were not truncated (${logs.length} lines)`)
  const last = logs[logs.length - 1]
  assert.match(last, /Logs were truncated because the total bytes size exceeds the limit of \d+ bytes\./,
    `last log line: ${JSON.stringify(last)}`)
  const total = logs.reduce((n, l) => n + Buffer.byteLength(l), 0)
  assert.ok(total <= 12 * 1024 * 1024, `kept ${total} bytes of logs, above the 10 MB limit`)
})

test('the platform still serves a normal invoke afterwards', { timeout: 90000 }, async () => {
  const result = await ow.actions.invoke({ name: hello, blocking: true, result: true, params: { name: 'survivor' } })
  assert.deepEqual(result, { greeting: 'hello survivor' })
  for (const name of created.filter(n => n.startsWith('py-exit') || n.startsWith('py-sleep'))) {
    // After a developer error OpenWhisk destroys the container: the next invocation is a cold
    // start in a fresh one (and fails again the same way).
    const record = await invokeFails(name, 'action developer error')
    assert.ok(record.annotations.some(a => a.key === 'initTime'),
      `${name}: re-invocation after a developer error must be a cold start: ${JSON.stringify(record)}`)
  }
})
