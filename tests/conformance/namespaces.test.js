// Namespaces and entity names: the guest key lists ['guest']; names outside OpenWhisk's rules
// (bad characters, a leading space, more than 256 characters, too many path segments) are 400.
'use strict'

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./lib/helpers')

const ow = h.client()
const created = []
after(async () => { for (const name of created) await h.cleanupAction(ow, name) })

const PY = 'def main(args):\n    return {}\n'

test('namespaces list is the caller\'s namespace', { timeout: 30000 }, async () => {
  assert.deepEqual(await ow.namespaces.list(), [h.namespace])
})

test('the underscore namespace is the caller\'s', { timeout: 30000 }, async () => {
  const name = h.uniqueName('underscore')
  created.push(name)
  await ow.actions.create({ name, action: PY, kind: 'python:3' })
  const viaUnderscore = h.client({ namespace: '_' })
  const got = await viaUnderscore.actions.get({ name })
  assert.equal(got.namespace, h.namespace)
})

test('another namespace is 403', { timeout: 30000 }, async () => {
  const err = await h.rejectsWith(ow.actions.list({ namespace: 'whisk.system.not.mine' }), 403)
  h.assertErrorBody(err.error, '403')
})

test('names with spaces, @, dots and dashes inside are fine', { timeout: 30000 }, async () => {
  const name = `${h.uniqueName('ok')}_a b@c.d-e`
  created.push(encodeURIComponent(name))
  const action = await ow.actions.create({ name: encodeURIComponent(name), action: PY, kind: 'python:3' })
  assert.equal(action.name, name)
  const max = 'n' + h.uniqueName('m').replace(/-/g, '_').padEnd(255, 'x')
  assert.equal(max.length, 256)
  created.push(max)
  assert.equal((await ow.actions.create({ name: max, action: PY, kind: 'python:3' })).name, max)
})

for (const [label, name] of [
  ['257 characters', 'n'.repeat(257)],
  ['a leading space', encodeURIComponent(' leading')],
  ['a trailing space', encodeURIComponent('trailing ')],
  ['a forbidden character', encodeURIComponent('bad*name')],
  ['a forbidden character (!)', encodeURIComponent('bad!name')]
]) {
  test(`an action name with ${label} is 400`, { timeout: 30000 }, async () => {
    const err = await h.rejectsWith(ow.actions.create({ name, action: PY, kind: 'python:3' }), 400)
    h.assertErrorBody(err.error, '400')
  })
}

test('an action path with too many segments is 400', { timeout: 30000 }, async () => {
  // The client itself refuses "bad/name/x/y", so send it raw.
  const res = await h.raw('PUT', '/namespaces/_/actions/bad/name/x/y', {
    body: JSON.stringify({ exec: { kind: 'python:3', code: PY } }),
    headers: { 'Content-Type': 'application/json' }
  })
  assert.equal(res.status, 400, `PUT actions/bad/name/x/y -> ${res.status} ${res.text}`)
  h.assertErrorBody(res.json, '400')
})
