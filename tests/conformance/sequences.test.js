// Sequences and conductor actions through the openwhisk client: the client's own scenario
// (create, get and delete a sequence; its component fully qualified), update with another list,
// blocking and non-blocking invokes (the record's logs are the components' ids, each caused
// by the sequence), a failing component, 400 for a missing component, and a conductor.
'use strict'

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./lib/helpers')

const ow = h.client()
const created = []
after(async () => { for (const name of created.reverse()) await h.cleanupAction(ow, name) })

const PY_ECHO = 'def main(args):\n    return args\n'
const PY_ADD = 'def main(args):\n    return {"n": args.get("n", 0) + args.get("by", 1)}\n'
const PY_FAIL = 'def main(args):\n    return {"error": "no luck"}\n'
const PY_CONDUCTOR = [
  'def main(args):',
  '    step = args.pop("$step", 0)',
  '    nxt = args.pop("next", None)',
  '    if step < 3:',
  '        return {"action": nxt, "params": args, "state": {"$step": step + 1, "next": nxt}}',
  '    return {"params": args}',
  ''
].join('\n')

async function python (prefix, code, params) {
  const name = h.uniqueName(prefix)
  created.push(name)
  await ow.actions.create({ name, action: code, kind: 'python:3', params })
  return name
}

const annotation = (record, key) => (record.annotations.find(a => a.key === key) || {}).value

test('create, get and delete sequence action', { timeout: 60000 }, async () => {
  const echo = await python('echo', PY_ECHO)
  const name = h.uniqueName('my_sequence')
  created.push(name)
  const result = await ow.actions.create({ actionName: name, sequence: [`/${h.namespace}/${echo}`] })
  assert.equal(result.name, name)
  assert.equal(result.namespace, h.namespace)
  assert.equal(result.exec.kind, 'sequence')
  assert.deepEqual(result.exec.components, [`/${h.namespace}/${echo}`])
  const got = await ow.actions.get({ actionName: name })
  assert.equal(got.name, name)
  assert.equal(got.namespace, h.namespace)
  assert.equal(got.exec.kind, 'sequence')
  const list = await ow.actions.list({ limit: 200 })
  const summary = list.find(a => a.name === name)
  assert.ok(summary.annotations.some(a => a.key === 'exec' && a.value === 'sequence'))
  await ow.actions.delete({ actionName: name })
  await h.rejectsWith(ow.actions.get({ actionName: name }), 404)
})

test('invoke a sequence blocking and non-blocking, update its components', { timeout: 120000 }, async () => {
  const add = await python('add', PY_ADD)
  const add10 = await python('add10', PY_ADD, { by: 10 })
  const name = h.uniqueName('seq')
  created.push(name)
  await ow.actions.create({ name, sequence: [`/_/${add}`, `/_/${add10}`] })
  const fetched = await ow.actions.get({ name })
  assert.deepEqual(fetched.exec.components, [`/${h.namespace}/${add}`, `/${h.namespace}/${add10}`])

  const result = await ow.actions.invoke({ name, params: { n: 1 }, blocking: true, result: true })
  assert.deepEqual(result, { n: 12 })

  const record = await ow.actions.invoke({ name, params: { n: 2 }, blocking: true })
  assert.equal(record.response.success, true)
  assert.deepEqual(record.response.result, { n: 13 })
  assert.equal(annotation(record, 'kind'), 'sequence')
  assert.equal(annotation(record, 'topmost'), true)
  assert.equal(record.logs.length, 2)
  for (const id of record.logs) {
    const component = await h.waitForActivation(ow, id)
    assert.equal(component.cause, record.activationId)
    assert.equal(annotation(component, 'causedBy'), 'sequence')
  }

  const { activationId } = await ow.actions.invoke({ name, params: { n: 3 } })
  assert.match(activationId, h.ACTIVATION_ID)
  const later = await h.waitForActivation(ow, activationId)
  assert.deepEqual(later.response.result, { n: 14 })

  const updated = await ow.actions.update({ name, sequence: [`/_/${add10}`] })
  assert.equal(updated.version, '0.0.2')
  assert.deepEqual(await ow.actions.invoke({ name, params: { n: 0 }, blocking: true, result: true }), { n: 10 })
})

test('a failing component stops the sequence; a missing one is refused', { timeout: 60000 }, async () => {
  const add = await python('add', PY_ADD)
  const fail = await python('fail', PY_FAIL)
  const name = h.uniqueName('seq-fail')
  created.push(name)
  await ow.actions.create({ name, sequence: [`/_/${add}`, `/_/${fail}`, `/_/${add}`] })
  const err = await h.rejectsWith(ow.actions.invoke({ name, params: { n: 1 }, blocking: true }), 502)
  assert.equal(err.error.response.status, 'application error')
  assert.deepEqual(err.error.response.result, { error: 'no luck' })
  assert.equal(err.error.logs.length, 2)

  const missing = await h.rejectsWith(
    ow.actions.create({ name: h.uniqueName('seq-missing'), sequence: [`/_/${h.uniqueName('nothing')}`] }), 400)
  h.assertErrorBody(missing.error)
  assert.equal(missing.error.error, 'Sequence component does not exist.')
})

test('a conductor action runs the actions it names', { timeout: 60000 }, async () => {
  const add = await python('add', PY_ADD)
  const name = h.uniqueName('conductor')
  created.push(name)
  await ow.actions.create({
    name,
    action: {
      exec: { kind: 'python:3', code: PY_CONDUCTOR },
      annotations: [{ key: 'conductor', value: true }]
    }
  })
  const record = await ow.actions.invoke({ name, params: { n: 0, next: add }, blocking: true })
  assert.equal(record.response.success, true)
  assert.deepEqual(record.response.result, { n: 3 })
  assert.equal(annotation(record, 'conductor'), true)
  assert.equal(annotation(record, 'kind'), 'sequence')
  assert.equal(record.logs.length, 7, 'four conductor runs around three steps')
})
