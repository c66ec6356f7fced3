// The whisk-rs web console: plain JavaScript, no build step, no dependency.
//
// Security rules this file keeps (the page's Content-Security-Policy allows only this script):
// - Every piece of data (action names, code, parameters, results, log lines, group and
//   instance ids) reaches the page through textContent or attribute setters, never as markup.
// - The namespace key lives in this tab's sessionStorage and goes out only as the
//   Authorization header of same-origin API calls: never in a URL, never logged.
// - Live streams (activation logs, peer groups) are read with fetch() streaming, since
//   EventSource cannot send an Authorization header.
'use strict';

const AUTH_KEY = 'whisk-console-auth';
const NS_KEY = 'whisk-console-namespace';
const MAX_LOG_LINES = 5000;

const state = {
  tab: null,
  timers: [],
  follow: null,     // AbortController of the activation log stream
  groups: null,     // AbortController of the peer-groups stream
  groupMaps: [],
  action: null,     // the action shown
  cluster: { containers: [], memory: [], placed: [], inflight: [], lastPlaced: null },
};

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

// ---- authentication and API calls ------------------------------------------------------

function auth() {
  return sessionStorage.getItem(AUTH_KEY);
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const a = auth();
  if (a) h['Authorization'] = 'Basic ' + a;
  return h;
}

async function errorOf(resp) {
  let msg = resp.status + ' ' + resp.statusText;
  try {
    const body = await resp.json();
    if (body && typeof body.error === 'string') msg = body.error;
  } catch (_) { /* not JSON */ }
  if (resp.status === 401) loggedOut('The key was refused (401). Log in again.');
  return new HttpError(resp.status, msg);
}

async function api(path, options) {
  const opts = Object.assign({ cache: 'no-store', credentials: 'omit' }, options || {});
  opts.headers = headers(Object.assign({ Accept: 'application/json' }, opts.headers || {}));
  const resp = await fetch(path, opts);
  if (!resp.ok) throw await errorOf(resp);
  return resp.json();
}

const NS = '/api/v1/namespaces/_';

// An action's path below /actions/: each segment (package, name) percent-encoded.
function actionPath(name) {
  return name.split('/').map(encodeURIComponent).join('/');
}

// Reads a text/event-stream answer of `path`; calls onEvent(type, data) per event until the
// stream ends (resolves) or `signal` aborts. Answers that are not a stream reject with
// HttpError; `onOther(resp)` may take a non-stream 2xx answer instead.
async function stream(path, signal, onEvent, onOther) {
  const resp = await fetch(path, {
    headers: headers({ Accept: 'text/event-stream' }),
    cache: 'no-store',
    credentials: 'omit',
    signal,
  });
  if (!resp.ok) throw await errorOf(resp);
  const type = resp.headers.get('Content-Type') || '';
  if (!type.startsWith('text/event-stream')) {
    if (onOther) return onOther(resp);
    throw new HttpError(resp.status, 'not an event stream');
  }
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let v = colon < 0 ? '' : line.slice(colon + 1);
        if (v.startsWith(' ')) v = v.slice(1);
        if (field === 'event') event = v;
        else if (field === 'data') data.push(v);
      }
      if (data.length) onEvent(event, data.join('\n'));
    }
  }
}

// ---- login -------------------------------------------------------------------------------

async function login(key) {
  key = key.trim();
  if (!/^[^:\s]+:\S+$/.test(key)) throw new Error('A key looks like uuid:key.');
  sessionStorage.setItem(AUTH_KEY, btoa(key));
  try {
    const names = await api('/api/v1/namespaces');
    const ns = Array.isArray(names) && names.length ? String(names[0]) : '_';
    sessionStorage.setItem(NS_KEY, ns);
  } catch (e) {
    sessionStorage.removeItem(AUTH_KEY);
    throw e;
  }
}

function loggedOut(message) {
  sessionStorage.removeItem(AUTH_KEY);
  sessionStorage.removeItem(NS_KEY);
  stopAll();
  $('tabs').hidden = true;
  $('logout').hidden = true;
  $('who').textContent = '';
  for (const v of document.querySelectorAll('.view')) v.hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
}

function loggedIn() {
  $('login').hidden = true;
  $('tabs').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = 'namespace ' + (sessionStorage.getItem(NS_KEY) || '_');
  show('actions');
}

// ---- tabs --------------------------------------------------------------------------------

function stopAll() {
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  if (state.groups) state.groups.abort();
  state.groups = null;
}

function every(ms, f) {
  f();
  state.timers.push(setInterval(f, ms));
}

function show(tab) {
  stopAll();
  state.tab = tab;
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== tab;
  for (const b of document.querySelectorAll('.tab')) b.classList.toggle('active', b.dataset.tab === tab);
  if (tab === 'actions') loadActions();
  if (tab === 'activations') every(3000, loadActivations);
  if (tab === 'groups') followGroups();
  if (tab === 'cluster') every(2000, loadCluster);
}

// ---- actions -----------------------------------------------------------------------------

function fullName(a) {
  // `namespace` is `ns` or `ns/package`.
  const ns = String(a.namespace || '');
  const slash = ns.indexOf('/');
  return (slash >= 0 ? ns.slice(slash + 1) + '/' : '') + String(a.name);
}

async function loadActions() {
  const list = $('action-list');
  try {
    const actions = await api(NS + '/actions?limit=200');
    clear(list);
    if (!actions.length) list.appendChild(el('li', 'No actions yet (wsk action create ...).', 'hint'));
    for (const a of actions) {
      const name = fullName(a);
      const li = el('li');
      const b = el('button', name, 'link');
      b.dataset.action = name;
      b.addEventListener('click', () => showAction(name));
      li.appendChild(b);
      list.appendChild(li);
    }
  } catch (e) {
    clear(list);
    list.appendChild(el('li', 'Cannot list actions: ' + e.message, 'error'));
  }
}

function meta(dl, pairs) {
  clear(dl);
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === '') continue;
    dl.appendChild(el('dt', k));
    const dd = el('dd');
    if (v instanceof Node) dd.appendChild(v); else dd.textContent = String(v);
    dl.appendChild(dd);
  }
}

async function showAction(name) {
  state.action = name;
  $('invoke-error').textContent = '';
  try {
    const a = await api(NS + '/actions/' + actionPath(name) + '?code=true');
    $('action-detail').hidden = false;
    $('action-name').textContent = name;
    const exec = a.exec || {};
    const limits = a.limits || {};
    meta($('action-meta'), [
      ['kind', exec.kind],
      ['version', a.version],
      ['timeout', limits.timeout !== undefined ? limits.timeout + ' ms' : ''],
      ['memory', limits.memory !== undefined ? limits.memory + ' MB' : ''],
      ['logs', limits.logs !== undefined ? limits.logs + ' MB' : ''],
      ['concurrency', limits.concurrency],
      ['image', exec.image],
    ]);
    let code = '';
    if (exec.kind === 'sequence') code = 'sequence of ' + (exec.components || []).join(', ');
    else if (exec.binary) code = '(binary, ' + String(exec.code || '').length + ' base64 characters)';
    else code = exec.code === undefined ? '' : String(exec.code);
    $('action-code').textContent = code;
    const params = (a.parameters || []).map((p) => p.key + ' = ' + JSON.stringify(p.value));
    $('action-params').textContent = params.length ? params.join('\n') : '(none)';
  } catch (e) {
    $('action-detail').hidden = false;
    $('action-name').textContent = name;
    $('action-code').textContent = '';
    $('invoke-error').textContent = 'Cannot read the action: ' + e.message;
  }
}

async function invoke(ev) {
  ev.preventDefault();
  const err = $('invoke-error');
  err.textContent = '';
  const name = state.action;
  if (!name) return;
  let params;
  try {
    params = JSON.parse($('invoke-params').value || '{}');
    if (params === null || typeof params !== 'object' || Array.isArray(params)) throw new Error('not an object');
  } catch (e) {
    err.textContent = 'Parameters must be a JSON object: ' + e.message;
    return;
  }
  const n = Math.floor(Number($('invoke-instances').value || 1));
  if (!(n >= 1 && n <= 1024)) {
    err.textContent = 'Instances must be between 1 and 1024.';
    return;
  }
  const query = n > 1 ? '?instances=' + n : '?blocking=false';
  try {
    const r = await api(NS + '/actions/' + actionPath(name) + query, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(params),
    });
    if (n > 1) {
      show('groups');
      $('groups-state').textContent = 'gang started: ' + String(r.group);
    } else {
      show('activations');
      showActivation(String(r.activationId), true);
    }
  } catch (e) {
    err.textContent = 'Invoke failed: ' + e.message;
  }
}

// ---- activations -------------------------------------------------------------------------

const STATUS = ['success', 'application error', 'developer error', 'whisk error'];

function statusOf(code) {
  return STATUS[code] || ('status ' + code);
}

function when(ms) {
  if (!ms) return '';
  return new Date(ms).toLocaleTimeString();
}

async function loadActivations() {
  let list;
  try {
    list = await api(NS + '/activations?limit=200');
  } catch (e) {
    const body = $('activation-table').tBodies[0];
    clear(body);
    const tr = el('tr');
    const td = el('td', 'Cannot list activations: ' + e.message, 'error');
    td.colSpan = 4;
    tr.appendChild(td);
    body.appendChild(tr);
    return;
  }
  // The activations this controller placed that still run (no record yet): live logs.
  const running = await api(NS + '/activations?running=true').catch(() => []);
  const body = $('activation-table').tBodies[0];
  clear(body);
  for (const a of Array.isArray(running) ? running.slice().reverse() : []) {
    const tr = el('tr', null, 'running');
    const name = el('td');
    const b = el('button', String(a.name), 'link');
    b.dataset.activation = String(a.activationId);
    b.addEventListener('click', () => showActivation(String(a.activationId), true));
    name.appendChild(b);
    tr.appendChild(name);
    tr.appendChild(el('td', 'running'));
    tr.appendChild(el('td', a.start ? Math.max(0, Date.now() - Number(a.start)) + ' ms so far' : ''));
    tr.appendChild(el('td', when(a.start)));
    body.appendChild(tr);
  }
  for (const a of list.slice(0, 50)) {
    const tr = el('tr');
    tr.className = 'status-' + a.statusCode;
    const name = el('td');
    const b = el('button', String(a.name), 'link');
    b.dataset.activation = String(a.activationId);
    b.addEventListener('click', () => showActivation(String(a.activationId), false));
    name.appendChild(b);
    tr.appendChild(name);
    tr.appendChild(el('td', statusOf(a.statusCode)));
    tr.appendChild(el('td', a.duration !== undefined ? a.duration + ' ms' : ''));
    tr.appendChild(el('td', when(a.start)));
    body.appendChild(tr);
  }
  // Activations per 10 s over the last 5 minutes, and the last 50 durations.
  const now = Date.now();
  const buckets = new Array(30).fill(0);
  for (const a of list) {
    const age = now - Number(a.start || 0);
    if (age >= 0 && age < 300000) buckets[29 - Math.floor(age / 10000)] += 1;
  }
  chart($('chart-rate'), buckets, 'bars');
  const durations = list.slice(0, 50).reverse().map((a) => Number(a.duration || 0));
  chart($('chart-duration'), durations, 'line');
}

function annotation(record, key) {
  for (const a of record.annotations || []) if (a && a.key === key) return a.value;
  return undefined;
}

// The trace id of a record: its `traceId`/`trace_id` annotation, or the one inside a
// `traceparent` annotation (W3C: version-traceid-parentid-flags).
function traceIdOf(record) {
  let id = annotation(record, 'traceId') || annotation(record, 'trace_id');
  const tp = annotation(record, 'traceparent');
  if (!id && typeof tp === 'string') id = tp.split('-')[1];
  return typeof id === 'string' && /^[0-9a-f]{32}$/.test(id) ? id : null;
}

function traceUrl(id) {
  const tpl = document.querySelector('meta[name="whisk-trace-url"]').content || '';
  if (!/^https?:\/\//i.test(tpl) || tpl.indexOf('{traceId}') < 0) return null;
  return tpl.split('{traceId}').join(id);
}

function renderRecord(r) {
  meta($('activation-meta'), [
    ['action', annotation(r, 'path') || r.name],
    ['status', !r.response ? '' : typeof r.response.status === 'string' ? r.response.status : statusOf(r.response.statusCode)],
    ['duration', r.duration !== undefined ? r.duration + ' ms' : ''],
    ['started', when(r.start)],
    ['ended', when(r.end)],
    ['wait', annotation(r, 'waitTime') !== undefined ? annotation(r, 'waitTime') + ' ms' : ''],
    ['init', annotation(r, 'initTime') !== undefined ? annotation(r, 'initTime') + ' ms' : ''],
    ['cause', r.cause],
  ]);
  const p = $('activation-trace');
  clear(p);
  const id = traceIdOf(r);
  if (id) {
    const url = traceUrl(id);
    p.appendChild(document.createTextNode('trace '));
    if (url) {
      const a = el('a', id);
      a.href = url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.id = 'trace-link';
      p.appendChild(a);
    } else {
      p.appendChild(el('code', id));
    }
  }
  const result = r.response ? r.response.result : undefined;
  $('activation-result').textContent = result === undefined ? '' : JSON.stringify(result, null, 2);
}

function setLogs(lines) {
  const pre = $('activation-logs');
  clear(pre);
  appendLogs(lines);
}

function appendLogs(lines) {
  const pre = $('activation-logs');
  for (const line of lines) {
    pre.appendChild(el('span', line + '\n', 'line'));
    if (pre.childNodes.length > MAX_LOG_LINES) pre.removeChild(pre.firstChild);
  }
  pre.scrollTop = pre.scrollHeight;
}

async function record(id) {
  try {
    return await api(NS + '/activations/' + encodeURIComponent(id));
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

// Shows activation `id`: its record when it has one, its log lines as they are printed while
// it runs (the follow stream), then its record once it ends.
async function showActivation(id, running) {
  if (state.follow) state.follow.abort();
  const ctl = new AbortController();
  state.follow = ctl;
  $('activation-detail').hidden = false;
  $('activation-title').textContent = 'activation ' + id;
  $('activation-detail').dataset.activation = id;
  meta($('activation-meta'), []);
  clear($('activation-trace'));
  $('activation-result').textContent = '';
  setLogs([]);
  const badge = $('log-state');
  badge.textContent = running ? 'waiting' : '';
  const finish = async () => {
    for (let i = 0; i < 40 && !ctl.signal.aborted; i++) {
      const r = await record(id).catch(() => null);
      if (r) {
        renderRecord(r);
        if (state.tab === 'activations') loadActivations();
        return r;
      }
      await new Promise((res) => setTimeout(res, 250));
    }
    return null;
  };
  try {
    let ended = false;
    await stream(
      NS + '/activations/' + encodeURIComponent(id) + '/logs?follow=true',
      ctl.signal,
      (event, data) => {
        if (event === 'end') {
          ended = true;
          badge.textContent = 'ended';
        } else {
          badge.textContent = 'live';
          appendLogs([data]);
        }
      },
      async (resp) => {
        // A platform without live logs answers the stored lines as JSON.
        const body = await resp.json();
        setLogs((body && body.logs) || []);
        ended = true;
      },
    );
    if (!ctl.signal.aborted) {
      badge.textContent = ended ? 'ended' : 'stream closed';
      await finish();
    }
  } catch (e) {
    if (ctl.signal.aborted) return;
    // No live stream (or the record is not there yet): wait for the record and its logs.
    badge.textContent = 'waiting for the record';
    const r = await finish();
    if (r) {
      setLogs(r.logs || []);
      badge.textContent = 'ended';
    } else {
      badge.textContent = 'no record: ' + e.message;
    }
  }
}

// ---- peer groups -------------------------------------------------------------------------

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? s + ' s ago' : Math.floor(s / 60) + ' min ago';
}

function renderGroups() {
  const root = $('group-list');
  clear(root);
  const groups = state.groupMaps;
  if (!groups.length) {
    root.appendChild(el('p', 'No peer group has running instances now.', 'hint'));
    return;
  }
  for (const g of groups) {
    const peers = g.peers || [];
    const card = el('div', null, 'group');
    card.dataset.group = String(g.group);
    card.dataset.size = String(peers.length);
    card.appendChild(el('h3', String(g.group) + ' — ' + peers.length + ' instance' + (peers.length === 1 ? '' : 's') + ' (version ' + g.version + ')'));
    const table = el('table');
    const head = el('tr');
    for (const h of ['instance', 'address', 'invoker', 'activation', 'since']) head.appendChild(el('th', h));
    table.appendChild(head);
    for (const p of peers) {
      const tr = el('tr');
      tr.appendChild(el('td', p.id));
      tr.appendChild(el('td', p.port ? p.ip + ':' + p.port : p.ip));
      tr.appendChild(el('td', 'invoker' + p.invokerId));
      const act = el('td');
      if (p.activationId) {
        const b = el('button', String(p.activationId), 'link');
        b.addEventListener('click', () => { show('activations'); showActivation(String(p.activationId), true); });
        act.appendChild(b);
      }
      tr.appendChild(act);
      const since = el('td', p.sinceMs ? when(p.sinceMs) + ' (' + ago(p.sinceMs) + ')' : '');
      tr.appendChild(since);
      table.appendChild(tr);
    }
    card.appendChild(table);
    root.appendChild(card);
  }
}

async function followGroups() {
  const badge = $('groups-state');
  const ctl = new AbortController();
  state.groups = ctl;
  state.timers.push(setInterval(renderGroups, 1000));
  while (!ctl.signal.aborted) {
    try {
      await stream(NS + '/groups?follow=true', ctl.signal, (event, data) => {
        if (event !== 'groups') return;
        const body = JSON.parse(data);
        state.groupMaps = Array.isArray(body.groups) ? body.groups : [];
        badge.textContent = 'live';
        renderGroups();
      });
    } catch (e) {
      if (ctl.signal.aborted) return;
      badge.textContent = 'reconnecting (' + e.message + ')';
    }
    await new Promise((res) => setTimeout(res, 2000));
  }
}

// ---- cluster (the operator's view) -------------------------------------------------------

async function loadCluster() {
  const note = $('cluster-note');
  let details;
  try {
    // Cluster data is the operator's: the controller serves it on its own (internal)
    // address only; the public gateway answers 404. No key is sent for it.
    const resp = await fetch('/invokers/details', { cache: 'no-store', credentials: 'omit' });
    if (!resp.ok) throw new HttpError(resp.status, resp.statusText);
    details = await resp.json();
  } catch (e) {
    $('cluster-body').hidden = true;
    note.textContent = 'Cluster data (invokers, memory, containers) is for operators: open this console on the controller\'s own address to see it. The public gateway does not serve it (' + e.message + ').';
    return;
  }
  note.textContent = 'Operator view, from the controller\'s invoker health pings.';
  $('cluster-body').hidden = false;
  const body = $('invoker-table').tBodies[0];
  clear(body);
  let containers = 0;
  let free = 0;
  for (const d of details) {
    const tr = el('tr');
    tr.className = 'state-' + String(d.state).replace(/[^a-z]/g, '');
    for (const v of [d.name, d.state, d.userMemoryMB, d.freeMemoryMB, d.reservedMB, d.containers, d.lastPingMsAgo !== undefined ? d.lastPingMsAgo + ' ms ago' : '']) {
      tr.appendChild(el('td', v === undefined ? '' : v));
    }
    body.appendChild(tr);
    containers += Number(d.containers || 0);
    free += Number(d.freeMemoryMB || 0);
  }
  for (const [k, v] of [['containers', containers], ['memory', free]]) {
    state.cluster[k].push(v);
    if (state.cluster[k].length > 60) state.cluster[k].shift();
  }
  chart($('chart-containers'), state.cluster.containers, 'line');
  chart($('chart-memory'), state.cluster.memory, 'line');
  await loadMetrics();
}

// Sums of the controller's Prometheus samples by metric name (labels summed over).
function metricSums(text) {
  const sums = {};
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) sums[m[1]] = (sums[m[1]] || 0) + v;
  }
  return sums;
}

// Key metrics from the controller's own /metrics (operator only, like the invokers).
async function loadMetrics() {
  let sums;
  try {
    const resp = await fetch('/metrics', { cache: 'no-store', credentials: 'omit' });
    if (!resp.ok) throw new HttpError(resp.status, resp.statusText);
    sums = metricSums(await resp.text());
  } catch (_) {
    $('metric-charts').hidden = true;
    return;
  }
  $('metric-charts').hidden = false;
  const placed = sums['openwhisk_loadbalancer_activations_total'] || 0;
  const c = state.cluster;
  c.placed.push(c.lastPlaced === null ? 0 : Math.max(0, placed - c.lastPlaced));
  c.lastPlaced = placed;
  c.inflight.push(sums['openwhisk_loadbalancer_activations_inflight'] || 0);
  for (const k of ['placed', 'inflight']) if (c[k].length > 60) c[k].shift();
  chart($('chart-placed'), c.placed, 'bars');
  chart($('chart-inflight'), c.inflight, 'line');
}

// ---- charts: small inline SVGs built from numbers only -----------------------------------

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function chart(root, values, kind) {
  clear(root);
  const w = 300;
  const h = 70;
  const nums = values.map((v) => (Number.isFinite(v) ? v : 0));
  const max = Math.max(1, ...nums);
  const s = svg('svg', { viewBox: '0 0 ' + w + ' ' + (h + 14), width: w, height: h + 14, role: 'img' });
  s.appendChild(svg('line', { x1: 0, y1: h, x2: w, y2: h, class: 'axis' }));
  if (kind === 'bars') {
    const bw = w / Math.max(1, nums.length);
    nums.forEach((v, i) => {
      const bh = (v / max) * (h - 2);
      s.appendChild(svg('rect', { x: (i * bw + 1).toFixed(1), y: (h - bh).toFixed(1), width: Math.max(1, bw - 2).toFixed(1), height: bh.toFixed(1), class: 'bar' }));
    });
  } else if (nums.length) {
    const step = nums.length > 1 ? w / (nums.length - 1) : 0;
    const pts = nums.map((v, i) => (i * step).toFixed(1) + ',' + (h - (v / max) * (h - 2)).toFixed(1)).join(' ');
    s.appendChild(svg('polyline', { points: pts, class: 'line' }));
    const last = nums[nums.length - 1];
    s.appendChild(svg('circle', { cx: ((nums.length - 1) * step).toFixed(1), cy: (h - (last / max) * (h - 2)).toFixed(1), r: 2.5, class: 'dot' }));
  }
  const label = svg('text', { x: 2, y: h + 12, class: 'label' });
  label.textContent = 'max ' + max + (nums.length ? ', last ' + nums[nums.length - 1] : '');
  s.appendChild(label);
  root.appendChild(s);
}

// ---- start -------------------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $('key');
    try {
      await login(input.value);
      input.value = '';
      loggedIn();
    } catch (e) {
      $('login-error').textContent = 'Login failed: ' + e.message;
    }
  });
  $('logout').addEventListener('click', () => loggedOut(''));
  $('invoke-form').addEventListener('submit', invoke);
  for (const b of document.querySelectorAll('.tab')) b.addEventListener('click', () => show(b.dataset.tab));
  if (auth()) loggedIn(); else loggedOut('');
});
