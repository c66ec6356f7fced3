// Web actions called with fetch() and API routes through the openwhisk client's ow.routes
// (the scenario of openwhisk-client-js's routes integration test, without an API gateway
// token): create, list, call the route, delete. Error paths: a missing or unexported action,
// a bad statusCode, an unknown extension, reserved parameters.
'use strict'

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const h = require('./lib/helpers')

const ow = h.client()
const created = []
after(async () => { for (const name of created) await h.cleanupAction(ow, name) })

const ECHO = 'def main(args):\n    return args\n'
const PAGE = 'def main(args):\n    return {"statusCode": args.get("code", 200), "headers": {"x-page": "yes"}, "body": "<p>" + args.get("name", "page") + "</p>"}\n'

async function webAction (name, code, annotations = {}) {
  created.push(name)
  await ow.actions.create({
    name,
    action: code,
    kind: 'python:3',
    annotations: { 'web-export': true, ...annotations }
  })
}

async function call (url, init = {}) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(120000) })
  const text = await res.text()
  let json
  try { json = JSON.parse(text) } catch (_) { json = undefined }
  return { status: res.status, headers: res.headers, text, json }
}

const web = (name, ext = '') => `${h.apihost}/api/v1/web/${h.namespace}/default/${name}${ext}`

test('web actions: arguments, extensions and the .http projection', { timeout: 120000 }, async () => {
  const echo = h.uniqueName('web-echo')
  const page = h.uniqueName('web-page')
  await webAction(echo, ECHO)
  await webAction(page, PAGE)

  let r = await call(`${web(echo, '.json')}/more/path?name=Jane`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ age: 7 })
  })
  assert.equal(r.status, 200, r.text)
  assert.equal(r.json.name, 'Jane')
  assert.equal(r.json.age, 7)
  assert.equal(r.json.__ow_method, 'post')
  assert.equal(r.json.__ow_path, '/more/path')
  assert.equal(typeof r.json.__ow_headers, 'object')
  assert.equal(r.json.__ow_user, undefined, 'no credentials, no __ow_user')
  assert.match(r.headers.get('x-openwhisk-activation-id'), h.ACTIVATION_ID)

  r = await call(`${web(page)}?name=x`)
  assert.equal(r.status, 200)
  assert.equal(r.headers.get('x-page'), 'yes')
  assert.match(r.headers.get('content-type'), /^text\/html/)
  assert.equal(r.text, '<p>x</p>')

  r = await call(web(page, '.text'))
  assert.equal(r.status, 200)
  assert.equal(r.text, '<p>page</p>')

  r = await call(`${web(page, '.http')}?code=abc`)
  assert.equal(r.status, 400)
  h.assertErrorBody(r.json, 'bad statusCode')
  assert.equal(r.json.error, "Response is not valid 'message/http'.")

  r = await call(`${web(echo, '.json')}?__ow_method=put`)
  assert.equal(r.status, 400)
  assert.equal(r.json.error, 'Request defines parameters that are not allowed (e.g., reserved properties).')

  r = await call(web(echo, '.json'), { method: 'OPTIONS' })
  assert.equal(r.status, 200)
  assert.equal(r.headers.get('access-control-allow-origin'), '*')
})

test('web actions: missing, not exported, unknown extension', { timeout: 60000 }, async () => {
  const plain = h.uniqueName('web-plain')
  created.push(plain)
  await ow.actions.create({ name: plain, action: ECHO, kind: 'python:3' })
  for (const url of [web(plain, '.json'), web(h.uniqueName('nothing'), '.json'), web(plain, '.xyz')]) {
    const r = await call(url)
    assert.equal(r.status, 404, url)
    h.assertErrorBody(r.json, url)
  }
})

test('routes: create, list, call, delete through ow.routes', { timeout: 120000 }, async () => {
  const name = h.uniqueName('route-action')
  await webAction(name, ECHO)
  const basepath = `/${h.uniqueName('testing')}`

  const created = await ow.routes.create({ action: name, basepath, relpath: '/foo/bar', operation: 'POST' })
  assert.equal(created.apidoc.basePath, basepath)
  assert.match(created.gwApiUrl, new RegExp(`/api/[^/]+${basepath}$`))

  const results = await ow.routes.list({ basepath })
  assert.equal(results.apis.length, 1)
  const apidoc = results.apis[0].value.apidoc
  assert.equal(apidoc.basePath, basepath)
  assert.ok(Object.prototype.hasOwnProperty.call(apidoc.paths, '/foo/bar'))
  const path = apidoc.paths['/foo/bar']
  assert.ok(Object.prototype.hasOwnProperty.call(path, 'post'))
  assert.equal(path.post['x-openwhisk'].action, name)

  const all = await ow.routes.list()
  assert.ok(all.apis.some(a => a.value.apidoc.basePath === basepath))

  const url = `${results.apis[0].value.gwApiUrl}/foo/bar`
  let r = await call(`${url}?q=1`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ b: 2 })
  })
  assert.equal(r.status, 200, r.text)
  assert.equal(r.json.q, '1')
  assert.equal(r.json.b, 2)
  r = await call(url)
  assert.equal(r.status, 404, 'GET is not an operation of the route')

  await ow.routes.delete({ basepath })
  assert.equal((await ow.routes.list({ basepath })).apis.length, 0)
  r = await call(url, { method: 'POST' })
  assert.equal(r.status, 404)
  const err = await h.rejectsWith(ow.routes.delete({ basepath }), 502)
  assert.match(JSON.stringify(err.error), /does not exist/)
})
