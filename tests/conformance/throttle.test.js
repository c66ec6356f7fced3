// Per-namespace throttles: a user created with `whisk admin user create` and a limit of 3
// invocations per minute gets 429 on the 4th.
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const h = require('./lib/helpers')

const createUser = h.createUser

test('the 4th invocation in a minute of a 3-per-minute namespace is 429', { timeout: 120000 }, async () => {
  const id = crypto.randomBytes(4).toString('hex')
  const namespace = `tns${id}`
  const key = createUser(`tuser${id}`, namespace, 3, 10)
  const ow = h.client({ apiKey: key, namespace })

  assert.deepEqual(await ow.namespaces.list(), [namespace], 'the new user sees only its namespace')
  // The guest key may not touch the new namespace, nor the new key guest's.
  await h.rejectsWith(h.client().actions.list({ namespace }), 403)
  await h.rejectsWith(ow.actions.list({ namespace: 'guest' }), 403)

  const name = h.uniqueName('throttled')
  await ow.actions.create({ name, action: 'def main(args):\n    return {"ok": True}\n', kind: 'python:3' })
  try {
    // Keep the four invocations inside one clock minute, whichever window the server uses.
    const secondOfMinute = new Date().getSeconds()
    if (secondOfMinute >= 45) await h.sleep((61 - secondOfMinute) * 1000)

    for (let i = 1; i <= 3; i++) {
      const res = await ow.actions.invoke({ name })
      assert.match(res.activationId, h.ACTIVATION_ID, `invocation ${i} must be accepted`)
    }
    const err = await h.rejectsWith(ow.actions.invoke({ name }), 429)
    h.assertErrorBody(err.error, '429')
    assert.match(err.error.error, /^Too many requests in the last minute \(count: \d+, allowed: 3\)\.$/)

    // Other namespaces are unaffected.
    const guest = h.client()
    const hello = h.uniqueName('unthrottled')
    await guest.actions.create({ name: hello, action: 'def main(args):\n    return {"ok": True}\n', kind: 'python:3' })
    try {
      assert.deepEqual(await guest.actions.invoke({ name: hello, blocking: true, result: true }), { ok: true })
    } finally {
      await h.cleanupAction(guest, hello)
    }
  } finally {
    await h.cleanupAction(ow, name)
  }
})
