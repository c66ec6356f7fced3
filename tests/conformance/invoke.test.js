// Invocations: non-blocking (id, then the record), blocking (the record), blocking with
// result only, parameters merged over the action's defaults, annotations in OpenWhisk's order.
'use strict'

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./lib/helpers')

const ow = h.client()
const created = []
after(async () => { for (const name of created) await h.cleanupAction(ow, name) })

const PY_HELLO = 'def main(args):\n    return {"greeting": "hello " + args.get("name", "stranger")}\n'
const PY_ECHO = 'def main(args):\n    return {"name": args.get("name"), "extra": args.get("extra"), "added": args.get("added")}\n'
const JS_HELLO = "function main(p){ return {payload: 'hello ' + p.name} }"

let pyHello
let pyEcho
let jsHello

before(async () => {
  pyHello = h.uniqueName('py-hello')
  pyEcho = h.uniqueName('py-echo')
  jsHello = h.uniqueName('js-hello')
  created.push(pyHello, pyEcho, jsHello)
  await ow.actions.create({ name: pyHello, action: PY_HELLO, kind: 'python:3' })
  await ow.actions.create({ name: pyEcho, action: PY_ECHO, kind: 'python:3', params: { name: 'default', extra: 1 } })
  await ow.actions.create({ name: jsHello, action: JS_HELLO })
})

function annotationKeys (record) {
  assert.ok(Array.isArray(record.annotations), `annotations missing: ${JSON.stringify(record)}`)
  return record.annotations.map(a => a.key)
}

function annotation (record, key) {
  const a = record.annotations.find(x => x.key === key)
  return a && a.value
}

test('non-blocking invoke answers an activation id, then the record appears', { timeout: 90000 }, async () => {
  const res = await ow.actions.invoke({ name: pyHello, params: { name: 'async' } })
  assert.deepEqual(Object.keys(res), ['activationId'])
  assert.match(res.activationId, h.ACTIVATION_ID)

  const record = await h.waitForActivation(ow, res.activationId)
  assert.equal(record.activationId, res.activationId)
  assert.equal(record.name, pyHello)
  assert.equal(record.namespace, h.namespace)
  assert.equal(record.subject, h.namespace)
  assert.equal(record.version, '0.0.1')
  assert.equal(typeof record.start, 'number')
  assert.equal(typeof record.end, 'number')
  assert.equal(typeof record.duration, 'number')
  assert.ok(record.end >= record.start, 'end >= start')
  assert.equal(record.response.status, 'success')
  assert.equal(record.response.success, true)
  assert.deepEqual(record.response.result, { greeting: 'hello async' })
  assert.ok(Array.isArray(record.logs), 'logs is an array')

  // OpenWhisk's order, which clients index positionally; initTime only on a cold start, and
  // this is the first invocation of a freshly created action.
  const keys = annotationKeys(record)
  assert.deepEqual(keys.slice(0, 5), ['path', 'waitTime', 'kind', 'timeout', 'limits'],
    `annotation order: ${JSON.stringify(keys)}`)
  assert.equal(keys[5], 'initTime', `cold start must carry initTime at index 5: ${JSON.stringify(keys)}`)
  assert.equal(annotation(record, 'path'), `${h.namespace}/${pyHello}`)
  assert.equal(annotation(record, 'kind'), 'python:3')
  assert.equal(annotation(record, 'timeout'), false)
  assert.equal(typeof annotation(record, 'waitTime'), 'number')
  assert.equal(typeof annotation(record, 'initTime'), 'number')
  const limits = annotation(record, 'limits')
  assert.equal(limits.timeout, 60000)
  assert.equal(limits.memory, 256)
  assert.equal(typeof limits.logs, 'number')
  assert.equal(typeof limits.concurrency, 'number')
})

test('blocking invoke answers the full record', { timeout: 90000 }, async () => {
  const record = await ow.actions.invoke({ name: pyHello, blocking: true, params: { name: 'block' } })
  assert.match(record.activationId, h.ACTIVATION_ID)
  assert.equal(record.name, pyHello)
  assert.equal(record.response.status, 'success')
  assert.equal(record.response.success, true)
  assert.deepEqual(record.response.result, { greeting: 'hello block' })
  const keys = annotationKeys(record)
  assert.deepEqual(keys.slice(0, 5), ['path', 'waitTime', 'kind', 'timeout', 'limits'],
    `annotation order: ${JSON.stringify(keys)}`)
  if (keys.length > 5) assert.deepEqual(keys.slice(5), ['initTime'], `extra annotations: ${JSON.stringify(keys)}`)

  // The stored record is the same activation.
  const stored = await h.waitForActivation(ow, record.activationId)
  assert.deepEqual(stored.response.result, { greeting: 'hello block' })
})

test('blocking invoke with result only', { timeout: 90000 }, async () => {
  // The client asks for blocking and unwraps response.result itself ...
  const result = await ow.actions.invoke({ name: pyHello, blocking: true, result: true, params: { name: 'r' } })
  assert.deepEqual(result, { greeting: 'hello r' })

  // ... so check the server's own `result=true` over raw HTTP.
  const res = await h.raw('POST', `/namespaces/_/actions/${pyHello}?blocking=true&result=true`, {
    body: JSON.stringify({ name: 'raw' }),
    headers: { 'Content-Type': 'application/json' }
  })
  assert.equal(res.status, 200, res.text)
  assert.deepEqual(res.json, { greeting: 'hello raw' })
  assert.match(res.headers.get('x-openwhisk-activation-id') || '', h.ACTIVATION_ID,
    'invoke responses carry x-openwhisk-activation-id')
})

test('non-blocking invoke over raw HTTP: 202 and the activation id header', { timeout: 60000 }, async () => {
  const res = await h.raw('POST', `/namespaces/_/actions/${pyHello}`, {
    body: '{}',
    headers: { 'Content-Type': 'application/json' }
  })
  assert.equal(res.status, 202, res.text)
  assert.match(res.json.activationId, h.ACTIVATION_ID)
  assert.equal(res.headers.get('x-openwhisk-activation-id'), res.json.activationId)
  await h.waitForActivation(ow, res.json.activationId)
})

test('invoke parameters are merged over the action parameters', { timeout: 90000 }, async () => {
  const defaults = await ow.actions.invoke({ name: pyEcho, blocking: true, result: true })
  assert.deepEqual(defaults, { name: 'default', extra: 1, added: null })

  const merged = await ow.actions.invoke({
    name: pyEcho,
    blocking: true,
    result: true,
    params: { name: 'override', added: [1, 2] }
  })
  assert.deepEqual(merged, { name: 'override', extra: 1, added: [1, 2] })
})

test('node action with the default kind runs', { timeout: 90000 }, async () => {
  const record = await ow.actions.invoke({ name: jsHello, blocking: true, params: { name: 'node' } })
  assert.equal(record.response.status, 'success')
  assert.deepEqual(record.response.result, { payload: 'hello node' })
  assert.match(annotation(record, 'kind'), /^nodejs:/)
  assert.equal(annotation(record, 'path'), `${h.namespace}/${jsHello}`)
})

test('an invoke of a missing action is 404', { timeout: 30000 }, async () => {
  const err = await h.rejectsWith(ow.actions.invoke({ name: h.uniqueName('missing'), blocking: true }), 404)
  h.assertErrorBody(err.error, '404')
})
