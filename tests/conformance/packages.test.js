// Packages through the openwhisk client (openwhisk-client-js's packages scenarios: list with
// the default and an explicit namespace, 404, create/get/delete, create/update), plus the
// public /whisk.system catalog invoked from the guest namespace, a binding whose parameters
// merge package → binding → action → invoke, force delete, and another namespace that may read
// and invoke a published package but never write into it (403).
'use strict'

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const h = require('./lib/helpers')

const ow = h.client()
const packages = []
const actions = []
after(async () => {
  for (const name of actions) await h.cleanupAction(ow, name)
  for (const name of packages.reverse()) {
    try { await ow.packages.delete({ name }) } catch (err) { if (err.statusCode !== 404) throw err }
  }
})

const ECHO = 'def main(args):\n    return args\n'

test('list all packages using the default namespace and the options namespace', async () => {
  for (const list of [await ow.packages.list(), await ow.packages.list({ namespace: h.namespace })]) {
    assert.ok(Array.isArray(list))
    for (const p of list) assert.equal(p.namespace, h.namespace)
  }
})

test('get a non-existing package, expecting 404', async () => {
  const err = await h.rejectsWith(ow.packages.get({ name: h.uniqueName('glorfindel') }), 404)
  h.assertErrorBody(err.error)
})

test('create, get and delete a package', async () => {
  const packageName = h.uniqueName('random_package_test')
  packages.push(packageName)
  const created = await ow.packages.create({ packageName })
  assert.equal(created.name, packageName)
  assert.equal(created.namespace, h.namespace)
  assert.deepEqual(created.annotations, [])
  assert.equal(created.version, '0.0.1')
  const got = await ow.packages.get({ packageName })
  assert.equal(got.name, packageName)
  assert.equal(got.namespace, h.namespace)
  assert.deepEqual(got.actions, [])
  assert.deepEqual(got.feeds, [])
  const summary = (await ow.packages.list({ limit: 200 })).find(p => p.name === packageName)
  assert.ok(summary, 'the new package is listed')
  assert.equal(summary.binding, false)
  await ow.packages.delete({ packageName })
  await h.rejectsWith(ow.packages.get({ packageName }), 404)
})

test('create and update a package', async () => {
  const packageName = h.uniqueName('random_package_update_test')
  packages.push(packageName)
  const created = await ow.packages.create({ packageName })
  assert.equal(created.version, '0.0.1')
  const dup = await h.rejectsWith(ow.packages.create({ packageName }), 409)
  h.assertErrorBody(dup.error)
  const updated = await ow.packages.update({ packageName })
  assert.equal(updated.version, '0.0.2')
  await ow.packages.delete({ packageName })
})

test('the /whisk.system catalog is public and invocable from the guest namespace', { timeout: 120000 }, async () => {
  const list = await ow.packages.list({ namespace: 'whisk.system' })
  const names = list.map(p => p.name).sort()
  for (const p of ['alarms', 'messaging', 'utils']) assert.ok(names.includes(p), `${p} in ${names}`)
  const utils = await ow.packages.get({ name: '/whisk.system/utils' })
  assert.equal(utils.publish, true)
  assert.deepEqual(utils.actions.map(a => a.name).sort(), ['cat', 'date', 'echo', 'head', 'hosturl', 'namespace', 'smash', 'sort', 'split'])

  const echoed = await ow.actions.invoke({ name: '/whisk.system/utils/echo', params: { payload: 'hi' }, blocking: true, result: true })
  assert.deepEqual(echoed, { payload: 'hi' })
  const sorted = await ow.actions.invoke({ actionName: '/whisk.system/utils/sort', blocking: true })
  assert.equal(sorted.response.success, true)
  assert.equal(sorted.namespace, h.namespace, 'the record is the invoker\'s')
  const path = sorted.annotations.find(a => a.key === 'path')
  assert.equal(path && path.value, 'whisk.system/utils/sort')
  const split = await ow.actions.invoke({ name: '/whisk.system/utils/split', params: { payload: 'a,b', separator: ',' }, blocking: true, result: true })
  assert.deepEqual(split, { lines: ['a', 'b'], payload: 'a,b' })

  const denied = await h.rejectsWith(ow.actions.update({ name: '/whisk.system/utils/echo', action: ECHO, kind: 'python:3' }), 403)
  h.assertErrorBody(denied.error)
})

test('a binding merges parameters package → binding → action → invoke', { timeout: 120000 }, async () => {
  const pkg = h.uniqueName('pkg')
  const binding = h.uniqueName('bnd')
  packages.push(pkg, binding)
  await ow.packages.create({ name: pkg, package: { parameters: [{ key: 'a', value: 'pkg' }, { key: 'b', value: 'pkg' }, { key: 'c', value: 'pkg' }] } })
  actions.push(`${pkg}/show`)
  await ow.actions.create({ name: `${pkg}/show`, action: ECHO, kind: 'python:3', params: { c: 'action', d: 'action' } })
  const bound = await ow.packages.create({ name: binding, package: { binding: { namespace: h.namespace, name: pkg }, parameters: [{ key: 'b', value: 'binding' }] } })
  assert.deepEqual(bound.binding, { namespace: h.namespace, name: pkg })

  const got = await ow.packages.get({ name: binding })
  assert.deepEqual(got.actions.map(a => a.name), ['show'])
  const record = await ow.actions.invoke({ name: `${binding}/show`, params: { d: 'invoke' }, blocking: true })
  assert.deepEqual(record.response.result, { a: 'pkg', b: 'binding', c: 'action', d: 'invoke' })
  const ann = key => (record.annotations.find(a => a.key === key) || {}).value
  assert.equal(ann('binding'), `${h.namespace}/${binding}`)
  assert.equal(ann('path'), `${h.namespace}/${pkg}/show`)

  const err = await h.rejectsWith(ow.actions.create({ name: `${binding}/other`, action: ECHO, kind: 'python:3' }), 400)
  assert.equal(err.error.error, 'Operation not permitted on package binding.')
  const missing = await h.rejectsWith(ow.packages.create({ name: h.uniqueName('b'), package: { binding: { namespace: h.namespace, name: h.uniqueName('none') } } }), 400)
  assert.equal(missing.error.error, 'Binding references a package that does not exist.')
})

test('a package with actions is deleted only with force', { timeout: 60000 }, async () => {
  const pkg = h.uniqueName('full')
  packages.push(pkg)
  await ow.packages.create({ name: pkg })
  await ow.actions.create({ name: `${pkg}/a1`, action: ECHO, kind: 'python:3' })
  await ow.actions.create({ name: `${pkg}/a2`, action: ECHO, kind: 'python:3' })
  const err = await h.rejectsWith(ow.packages.delete({ name: pkg }), 409)
  assert.equal(err.error.error, 'Package not empty (contains 2 entities). Set force param or delete package contents.')
  const res = await h.raw('DELETE', `/namespaces/_/packages/${pkg}?force=true`)
  assert.equal(res.status, 200, res.text)
  await h.rejectsWith(ow.actions.get({ name: `${pkg}/a1` }), 404)
  await h.rejectsWith(ow.packages.get({ name: pkg }), 404)
})

test('another namespace reads and invokes a published package, never writes into it', { timeout: 120000 }, async () => {
  const shared = h.uniqueName('shared')
  const secret = h.uniqueName('secret')
  packages.push(shared, secret)
  await ow.packages.create({ name: shared, package: { publish: true, parameters: [{ key: 'p', value: 1 }] } })
  await ow.packages.create({ name: secret })
  actions.push(`${shared}/show`, `${secret}/show`)
  await ow.actions.create({ name: `${shared}/show`, action: ECHO, kind: 'python:3' })
  await ow.actions.create({ name: `${secret}/show`, action: ECHO, kind: 'python:3' })

  const id = crypto.randomBytes(4).toString('hex')
  const otherNs = `pns${id}`
  const other = h.client({ apiKey: h.createUser(`puser${id}`, otherNs), namespace: otherNs })
  const visible = (await other.packages.list({ namespace: h.namespace })).map(p => p.name)
  assert.ok(visible.includes(shared), `${shared} listed for ${otherNs}: ${visible}`)
  assert.ok(!visible.includes(secret), `${secret} must not be listed for ${otherNs}`)
  const got = await other.packages.get({ name: `/${h.namespace}/${shared}` })
  assert.deepEqual(got.actions.map(a => a.name), ['show'])
  const result = await other.actions.invoke({ name: `/${h.namespace}/${shared}/show`, params: { q: 2 }, blocking: true, result: true })
  assert.deepEqual(result, { p: 1, q: 2 })

  await h.rejectsWith(other.packages.get({ name: `/${h.namespace}/${secret}` }), 403)
  await h.rejectsWith(other.actions.invoke({ name: `/${h.namespace}/${secret}/show`, blocking: true }), 403)
  const write = await h.rejectsWith(other.actions.create({ name: `/${h.namespace}/${shared}/evil`, action: ECHO, kind: 'python:3' }), 403)
  h.assertErrorBody(write.error)
  await h.rejectsWith(other.actions.update({ name: `/${h.namespace}/${shared}/show`, action: ECHO, kind: 'python:3' }), 403)
  await h.rejectsWith(other.actions.delete({ name: `/${h.namespace}/${shared}/show` }), 403)
  await h.rejectsWith(other.packages.update({ name: `/${h.namespace}/${shared}` }), 403)
  await h.rejectsWith(other.packages.delete({ name: `/${h.namespace}/${shared}` }), 403)
  assert.deepEqual((await ow.packages.get({ name: shared })).actions.map(a => a.name), ['show'], 'nothing changed')

  // Its own binding of the published package works.
  const mine = h.uniqueName('mine')
  await other.packages.create({ name: mine, package: { binding: { namespace: h.namespace, name: shared }, parameters: [{ key: 'p', value: 'mine' }] } })
  const viaBinding = await other.actions.invoke({ name: `${mine}/show`, blocking: true, result: true })
  assert.deepEqual(viaBinding, { p: 'mine' })
  await other.packages.delete({ name: mine })
})
