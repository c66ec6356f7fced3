// Activations: logs ("<ISO time> stdout: line"), result ({result, success, status}), list with
// the name filter and limit, 404 for an unknown id.
'use strict'

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./lib/helpers')

const ow = h.client()
const created = []
after(async () => { for (const name of created) await h.cleanupAction(ow, name) })

const PY_LOGS = [
  'def main(args):',
  '    print("first line")',
  '    print("second line")',
  '    return {"logged": 2}',
  ''
].join('\n')

const JS_LOGS = [
  'function main(p) {',
  "  console.log('js first')",
  "  console.log('js second')",
  '  return {logged: 2}',
  '}'
].join('\n')

let pyLogs
let jsLogs
before(async () => {
  pyLogs = h.uniqueName('py-logs')
  jsLogs = h.uniqueName('js-logs')
  created.push(pyLogs, jsLogs)
  await ow.actions.create({ name: pyLogs, action: PY_LOGS, kind: 'python:3' })
  await ow.actions.create({ name: jsLogs, action: JS_LOGS })
})

function assertLogs (logs, expected) {
  assert.ok(Array.isArray(logs), `logs is not an array: ${JSON.stringify(logs)}`)
  const parsed = logs.map(line => {
    const p = h.parseLogLine(line)
    assert.ok(p, `log line not in "<ISO time> stdout: text" form: ${JSON.stringify(line)}`)
    assert.ok(!Number.isNaN(Date.parse(p.time)), `bad timestamp in ${JSON.stringify(line)}`)
    return p
  })
  const stdout = parsed.filter(p => p.stream === 'stdout').map(p => p.text)
  assert.deepEqual(stdout, expected, `stdout lines: ${JSON.stringify(logs)}`)
  assert.ok(!logs.some(l => l.includes('XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX')), 'sentinel leaked into logs')
}

for (const lang of ['python', 'node']) {
  test(`${lang}: logs and result of an activation`, { timeout: 90000 }, async () => {
    const name = lang === 'python' ? pyLogs : jsLogs
    const expected = lang === 'python' ? ['first line', 'second line'] : ['js first', 'js second']
    const { activationId } = await ow.actions.invoke({ name })
    assert.match(activationId, h.ACTIVATION_ID)
    const record = await h.waitForActivation(ow, activationId)
    assert.equal(record.response.status, 'success', JSON.stringify(record.response))
    assertLogs(record.logs, expected)

    const logs = await ow.activations.logs(activationId)
    assert.deepEqual(Object.keys(logs), ['logs'])
    assertLogs(logs.logs, expected)

    const result = await ow.activations.result(activationId)
    assert.deepEqual(result.result, { logged: 2 })
    assert.equal(result.success, true)
    assert.equal(result.status, 'success')

    // Also the client's object form of the id.
    const again = await ow.activations.result({ activationId })
    assert.deepEqual(again.result, { logged: 2 })
  })
}

test('list activations with a name filter and a limit', { timeout: 120000 }, async () => {
  const ids = []
  for (let i = 0; i < 3; i++) {
    const record = await ow.actions.invoke({ name: pyLogs, blocking: true })
    assert.equal(record.response.status, 'success')
    ids.push(record.activationId)
  }
  // Listing may lag behind the blocking answer; wait (bounded) until all three are listed.
  const listed = await h.poll('activations listed by name', async () => {
    const list = await ow.activations.list({ name: pyLogs, limit: 200 })
    return ids.every(id => list.some(a => a.activationId === id)) ? list : undefined
  }, { timeoutMs: 30000 })
  assert.ok(listed.length >= 3)
  for (const a of listed) {
    assert.equal(a.name, pyLogs, `name filter leaked ${JSON.stringify(a)}`)
    assert.equal(a.namespace, h.namespace)
    assert.match(a.activationId, h.ACTIVATION_ID)
  }
  // Newest first.
  for (let i = 1; i < listed.length; i++) {
    assert.ok(listed[i - 1].start >= listed[i].start, 'activations are listed newest first')
  }

  const one = await ow.activations.list({ name: pyLogs, limit: 1 })
  assert.equal(one.length, 1)
  assert.equal(one[0].name, pyLogs)
  assert.equal(one[0].activationId, listed[0].activationId, 'limit=1 gives the newest')

  const two = await ow.activations.list({ name: pyLogs, limit: 2 })
  assert.equal(two.length, 2)

  const skipped = await ow.activations.list({ name: pyLogs, limit: 1, skip: 1 })
  assert.equal(skipped.length, 1)
  assert.equal(skipped[0].activationId, listed[1].activationId, 'skip=1 skips the newest')

  const other = await ow.activations.list({ name: h.uniqueName('never-invoked'), limit: 5 })
  assert.deepEqual(other, [])

  const docs = await ow.activations.list({ name: pyLogs, limit: 1, docs: true })
  assert.equal(docs.length, 1)
  assert.ok(Array.isArray(docs[0].logs), 'docs=true lists full records')
  assert.ok(docs[0].response, 'docs=true lists full records')
})

test('an unknown activation id is 404', { timeout: 30000 }, async () => {
  const id = '0123456789abcdef0123456789abcdef'
  for (const call of [() => ow.activations.get(id), () => ow.activations.logs(id), () => ow.activations.result(id)]) {
    const err = await h.rejectsWith(call(), 404)
    h.assertErrorBody(err.error, '404')
  }
})
