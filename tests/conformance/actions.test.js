// Action CRUD through the openwhisk client: create, get (with and without code), list,
// update with overwrite (version bump), 409 on a duplicate create, delete, 404 after delete.
'use strict'

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./lib/helpers')

const ow = h.client()
const created = []
after(async () => { for (const name of created) await h.cleanupAction(ow, name) })

const PY_HELLO = 'def main(args):\n    return {"greeting": "hello " + args.get("name", "stranger")}\n'
const PY_HELLO_2 = 'def main(args):\n    return {"greeting": "hi " + args.get("name", "stranger")}\n'
const JS_HELLO = "function main(p){ return {payload: 'hello ' + p.name} }"

test('python action: create, get, list, update, duplicate, delete', { timeout: 60000 }, async () => {
  const name = h.uniqueName('py-crud')
  created.push(name)

  const action = await ow.actions.create({ name, action: PY_HELLO, kind: 'python:3' })
  assert.equal(action.name, name)
  assert.equal(action.namespace, h.namespace)
  assert.equal(action.version, '0.0.1')
  assert.equal(action.exec.kind, 'python:3')
  assert.equal(action.exec.code, PY_HELLO)
  assert.equal(typeof action.limits, 'object')
  assert.equal(action.limits.timeout, 60000)
  assert.equal(action.limits.memory, 256)
  assert.ok(Array.isArray(action.annotations), 'annotations is an array')
  assert.ok(action.annotations.some(a => a.key === 'exec' && a.value === 'python:3'),
    `annotation exec=python:3 missing: ${JSON.stringify(action.annotations)}`)
  assert.ok(Array.isArray(action.parameters), 'parameters is an array')

  const got = await ow.actions.get({ name })
  assert.equal(got.name, name)
  assert.equal(got.version, '0.0.1')
  assert.equal(got.exec.kind, 'python:3')
  assert.equal(got.exec.code, PY_HELLO)

  const withoutCode = await ow.actions.get({ name, code: false })
  assert.equal(withoutCode.name, name)
  assert.equal(withoutCode.exec.kind, 'python:3')
  assert.equal(withoutCode.exec.code, undefined, 'code=false must omit exec.code')

  const list = await ow.actions.list({ limit: 200 })
  assert.ok(Array.isArray(list), 'list is an array')
  const summary = list.find(a => a.name === name)
  assert.ok(summary, `list does not contain ${name}`)
  assert.equal(summary.namespace, h.namespace)
  assert.equal(summary.version, '0.0.1')
  assert.equal(summary.exec && summary.exec.code, undefined, 'list summaries carry no code')

  const updated = await ow.actions.update({ name, action: PY_HELLO_2, kind: 'python:3' })
  assert.equal(updated.version, '0.0.2')
  assert.equal(updated.exec.code, PY_HELLO_2)
  assert.equal((await ow.actions.get({ name })).version, '0.0.2')

  const dup = await h.rejectsWith(ow.actions.create({ name, action: PY_HELLO, kind: 'python:3' }), 409)
  h.assertErrorBody(dup.error, '409')
  assert.equal((await ow.actions.get({ name })).exec.code, PY_HELLO_2, 'a refused create must not change the action')

  const deleted = await ow.actions.delete({ name })
  assert.equal(deleted.name, name)

  const gone = await h.rejectsWith(ow.actions.get({ name }), 404)
  h.assertErrorBody(gone.error, '404')
  assert.equal(gone.error.error, 'The requested resource does not exist.')
  await h.rejectsWith(ow.actions.delete({ name }), 404)
  const after = await ow.actions.list({ limit: 200 })
  assert.ok(!after.some(a => a.name === name), 'deleted action still listed')
})

test('node action with the default kind: create, get, delete', { timeout: 60000 }, async () => {
  const name = h.uniqueName('js-crud')
  created.push(name)

  const action = await ow.actions.create({ name, action: JS_HELLO })
  assert.equal(action.version, '0.0.1')
  assert.match(action.exec.kind, /^nodejs:/, 'nodejs:default resolves to a nodejs kind')
  assert.equal(action.exec.code, JS_HELLO)

  const got = await ow.actions.get(name)
  assert.equal(got.exec.code, JS_HELLO)
  assert.match(got.exec.kind, /^nodejs:/)

  await ow.actions.delete(name)
  await h.rejectsWith(ow.actions.get(name), 404)
})

test('update keeps fields that the PUT leaves out and bumps the version each time', { timeout: 60000 }, async () => {
  const name = h.uniqueName('py-upd')
  created.push(name)
  await ow.actions.create({
    name,
    action: PY_HELLO,
    kind: 'python:3',
    params: { name: 'default' },
    limits: { timeout: 5000 }
  })
  const v2 = await ow.actions.update({ name, limits: { memory: 128 } })
  assert.equal(v2.version, '0.0.2')
  assert.equal(v2.exec.code, PY_HELLO, 'code kept')
  assert.equal(v2.limits.timeout, 5000, 'limits merged per field')
  assert.equal(v2.limits.memory, 128)
  assert.deepEqual(v2.parameters, [{ key: 'name', value: 'default' }], 'parameters kept')
  const v3 = await ow.actions.update({ name, action: PY_HELLO_2, kind: 'python:3' })
  assert.equal(v3.version, '0.0.3')
})
