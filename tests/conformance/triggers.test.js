// Triggers and rules through the openwhisk client, as openwhisk-client-js's own integration
// tests run them: list (default and explicit namespace), 404 for a missing trigger or rule,
// create/get/delete, update (version bump), fire through a rule to /whisk.system/utils/echo,
// rule create/get/disable/delete and update of a disabled rule; plus what those tests leave
// unchecked: the trigger's activation record and its rule log line, the echoed payload,
// 204 without an active rule, and the rule's status as the trigger document keeps it.
'use strict'

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./lib/helpers')

const ow = h.client()
const triggers = []
const rules = []
const actions = []
after(async () => {
  const ignore404 = p => p.catch(err => { if (err.statusCode !== 404) throw err })
  for (const name of rules) await ignore404(ow.rules.delete({ name }))
  for (const name of triggers) await ignore404(ow.triggers.delete({ name }))
  for (const name of actions) await h.cleanupAction(ow, name)
})

const PY_HELLO = 'def main(args):\n    return {"payload": "Hello world"}\n'

function trigger (prefix) {
  const name = h.uniqueName(prefix)
  triggers.push(name)
  return name
}

function rule (prefix) {
  const name = h.uniqueName(prefix)
  rules.push(name)
  return name
}

async function action (prefix) {
  const name = h.uniqueName(prefix)
  actions.push(name)
  await ow.actions.create({ name, action: PY_HELLO, kind: 'python:3' })
  return name
}

test('list all triggers and rules, default and explicit namespace', { timeout: 30000 }, async () => {
  const name = trigger('listed')
  await ow.triggers.create({ name })
  for (const list of [await ow.triggers.list(), await ow.triggers.list({ namespace: h.namespace })]) {
    assert.ok(Array.isArray(list))
    for (const t of list) assert.equal(t.namespace, h.namespace)
    assert.ok(list.some(t => t.name === name), `${name} not listed`)
  }
  for (const list of [await ow.rules.list(), await ow.rules.list({ namespace: h.namespace })]) {
    assert.ok(Array.isArray(list))
    for (const r of list) assert.equal(r.namespace, h.namespace)
  }
  const count = await ow.triggers.list({ count: true })
  assert.equal(typeof count.triggers, 'number')
})

test('get a non-existing trigger or rule, expecting 404', { timeout: 30000 }, async () => {
  const t = await h.rejectsWith(ow.triggers.get({ name: 'glorfindel' }), 404)
  h.assertErrorBody(t.error, '404')
  await h.rejectsWith(ow.rules.get({ name: 'glorfindel' }), 404)
})

test('create, get and delete a trigger', { timeout: 30000 }, async () => {
  const name = trigger('random_trigger_test')
  const result = await ow.triggers.create({ triggerName: name })
  assert.equal(result.name, name)
  assert.equal(result.namespace, h.namespace)
  assert.deepEqual(result.annotations, [])
  assert.equal(result.version, '0.0.1')
  assert.deepEqual(result.limits, {})
  const got = await ow.triggers.get({ triggerName: name })
  assert.equal(got.name, name)
  assert.equal(got.namespace, h.namespace)
  const dup = await h.rejectsWith(ow.triggers.create({ triggerName: name }), 409)
  h.assertErrorBody(dup.error, '409')
  await ow.triggers.delete({ triggerName: name })
  await h.rejectsWith(ow.triggers.get({ triggerName: name }), 404)
})

test('create and update a trigger', { timeout: 30000 }, async () => {
  const name = trigger('random_create_update_test')
  const result = await ow.triggers.create({ triggerName: name })
  assert.equal(result.version, '0.0.1')
  const updated = await ow.triggers.update({
    triggerName: name,
    trigger: { parameters: [{ key: 'p', value: 1 }] }
  })
  assert.equal(updated.version, '0.0.2')
  assert.deepEqual(updated.parameters, [{ key: 'p', value: 1 }])
  await ow.triggers.delete({ triggerName: name })
})

test('fire a trigger through a rule to /whisk.system/utils/echo', { timeout: 90000 }, async () => {
  const name = trigger('random_fire_test')
  const ruleName = rule('echo_rule')
  await ow.triggers.create({ triggerName: name, trigger: { parameters: [{ key: 'from', value: 'trigger' }] } })
  // Without an active rule, a fire answers 204 and leaves no record.
  const quiet = await h.raw('POST', `/namespaces/_/triggers/${name}`, {
    body: '{}', headers: { 'Content-Type': 'application/json' }
  })
  assert.equal(quiet.status, 204)
  assert.equal(quiet.text, '')

  const r = await ow.rules.create({ ruleName, action: '/whisk.system/utils/echo', trigger: `/${h.namespace}/${name}` })
  assert.equal(r.status, 'active')
  assert.deepEqual(r.action, { path: 'whisk.system/utils', name: 'echo' })
  const fired = await ow.triggers.invoke({ triggerName: name, params: { hello: 'world' } })
  assert.ok(Object.prototype.hasOwnProperty.call(fired, 'activationId'))
  assert.match(fired.activationId, h.ACTIVATION_ID)

  const record = await h.waitForActivation(ow, fired.activationId)
  assert.equal(record.name, name)
  assert.equal(record.namespace, h.namespace)
  assert.deepEqual(record.response.result, { hello: 'world' })
  assert.equal(record.logs.length, 1)
  const line = JSON.parse(record.logs[0])
  assert.deepEqual(
    { statusCode: line.statusCode, success: line.success, rule: line.rule, action: line.action },
    { statusCode: 0, success: true, rule: `${h.namespace}/${ruleName}`, action: 'whisk.system/utils/echo' })
  const echoed = await h.poll('the echo activation', async () => {
    const a = await ow.activations.get(line.activationId)
    return a.response && a.response.status ? a : undefined
  })
  assert.equal(echoed.response.status, 'success')
  assert.equal(echoed.response.result.hello, 'world')
  assert.equal(echoed.response.result.from, 'trigger')

  await ow.triggers.delete({ triggerName: name })
  await ow.rules.delete({ ruleName })
})

test('create, get, disable and delete a rule', { timeout: 60000 }, async () => {
  const hello = await action('hello')
  const t = trigger('sample_rule_trigger')
  const ruleName = rule('random_rule_test')
  await ow.triggers.create({ triggerName: t })
  const result = await ow.rules.create({ ruleName, action: `/${h.namespace}/${hello}`, trigger: `/${h.namespace}/${t}` })
  assert.equal(result.name, ruleName)
  assert.equal(result.namespace, h.namespace)
  assert.deepEqual(result.action, { path: h.namespace, name: hello })
  assert.deepEqual(result.trigger, { path: h.namespace, name: t })
  assert.equal(result.status, 'active')
  const got = await ow.rules.get({ ruleName })
  assert.equal(got.name, ruleName)
  assert.equal(got.status, 'active')
  const trig = await ow.triggers.get({ triggerName: t })
  assert.deepEqual(trig.rules[`${h.namespace}/${ruleName}`],
    { action: { path: h.namespace, name: hello }, status: 'active' })

  await ow.rules.disable({ ruleName })
  assert.equal((await ow.rules.get({ ruleName })).status, 'inactive')
  await ow.rules.disable({ ruleName })
  await ow.rules.enable({ ruleName })
  assert.equal((await ow.rules.get({ ruleName })).status, 'active')
  await ow.rules.disable({ ruleName })
  const deleted = await ow.rules.delete({ ruleName })
  assert.equal(deleted.status, 'inactive')
  await h.rejectsWith(ow.rules.get({ ruleName }), 404)
  await ow.triggers.delete({ triggerName: t })
})

test('create and update a rule', { timeout: 60000 }, async () => {
  const hello = await action('hello')
  const tests = await action('tests')
  const t = trigger('sample_rule_trigger')
  const ruleName = rule('random_update_test')
  await ow.triggers.create({ triggerName: t })
  const result = await ow.rules.create({ ruleName, action: `/${h.namespace}/${hello}`, trigger: `/${h.namespace}/${t}` })
  assert.deepEqual(result.action, { path: h.namespace, name: hello })
  await ow.rules.disable({ ruleName })
  const updated = await ow.rules.update({ ruleName, action: tests, trigger: t })
  assert.deepEqual(updated.action, { path: h.namespace, name: tests })
  assert.equal(updated.version, '0.0.2')
  assert.equal(updated.status, 'inactive', 'an update keeps the rule\'s status')
  // Both must exist.
  const missing = await h.rejectsWith(ow.rules.update({ ruleName, action: 'no-such-action', trigger: t }), 400)
  assert.match(missing.error.error, /does not exist/)
  await ow.rules.delete({ ruleName })
  await ow.triggers.delete({ triggerName: t })
})
