// Feeds through the openwhisk client, as openwhisk-client-js's integration test runs them:
// ow.feeds.create/get/update/delete with /whisk.system/alarms/alarm on a trigger, each an
// activation whose response succeeded; plus what that test leaves unchecked: the
// registration READ shows, the alarm firing the trigger through a rule to
// /whisk.system/utils/echo with its payload, a refused CREATE (a bad cron) as an application
// error, and the feed actions listed in /whisk.system/alarms.
'use strict'

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./lib/helpers')

const ow = h.client()
const triggers = []
const rules = []
after(async () => {
  const ignore = p => p.catch(() => {})
  for (const name of rules) await ignore(ow.rules.delete({ name }))
  for (const name of triggers) {
    await ignore(ow.feeds.delete({ name: '/whisk.system/alarms/alarm', trigger: name }))
    await ignore(ow.triggers.delete({ name }))
  }
})

function trigger (prefix) {
  const name = h.uniqueName(prefix)
  triggers.push(name)
  return name
}

test('create, get, update, and delete a feed', { timeout: 60000 }, async () => {
  const name = trigger('sample_feed_trigger')
  const feedParams = {
    feedName: '/whisk.system/alarms/alarm',
    trigger: `/${h.namespace}/${name}`,
    params: { cron: '*/8 * * * * *', trigger_payload: { name: 'test', place: 'hello' } }
  }
  await ow.triggers.create({ triggerName: name })
  const result = await ow.feeds.create(feedParams)
  assert.equal(result.response.success, true)

  const got = await ow.feeds.get(feedParams)
  assert.equal(got.response.success, true)
  assert.equal(got.response.result.config.cron, '*/8 * * * * *')
  assert.deepEqual(got.response.result.config.payload, { name: 'test', place: 'hello' })
  assert.equal(got.response.result.status.active, true)

  feedParams.params.cron = '* * * * * *'
  const updated = await ow.feeds.update(feedParams)
  assert.equal(updated.response.success, true)
  const again = await ow.feeds.get(feedParams)
  assert.equal(again.response.result.config.cron, '* * * * * *')

  const deleted = await ow.feeds.delete(feedParams)
  assert.equal(deleted.response.success, true)
  await h.rejectsWith(ow.feeds.get(feedParams), 502)
  await ow.triggers.delete({ triggerName: name })
})

test('an alarm fires its trigger through a rule with its payload', { timeout: 60000 }, async () => {
  const name = trigger('every_second')
  const ruleName = h.uniqueName('every_second_rule')
  rules.push(ruleName)
  await ow.triggers.create({ name, trigger: { annotations: [{ key: 'feed', value: '/whisk.system/alarms/alarm' }] } })
  await ow.rules.create({ name: ruleName, action: '/whisk.system/utils/echo', trigger: name })
  const created = await ow.feeds.create({
    name: '/whisk.system/alarms/alarm',
    trigger: name,
    params: { cron: '* * * * * *', trigger_payload: { from: 'alarm' } }
  })
  assert.equal(created.response.success, true)
  const fired = await h.poll('two trigger activations', async () => {
    const list = await ow.activations.list({ name, limit: 10 })
    return list.length >= 2 ? list : undefined
  }, { timeoutMs: 30000 })
  const record = await ow.activations.get(fired[0].activationId)
  assert.deepEqual(record.response.result, { from: 'alarm' })
  const echoed = await h.poll('an echo of the alarm', async () => {
    const list = await ow.activations.list({ name: 'echo', limit: 20, docs: true })
    return list.find(a => a.response && a.response.result && a.response.result.from === 'alarm')
  }, { timeoutMs: 30000 })
  assert.equal(echoed.response.success, true)
  const deleted = await ow.feeds.delete({ name: '/whisk.system/alarms/alarm', trigger: name })
  assert.equal(deleted.response.success, true)
})

test('a refused lifecycle event is an application error of the feed action', { timeout: 30000 }, async () => {
  const name = trigger('bad_cron')
  await ow.triggers.create({ name })
  const err = await h.rejectsWith(ow.feeds.create({
    name: '/whisk.system/alarms/alarm', trigger: name, params: { cron: 'every tuesday' }
  }), 502)
  const record = err.error
  assert.equal(record.response.success, false)
  assert.equal(record.response.status, 'application error')
  assert.equal(record.response.result.error, "cron pattern 'every tuesday' is not valid")
  // No trigger of that name: 404 from the feed.
  const missing = await h.rejectsWith(ow.feeds.create({
    name: '/whisk.system/alarms/interval', trigger: h.uniqueName('no_such_trigger'), params: { minutes: 1 }
  }), 502)
  assert.equal(missing.error.response.result.statusCode, 404)
})

test('the alarms and messaging packages list their feeds', { timeout: 30000 }, async () => {
  const alarms = await ow.packages.get({ name: '/whisk.system/alarms' })
  const feeds = (alarms.feeds || []).map(f => f.name).sort()
  assert.deepEqual(feeds, ['alarm', 'interval', 'once'])
  const messaging = await ow.packages.get({ name: '/whisk.system/messaging' })
  assert.deepEqual((messaging.feeds || []).map(f => f.name), ['kafkaFeed'])
})
