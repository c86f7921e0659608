// The hookwall admin page: plain JS, no framework, no build step. Everything it shows
// comes from the admin API on this origin; data goes into the DOM as text only
// (textContent and attributes, never HTML), so a stored header or body cannot run here.
'use strict';

/** How often the overview (and the open view) is refreshed. */
const POLL_MS = 2000;
/** Polls kept for sparklines and rates: five minutes at POLL_MS. */
const KEEP = 150;
/** The window live rates and latency quantiles are computed over. */
const RATE_WINDOW_MS = 60000;
/** Where this tab keeps the admin token (sessionStorage: gone with the tab, never a cookie). */
const TOKEN_KEY = 'hookwall.admin-token';

/** What each signature-failure diagnosis means for the person fixing it. */
const HINTS = {
  body_reserialized_json: 'Something between the provider and hookwall parsed the JSON body and wrote it out again (key order or spacing changed). Forward the raw bytes.',
  trailing_newline_added: 'A newline was added at the end of the body after it was signed. Look at the proxy or framework in front of hookwall.',
  trailing_newline_removed: 'A newline at the end of the body was removed after it was signed.',
  crlf_to_lf: 'Line ends were changed from CRLF to LF on the way.',
  secret_encoding: 'The secret is configured in the wrong form: base64-decoded vs raw, or with vs without its whsec_ prefix.',
  other_route_secret: "Another route's secret matches: the provider is sending to the wrong path.",
  public_url_mismatch: 'The provider signed a different URL than public_url (scheme, host, port or a trailing slash).',
  timestamp_unit: 'The timestamp is in milliseconds where seconds are expected, or the reverse.',
  unknown: 'None of the known mistakes explains it: most likely a wrong or rotated secret, or a forgery.',
};

const REASONS = ['unknown_route', 'method_not_allowed', 'overloaded', 'ip_not_allowed', 'rate_limited',
  'body_too_large', 'read_timeout', 'missing_signature', 'invalid_signature', 'timestamp_out_of_window',
  'in_flight', 'missing_dedup_key', 'dedup_unavailable', 'upstream_unreachable', 'upstream_error',
  'upstream_timeout', 'bad_request', 'headers_too_large', 'key_unavailable', 'handshake_refused',
  'topic_not_allowed', 'confirmation_failed', 'queue_unavailable', 'queue_full'];

const FILTER_KEYS = ['route', 'outcome', 'reason', 'dedup_id', 'since', 'until'];

const $ = (sel) => document.querySelector(sel);

// ---------------------------------------------------------------- DOM helpers

/** An element with attributes (`text` sets its text, `on*` functions become listeners). */
function el(tag, attrs, ...children) {
  const node = tag === 'svg' || attrs?.svg
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false || key === 'svg') continue;
    if (key === 'text') node.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces a container's children, keeping keyboard focus on the element with the same
 * `data-key` if there is one after the change (tables are redrawn on every poll). */
function replaceKeepingFocus(container, ...children) {
  const focused = document.activeElement;
  const key = container.contains(focused) ? focused.getAttribute('data-key') : null;
  container.replaceChildren(...children);
  if (key) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

function flash(text, kind = 'ok') {
  const box = $('#flash');
  box.textContent = text;
  box.className = `flash ${kind}`;
  box.hidden = false;
}

function clearFlash() {
  $('#flash').hidden = true;
}

/** `2027-01-15 08:00:00` (UTC) from RFC 3339. */
function fmtTime(iso) {
  if (!iso) return '—';
  return iso.replace('T', ' ').replace(/\.\d+/, '').replace('Z', '');
}

function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} m`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function fmtMs(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '—';
  const ms = seconds * 1000;
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

function fmtCount(n) {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function badge(outcome) {
  return el('span', { class: `badge ${outcome}`, text: outcome });
}

// ---------------------------------------------------------------- the admin API

let token = sessionStorage.getItem(TOKEN_KEY) || '';

class ApiError extends Error {
  constructor(status, body, what) {
    const detail = body && (body.detail || (body.details || []).join('; '));
    super(`${what}: ${status}${body?.error ? ` ${body.error}` : ''}${detail ? ` — ${detail}` : ''}`);
    this.status = status;
    this.body = body || {};
  }
}

/** One call to the admin API with the token; JSON answers parsed, text otherwise. */
async function api(method, path, body, tokenOverride) {
  const headers = {};
  const bearer = tokenOverride ?? token;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  });
  const type = resp.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await resp.json().catch(() => null) : await resp.text();
  if (resp.status === 401 && tokenOverride === undefined) {
    signedOut('The admin listener no longer accepts this token. Enter it again.');
  }
  if (!resp.ok && !(path === '/readyz' && resp.status === 503)) {
    throw new ApiError(resp.status, typeof data === 'object' ? data : null, `${method} ${path.split('?')[0]}`);
  }
  return data;
}

// ---------------------------------------------------------------- metrics

/** Prometheus text → [{name, labels, value}]. */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function emptyRoute() {
  return { outcomes: {}, reasons: {}, classes: {}, buckets: {}, queue: 0, queueOldest: 0 };
}

/** One poll's numbers per route, plus the process-wide ones. */
function summarize(samples) {
  const routes = {};
  const global = { inFlight: 0, reloads: {}, lastLoad: null };
  const route = (name) => (routes[name] ||= emptyRoute());
  const add = (map, key, v) => { map[key] = (map[key] || 0) + v; };
  for (const { name, labels, value } of samples) {
    switch (name) {
      case 'hookwall_requests_total': add(route(labels.route).outcomes, labels.outcome, value); break;
      case 'hookwall_rejections_total': add(route(labels.route).reasons, labels.reason, value); break;
      case 'hookwall_upstream_responses_total': add(route(labels.route).classes, labels.class, value); break;
      case 'hookwall_request_duration_seconds_bucket': route(labels.route).buckets[labels.le] = value; break;
      case 'hookwall_queue_depth': route(labels.route).queue += value; break;
      case 'hookwall_queue_oldest_seconds':
        route(labels.route).queueOldest = Math.max(route(labels.route).queueOldest, value); break;
      case 'hookwall_in_flight': global.inFlight = value; break;
      case 'hookwall_config_reloads_total': global.reloads[labels.result] = value; break;
      case 'hookwall_config_last_reload_success_timestamp_seconds': global.lastLoad = value; break;
      default:
    }
  }
  return { routes, global };
}

/** The q-quantile of a cumulative histogram ({le: count}), interpolated in its bucket. */
function quantile(q, buckets) {
  const bounds = Object.keys(buckets)
    .map((le) => ({ le: le === '+Inf' ? Infinity : Number(le), n: buckets[le] }))
    .sort((a, b) => a.le - b.le);
  const total = bounds.length ? bounds[bounds.length - 1].n : 0;
  if (!total) return null;
  const rank = q * total;
  let prev = { le: 0, n: 0 };
  for (const b of bounds) {
    if (b.n >= rank) {
      if (b.le === Infinity) return prev.le;
      const inBucket = b.n - prev.n;
      return prev.le + (b.le - prev.le) * (inBucket ? (rank - prev.n) / inBucket : 1);
    }
    prev = b;
  }
  return prev.le;
}

function diffBuckets(now, then) {
  const out = {};
  for (const [le, n] of Object.entries(now)) out[le] = n - ((then && then[le]) || 0);
  return out;
}

// ---------------------------------------------------------------- overview

const history = []; // [{t, routes, global}]
let readiness = null;
let routeTable = null; // GET /routes, refreshed now and then
let routeTableAt = 0;
const cards = new Map();

async function refreshRouteTable(force) {
  if (!force && routeTable && Date.now() - routeTableAt < 30000) return routeTable;
  routeTable = await api('GET', '/routes');
  routeTableAt = Date.now();
  fillRouteSelect();
  return routeTable;
}

async function poll() {
  const [text, ready] = await Promise.all([api('GET', '/metrics'), api('GET', '/readyz')]);
  history.push({ t: Date.now(), ...summarize(parseMetrics(text)) });
  if (history.length > KEEP) history.shift();
  readiness = ready;
  await refreshRouteTable(false);
  renderHealth();
  if (current.view === 'overview') renderOverview();
}

/** The sample closest to `ms` before the newest (or the oldest kept). */
function sampleBefore(ms) {
  const newest = history[history.length - 1];
  let pick = history[0];
  for (const s of history) if (newest.t - s.t >= ms) pick = s;
  return pick;
}

function renderHealth() {
  const box = $('#health');
  const parts = [];
  if (readiness) {
    parts.push(el('span', { class: readiness.dedup === 'ok' ? 'dot ok' : 'dot bad', text: `dedup ${readiness.dedup}` }));
    if (readiness.storage) {
      parts.push(el('span', { class: readiness.storage.status === 'ok' ? 'dot ok' : 'dot bad', text: `storage ${readiness.storage.status}` }));
    }
  }
  box.replaceChildren(...parts);
}

function renderOverview() {
  const newest = history[history.length - 1];
  if (!newest) return;
  const strip = $('#readiness');
  const item = (label, value, kind, title) => [el('dt', { text: label }), el('dd', { class: kind, text: value, title })];
  const ready = readiness || {};
  strip.replaceChildren(
    ...item('Ready', ready.status || '—', ready.status === 'ready' ? 'ok' : 'bad', ready.reason),
    ...item('Dedup store', ready.dedup || '—', ready.dedup === 'ok' ? 'ok' : 'bad', ready.reason),
    ...item('Storage', ready.storage ? `${ready.storage.backend} ${ready.storage.status}` : 'none',
      ready.storage?.status === 'ok' ? 'ok' : 'bad', ready.storage?.reason),
    ...item('In flight', fmtCount(newest.global.inFlight)),
  );

  const names = (routeTable?.routes || []).map((r) => r.name);
  // Unmatched paths get a card once something was sent to one.
  for (const [name, r] of Object.entries(newest.routes)) {
    const seen = Object.values(r.outcomes).some((n) => n > 0);
    if (!names.includes(name) && (name !== '_unknown' || seen)) names.push(name);
  }
  const container = $('#route-cards');
  for (const name of names) {
    if (!cards.has(name)) {
      const card = buildCard(name);
      cards.set(name, card);
      container.append(card.root);
    }
    updateCard(cards.get(name), name);
  }
}

function buildCard(name) {
  const info = routeTable?.routes.find((r) => r.name === name);
  const counter = (key, label) => {
    const value = el('dd', { 'data-counter': key, text: '0' });
    const rate = el('span', { class: 'rate', 'data-rate': key });
    return { key, nodes: [el('dt', { text: label }), value, el('dd', { class: 'rate-cell' }, rate)], value, rate };
  };
  const buffered = info && info.delivery !== 'sync';
  const counters = [counter('forwarded', 'Forwarded'), buffered ? counter('queued', 'Queued') : null,
    counter('duplicate', 'Duplicate'), counter('rejected', 'Rejected')].filter(Boolean);
  const spark = el('svg', { class: 'spark', viewBox: '0 0 240 44', preserveAspectRatio: 'none', role: 'img', 'aria-label': `Deliveries per poll on ${name}, last minutes` });
  const reasons = el('ul', { class: 'reasons', 'data-reasons': '' });
  const latency = el('dd', { 'data-latency': '' });
  const classes = el('dd', { 'data-classes': '' });
  const queue = el('dd', { 'data-queue': '' });
  const title = name === '_unknown' ? 'unmatched paths' : name;
  const root = el('article', { class: 'card', 'data-route': name, 'aria-labelledby': `card-${name}` },
    el('header', {},
      el('h2', { id: `card-${name}`, text: title }),
      info ? el('span', { class: 'muted mono', text: info.path }) : null,
      info ? el('span', { class: 'chip', text: typeof info.delivery === 'string' ? info.delivery : info.delivery.mode }) : null),
    el('dl', { class: `counters n${counters.length}` }, counters.map((c) => c.nodes)),
    spark,
    el('div', { class: 'legend' },
      el('span', { class: 'key forwarded', text: 'forwarded' }),
      el('span', { class: 'key duplicate', text: 'duplicate' }),
      el('span', { class: 'key rejected', text: 'rejected' })),
    el('dl', { class: 'facts' },
      el('dt', { text: 'Latency p50 / p99' }), latency,
      el('dt', { text: 'Upstream answers' }), classes,
      info && info.delivery !== 'sync' ? [el('dt', { text: 'Queue' }), queue] : null),
    el('h3', { text: 'Rejected by reason' }),
    reasons,
    name === '_unknown' ? null : el('a', { href: `#deliveries?route=${encodeURIComponent(name)}`, class: 'more', text: `Deliveries of ${name} →` }));
  return { root, counters, spark, reasons, latency, classes, queue };
}

function updateCard(card, name) {
  const newest = history[history.length - 1];
  const old = sampleBefore(RATE_WINDOW_MS);
  const now = newest.routes[name] || emptyRoute();
  const then = old.routes[name] || emptyRoute();
  const minutes = Math.max((newest.t - old.t) / 60000, 1e-9);
  for (const c of card.counters) {
    const total = now.outcomes[c.key] || 0;
    c.value.textContent = fmtCount(total);
    const rate = old === newest ? null : (total - (then.outcomes[c.key] || 0)) / minutes;
    c.rate.textContent = rate === null ? '' : `${rate.toFixed(1)}/min`;
  }
  drawSpark(card.spark, name);

  const reasons = Object.entries(now.reasons).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  replaceKeepingFocus(card.reasons, ...(reasons.length
    ? reasons.map(([reason, n]) => el('li', { 'data-reason': reason },
      el('span', { class: 'mono', text: reason }), ' ', el('strong', { text: fmtCount(n) })))
    : [el('li', { class: 'muted', text: 'none' })]));

  // Quantiles over the window when it saw requests, else since start.
  let buckets = diffBuckets(now.buckets, then.buckets);
  let note = 'last minute';
  if (!quantile(0.5, buckets) && old !== newest) { buckets = now.buckets; note = 'since start'; }
  if (old === newest) note = 'since start';
  const p50 = quantile(0.5, buckets);
  card.latency.textContent = p50 === null ? '—' : `${fmtMs(p50)} / ${fmtMs(quantile(0.99, buckets))} (${note})`;
  const classes = ['2xx', '3xx', '4xx', '5xx'].map((k) => `${k} ${fmtCount(now.classes[k] || 0)}`);
  card.classes.textContent = classes.join(' · ');
  card.queue.textContent = `${fmtCount(now.queue)} queued, oldest ${fmtAge(now.queueOldest)}`;
}

/** Three polylines (forwarded, duplicate, rejected): what each poll added. */
function drawSpark(svg, name) {
  const series = { forwarded: [], duplicate: [], rejected: [] };
  for (let i = 1; i < history.length; i++) {
    const a = history[i - 1].routes[name] || emptyRoute();
    const b = history[i].routes[name] || emptyRoute();
    for (const key of Object.keys(series)) {
      let d = (b.outcomes[key] || 0) - (a.outcomes[key] || 0);
      if (key === 'forwarded') d += (b.outcomes.queued || 0) - (a.outcomes.queued || 0);
      series[key].push(Math.max(d, 0));
    }
  }
  const max = Math.max(1, ...Object.values(series).flat());
  const width = 240;
  const height = 44;
  const step = width / Math.max(KEEP - 1, 1);
  const lines = Object.entries(series).map(([key, values]) => {
    const offset = width - step * values.length;
    const points = values.map((v, i) => `${(offset + step * (i + 1)).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`);
    return el('polyline', { svg: true, class: key, points: points.join(' ') });
  });
  svg.replaceChildren(el('line', { svg: true, class: 'base', x1: 0, y1: height - 1, x2: width, y2: height - 1 }), ...lines);
}

// ---------------------------------------------------------------- deliveries

let listedQuery = null; // the filter the table shows
let nextCursor = null;

function fillRouteSelect() {
  for (const select of [$('#filter-route')]) {
    const chosen = select.value;
    const names = (routeTable?.routes || []).map((r) => r.name);
    select.replaceChildren(el('option', { value: '', text: 'any' }), ...names.map((n) => el('option', { value: n, text: n })));
    if (names.includes(chosen)) select.value = chosen;
  }
}

function filterFromForm() {
  const form = new FormData($('#filter'));
  const params = new URLSearchParams();
  for (const key of FILTER_KEYS) {
    const v = String(form.get(key) || '').trim();
    if (v) params.set(key, v);
  }
  return params;
}

function formFromFilter(params) {
  const form = $('#filter');
  for (const key of FILTER_KEYS) {
    const field = form.elements[key];
    const v = params.get(key) || '';
    if (field.tagName === 'SELECT' && v && ![...field.options].some((o) => o.value === v)) {
      field.append(el('option', { value: v, text: v }));
    }
    field.value = v;
  }
}

function detailHref(filter, id) {
  const p = new URLSearchParams(filter);
  p.set('id', id);
  return `#deliveries?${p}`;
}

async function showDeliveries(params) {
  const filter = new URLSearchParams();
  for (const key of FILTER_KEYS) if (params.get(key)) filter.set(key, params.get(key));
  formFromFilter(filter);
  if (listedQuery !== filter.toString()) {
    listedQuery = filter.toString();
    $('#deliveries-table tbody').replaceChildren();
    nextCursor = null;
    await loadDeliveries(filter, false);
  }
  const id = params.get('id');
  if (id) await showDetail(id, filter);
  else $('#detail').hidden = true;
  markSelected(id);
}

async function loadDeliveries(filter, more) {
  const q = new URLSearchParams(filter);
  q.set('limit', '50');
  if (more && nextCursor) q.set('before', nextCursor);
  const data = await api('GET', `/deliveries?${q}`);
  nextCursor = data.next;
  const body = $('#deliveries-table tbody');
  for (const d of data.deliveries) {
    const href = detailHref(filter, d.id);
    const row = el('tr', { 'data-id': d.id, 'data-outcome': d.outcome, onclick: (e) => { if (e.target.tagName !== 'A') location.hash = href; } },
      el('td', {}, el('a', { href, text: fmtTime(d.received_at), title: d.received_at, 'data-key': d.id })),
      el('td', { text: d.route }),
      el('td', {}, badge(d.outcome), d.attempt ? el('span', { class: 'muted', text: ` #${d.attempt}` }) : null),
      el('td', { class: 'mono', 'data-reason': d.reason || '', text: d.reason || '' }),
      el('td', { text: d.status ?? '' }),
      el('td', { text: d.upstream_status ? `${d.upstream_status}${d.upstream_ms !== null ? ` · ${d.upstream_ms} ms` : ''}` : '' }),
      el('td', { class: 'mono clip', text: d.dedup_id || '', title: d.dedup_id || null }));
    body.append(row);
  }
  $('#deliveries-empty').hidden = body.children.length > 0;
  $('#deliveries-more').hidden = !nextCursor;
}

function markSelected(id) {
  for (const row of document.querySelectorAll('#deliveries-table tbody tr')) {
    row.classList.toggle('selected', row.getAttribute('data-id') === id);
    if (row.getAttribute('data-id') === id) row.querySelector('a').setAttribute('aria-current', 'true');
    else row.querySelector('a').removeAttribute('aria-current');
  }
}

function field(label, value, attrs) {
  return [el('dt', { text: label }), el('dd', attrs || {}, value ?? '—')];
}

/** The body as a person reads it: indented JSON when it is JSON, the text, or base64. */
function bodyView(d) {
  if (d.body_text === null && d.body_base64 === null) {
    return el('p', { class: 'muted', text: 'The body was not kept: the journal keeps the bodies its bodies setting names (rejected ones only with bodies = "all").' });
  }
  let text = d.body_text;
  let kind = 'text';
  if (text !== null) {
    try { text = JSON.stringify(JSON.parse(text), null, 2); kind = 'JSON'; } catch { /* not JSON */ }
  } else {
    text = d.body_base64;
    kind = 'binary, base64';
  }
  return el('div', {},
    el('p', { class: 'muted', text: `${kind} · ${d.body_size} bytes${d.truncated ? ' · truncated when stored' : ''}${d.redacted ? ' · redacted fields blanked' : ''}` }),
    el('pre', { class: 'body', 'data-body': '', tabindex: 0, text }));
}

async function showDetail(id, filter) {
  const pane = $('#detail');
  pane.hidden = false;
  let d;
  try {
    d = await api('GET', `/deliveries/${encodeURIComponent(id)}`);
  } catch (e) {
    pane.replaceChildren(el('p', { class: 'error', text: e.message }));
    return;
  }
  const result = el('p', { class: 'result', role: 'status', 'aria-live': 'polite', 'data-result': '' });
  const replay = async (reverify) => {
    result.className = 'result';
    result.textContent = reverify ? 'Re-verifying and replaying…' : 'Replaying…';
    try {
      const r = await api('POST', `/deliveries/${encodeURIComponent(id)}/replay${reverify ? '?reverify=true' : ''}`);
      if (r.upstream_status) {
        result.className = `result ${r.upstream_status < 300 ? 'ok' : 'bad'}`;
        result.textContent = `Replayed: the upstream answered ${r.upstream_status} (replay ${r.replay_id}).`;
      } else {
        result.className = 'result bad';
        result.textContent = `Replay sent, no answer: ${r.error || 'unknown error'} (replay ${r.replay_id}).`;
      }
      await renderReplays(id, replays);
    } catch (e) {
      result.className = 'result bad';
      if (e.body.error === 'not_verified') {
        result.textContent = 'Not replayed: this delivery failed verification. Use “Re-verify and replay” once the route checks it with the right secret.';
      } else if (e.body.error === 'reverify_failed') {
        result.textContent = `Re-verification failed (${e.body.reason || 'refused'}): the route's current checks still refuse it.`;
      } else {
        result.textContent = e.message;
      }
    }
  };
  const replays = el('ul', { class: 'history', 'data-replays': '' });
  const attempts = el('ul', { class: 'history', 'data-attempts': '' });
  const headers = el('table', { class: 'grid compact' },
    el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Header' }), el('th', { scope: 'col', text: 'Value' }))),
    el('tbody', {}, (d.headers || []).map(([n, v]) => el('tr', {},
      el('td', { class: 'mono', text: n }),
      el('td', { class: v === '[redacted]' ? 'mono redacted' : 'mono', text: v })))));
  const hint = d.diagnosis
    ? el('div', { class: 'hint', 'data-diagnosis': d.diagnosis },
      el('strong', { text: 'Diagnosis: ' }), el('span', { class: 'mono', text: d.diagnosis }),
      el('p', { text: HINTS[d.diagnosis] || '' }))
    : null;
  pane.replaceChildren(
    el('div', { class: 'detail-head' },
      el('h2', { text: `${d.method} ${d.path}` }),
      el('a', { href: `#deliveries?${filter}`, class: 'quiet', 'aria-label': 'Close the detail', text: '✕' })),
    el('p', {}, badge(d.outcome), ' ', d.reason ? el('span', { class: 'mono', 'data-detail-reason': '', text: d.reason }) : null),
    hint,
    el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'primary', 'data-action': 'replay', onclick: () => replay(false) }, 'Replay'),
      el('button', { type: 'button', 'data-action': 'reverify', onclick: () => replay(true) }, 'Re-verify and replay')),
    result,
    el('dl', { class: 'fields' },
      field('Entry id', d.id, { class: 'mono' }),
      field('Request id', d.request_id, { class: 'mono' }),
      field('Received', fmtTime(d.received_at)),
      field('Route', d.route),
      field('Client IP', d.client_ip, { class: 'mono' }),
      field('Answered', d.status),
      field('Upstream', d.upstream_status ? `${d.upstream_status} in ${d.upstream_ms} ms` : null),
      field('Dedup id', d.dedup_id, { class: 'mono' }),
      field('Key', d.key_id),
      field('Verified', d.verified === null || d.verified === undefined ? null : String(d.verified)),
      d.target ? field('Target / attempt', `${d.target} #${d.attempt ?? ''}`) : null,
      field('SHA-256', d.body_sha256, { class: 'mono clip' })),
    el('h3', { text: 'Body' }), bodyView(d),
    el('h3', { text: 'Headers' }), el('p', { class: 'muted', text: 'Credentials were stored as [redacted]; signature headers are kept for re-verification.' }), el('div', { class: 'table-wrap' }, headers),
    el('h3', { text: 'Attempts with this dedup id' }), attempts,
    el('h3', { text: 'Replays' }), replays);
  renderReplayList(replays, d.replays || []);
  if (d.dedup_id) {
    const q = new URLSearchParams({ dedup_id: d.dedup_id, route: d.route, limit: '20' });
    api('GET', `/deliveries?${q}`).then((list) => attempts.replaceChildren(...list.deliveries.map((a) => el('li', {},
      el('a', { href: detailHref(filter, a.id), 'aria-current': a.id === d.id ? 'true' : null, text: fmtTime(a.received_at) }), ' ',
      badge(a.outcome), a.attempt ? ` attempt ${a.attempt}` : '', a.reason ? ` ${a.reason}` : '',
      a.upstream_status ? ` · upstream ${a.upstream_status}` : '')))).catch((e) => attempts.replaceChildren(el('li', { class: 'error', text: e.message })));
  } else {
    attempts.replaceChildren(el('li', { class: 'muted', text: 'No dedup id.' }));
  }
}

function renderReplayList(list, replays) {
  list.replaceChildren(...(replays.length
    ? replays.map((r) => el('li', {}, `${fmtTime(r.at)} · ${r.reverified ? 're-verified · ' : ''}`,
      r.upstream_status ? `upstream ${r.upstream_status}` : `failed: ${r.error || 'no answer'}`))
    : [el('li', { class: 'muted', text: 'Never replayed.' })]));
}

async function renderReplays(id, list) {
  const d = await api('GET', `/deliveries/${encodeURIComponent(id)}`);
  renderReplayList(list, d.replays || []);
}

async function bulkReplay() {
  const filter = filterFromForm();
  const spec = Object.fromEntries(filter);
  const dry = await api('POST', '/replays', { ...spec, dry_run: true });
  if (!dry.matched) {
    flash('No delivery matches this filter: nothing to replay.', 'bad');
    return;
  }
  const described = [...filter].map(([k, v]) => `${k} = ${v}`).join(', ') || 'no filter: the whole journal';
  const answer = await confirmDialog({
    title: `Replay ${dry.matched} deliveries?`,
    text: `${dry.matched} journal ${dry.matched === 1 ? 'entry matches' : 'entries match'} (${described}). Each is sent again to its route's current upstream, 10 per second.`,
    option: 'Re-verify each first (needed for deliveries that failed verification)',
    optionChecked: spec.outcome === 'rejected',
    ok: `Replay ${dry.matched}`,
  });
  if (!answer) return;
  const job = await api('POST', '/replays', { ...spec, reverify: answer.option, rate: 10 });
  const line = $('#bulk-progress');
  line.hidden = false;
  for (;;) {
    const p = await api('GET', `/replays/${encodeURIComponent(job.job)}`);
    line.textContent = `Bulk replay ${p.job}: ${p.sent} of ${p.matched} sent, ${p.succeeded} succeeded, ${p.failed} failed${p.done ? ' — done' : '…'}`;
    if (p.done) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// ---------------------------------------------------------------- queue

async function showQueue() {
  const [queue, dead] = await Promise.all([api('GET', '/queue'), api('GET', '/dead-letters?limit=100')]);
  replaceKeepingFocus($('#queue-table tbody'), ...queue.routes.map((r) => el('tr', { 'data-route': r.route, 'data-target': r.target },
    el('td', { text: r.route }), el('td', { text: r.target }),
    el('td', { class: 'num', 'data-queued': '', text: r.queued }), el('td', { class: 'num', text: r.in_flight }),
    el('td', { class: 'num', text: r.dead_lettered }), el('td', { class: 'num', text: fmtAge(r.oldest_seconds) }))));
  $('#queue-empty').hidden = queue.routes.length > 0;
  deadCount = { n: dead.dead_letters.length, more: Boolean(dead.next) };
  replaceKeepingFocus($('#dead-table tbody'), ...dead.dead_letters.map((d) => el('tr', { 'data-id': d.id, 'data-delivery': d.delivery_id || '' },
    el('td', { text: fmtTime(d.dead_lettered_at), title: d.dead_lettered_at }),
    el('td', { text: d.route }), el('td', { text: d.target }),
    el('td', {}, d.delivery_id
      ? el('a', { class: 'mono', href: `#deliveries?${new URLSearchParams({ route: d.route, dedup_id: d.delivery_id })}`, text: d.delivery_id })
      : '—'),
    el('td', { class: 'num', text: d.attempts }),
    el('td', { text: d.last_status ?? '—' }),
    el('td', { class: 'clip', text: d.last_error || d.reason || '', title: d.last_error || null }),
    el('td', { class: 'row-actions' },
      el('button', { type: 'button', 'data-key': `retry-${d.id}`, 'data-action': 'retry', onclick: () => act(() => api('POST', `/dead-letters/${encodeURIComponent(d.id)}/retry`), 'Back in the queue, attempts reset.') }, 'Retry'),
      el('button', { type: 'button', class: 'danger', 'data-key': `discard-${d.id}`, 'data-action': 'discard', onclick: () => discard(d) }, 'Discard')))));
  $('#dead-empty').hidden = dead.dead_letters.length > 0;
  $('#dead-retry-all').disabled = dead.dead_letters.length === 0;
}

let deadCount = { n: 0, more: false };

async function act(call, done) {
  try {
    await call();
    flash(done);
  } catch (e) {
    flash(e.message, 'bad');
  }
  await refreshView();
}

async function discard(d) {
  const yes = await confirmDialog({
    title: 'Discard this dead letter?',
    text: `Delivery ${d.delivery_id || d.id} to ${d.route}/${d.target} is dropped for good (the journal records who discarded it).`,
    ok: 'Discard',
  });
  if (yes) await act(() => api('DELETE', `/dead-letters/${encodeURIComponent(d.id)}`), 'Discarded.');
}

async function retryAll() {
  const n = `${deadCount.n}${deadCount.more ? '+' : ''}`;
  const yes = await confirmDialog({
    title: `Retry ${n} dead letters?`,
    text: `Every dead letter (${n}) goes back to the queue with its attempts reset.`,
    ok: `Retry ${n}`,
  });
  if (yes) {
    await act(async () => {
      const r = await api('POST', '/dead-letters/retry', {});
      deadCount.done = r.requeued;
    }, 'Dead letters put back in the queue.');
  }
}

// ---------------------------------------------------------------- reconcile

async function showReconcile() {
  const data = await api('GET', '/reconcile');
  replaceKeepingFocus($('#reconcile-table tbody'), ...data.routes.map((r) => el('tr', { 'data-route': r.route },
    el('td', { text: r.route }), el('td', { text: r.source }), el('td', { text: fmtAge(r.every_seconds) }),
    el('td', { text: r.running ? 'running now' : fmtTime(r.last_run), title: r.last_run }),
    el('td', { 'data-result': r.result || '' }, r.result ? el('span', { class: `badge ${r.result === 'ok' ? 'forwarded' : 'rejected'}`, text: r.result }) : '—',
      r.error ? el('span', { class: 'error', text: ` ${r.error}` }) : null),
    el('td', { class: 'num', text: fmtAge(r.lag_seconds) }),
    el('td', { class: 'num', 'data-recovered': '', text: r.recovered }),
    el('td', { class: 'mono clip', text: r.cursor || '—', title: r.cursor }),
    el('td', { class: 'row-actions' }, el('button', { type: 'button', 'data-key': `run-${r.route}`, 'data-action': 'run', onclick: (e) => runNow(r.route, e.target) }, 'Run now')))));
  $('#reconcile-empty').hidden = data.routes.length > 0;
}

async function runNow(route, button) {
  button.disabled = true;
  flash(`Running reconcile for ${route}…`);
  await act(async () => {
    const s = await api('POST', `/reconcile/${route.split('/').map(encodeURIComponent).join('/')}/run`);
    if (s.status === 'running') return;
    if (s.result !== 'ok') throw new Error(`Reconcile ${route}: ${s.error || s.result}`);
    runSummary = `Reconcile ${route}: ${s.listed} listed, ${s.recovered} recovered.`;
  }, '');
  if (runSummary) flash(runSummary);
  runSummary = '';
}

let runSummary = '';

// ---------------------------------------------------------------- config

async function showConfig() {
  const data = await refreshRouteTable(true);
  const newest = history[history.length - 1];
  const last = data.last_reload;
  const strip = $('#reload-state');
  const item = (label, value, kind) => [el('dt', { text: label }), el('dd', { class: kind, text: value })];
  strip.replaceChildren(
    ...item('Last reload', last ? `${last.result} at ${fmtTime(last.at)}` : 'none since start', last ? (last.result === 'ok' ? 'ok' : 'bad') : null),
    ...item('Config loaded', newest?.global.lastLoad ? fmtTime(new Date(newest.global.lastLoad * 1000).toISOString()) : '—'),
    ...item('Reloads', newest ? `${fmtCount(newest.global.reloads.ok || 0)} ok, ${fmtCount(newest.global.reloads.error || 0)} refused` : '—'),
  );
  const details = $('#reload-details');
  details.hidden = !(last && last.details.length);
  details.replaceChildren(...(last?.details || []).map((line) => el('li', { class: 'mono', text: line })));
  $('#routes-table tbody').replaceChildren(...data.routes.map((r) => el('tr', { 'data-route': r.name },
    el('td', {}, el('details', {}, el('summary', { text: r.name }), el('pre', { class: 'body', text: JSON.stringify(r, null, 2) }))),
    el('td', { class: 'mono', text: `${r.methods.join(',')} ${r.path}` }),
    el('td', { text: r.provider || 'custom' }),
    el('td', { class: 'mono clip', text: r.upstream, title: r.upstream }),
    el('td', { text: r.checks.join(' → ') }),
    el('td', { text: typeof r.delivery === 'string' ? r.delivery : `${r.delivery.mode} → ${r.delivery.targets.map((t) => t.name).join(', ')}` }),
    el('td', { class: 'mono', text: r.secrets.map((s) => `${s.id}: ${s.value}`).join(', ') || '—' }))));
}

async function reload() {
  const button = $('#reload');
  button.disabled = true;
  try {
    await api('POST', '/reload');
    flash('Reloaded: the new config is live.');
  } catch (e) {
    flash(e.body.error === 'invalid_config' || e.body.error === 'restart_required'
      ? `Reload refused (${e.body.error}); the previous config keeps serving.` : e.message, 'bad');
  } finally {
    button.disabled = false;
  }
  await poll().catch(() => {});
  await showConfig();
}

// ---------------------------------------------------------------- dialog

/** A modal confirmation; resolves to false, or {option} when confirmed. */
function confirmDialog({ title, text, option, optionChecked, ok }) {
  const dialog = $('#confirm');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-option').hidden = !option;
  $('#confirm-option span').textContent = option || '';
  $('#confirm-check').checked = Boolean(optionChecked);
  $('#confirm-ok').textContent = ok || 'OK';
  return new Promise((resolve) => {
    const finish = (value) => {
      dialog.removeEventListener('close', onClose);
      $('#confirm-ok').onclick = null;
      $('#confirm-cancel').onclick = null;
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onClose = () => finish(false);
    dialog.addEventListener('close', onClose);
    $('#confirm-ok').onclick = () => finish({ option: $('#confirm-check').checked });
    $('#confirm-cancel').onclick = () => finish(false);
    dialog.showModal();
    $('#confirm-cancel').focus();
  });
}

// ---------------------------------------------------------------- navigation and sign-in

const VIEWS = ['overview', 'deliveries', 'queue', 'reconcile', 'config'];
let current = { view: null };
let signedIn = false;

function parseHash() {
  const raw = location.hash.replace(/^#/, '');
  const [view, query] = raw.split(/\?(.*)/s);
  return { view: VIEWS.includes(view) ? view : 'overview', params: new URLSearchParams(query || '') };
}

function showSection(name) {
  for (const section of document.querySelectorAll('.view')) section.hidden = section.id !== `view-${name}`;
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

async function route(moveFocus) {
  if (!signedIn) return;
  const { view, params } = parseHash();
  const changed = current.view !== view;
  if (changed) clearFlash();
  current = { view, params };
  showSection(view);
  document.title = `${view[0].toUpperCase()}${view.slice(1)} · hookwall admin`;
  try {
    await refreshView();
  } catch (e) {
    flash(e.message, 'bad');
  }
  if (moveFocus && changed) $(`#view-${view} h1`)?.focus({ preventScroll: true });
  if (view === 'deliveries' && params.get('id') && moveFocus) $('#detail').focus({ preventScroll: true });
}

async function refreshView() {
  switch (current.view) {
    case 'overview': renderOverview(); break;
    case 'deliveries': await showDeliveries(current.params); break;
    case 'queue': await showQueue(); break;
    case 'reconcile': await showReconcile(); break;
    case 'config': await showConfig(); break;
    default:
  }
}

function signedOut(message) {
  signedIn = false;
  token = '';
  sessionStorage.removeItem(TOKEN_KEY);
  showSection('login');
  $('#nav').hidden = true;
  $('#forget').hidden = true;
  const error = $('#login-error');
  error.textContent = message || '';
  error.hidden = !message;
  $('#login-token').focus();
}

async function signIn(candidate) {
  try {
    await api('GET', '/routes', undefined, candidate);
  } catch (e) {
    if (e.status === 401) {
      return candidate
        ? 'Wrong token: the admin listener refused it (401). Check [admin] token in the config.'
        : '';
    }
    return `The admin listener did not answer as expected: ${e.message}`;
  }
  token = candidate;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  signedIn = true;
  $('#nav').hidden = false;
  $('#forget').hidden = !token;
  $('#login-error').hidden = true;
  clearFlash();
  await poll().catch((e) => flash(e.message, 'bad'));
  await route(false);
  return null;
}

async function start() {
  $('#login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('#login-token');
    const refused = await signIn(input.value.trim());
    if (refused !== null) {
      signedOut(refused);
      input.select();
    } else {
      input.value = '';
    }
  });
  $('#forget').addEventListener('click', () => signedOut('Token forgotten in this tab.'));
  // Searching again with the same filter reloads the list (the hash does not change then).
  const goTo = (hash) => {
    listedQuery = null;
    if (location.hash === hash) route(false);
    else location.hash = hash;
  };
  $('#filter').addEventListener('submit', (e) => {
    e.preventDefault();
    const filter = filterFromForm().toString();
    goTo(filter ? `#deliveries?${filter}` : '#deliveries');
  });
  $('#filter').addEventListener('reset', () => { setTimeout(() => goTo('#deliveries'), 0); });
  $('#deliveries-more').addEventListener('click', () => loadDeliveries(new URLSearchParams(listedQuery), true).catch((e) => flash(e.message, 'bad')));
  $('#bulk-replay').addEventListener('click', () => bulkReplay().catch((e) => flash(e.message, 'bad')));
  $('#dead-retry-all').addEventListener('click', () => retryAll());
  $('#reload').addEventListener('click', () => reload());
  $('#reasons').replaceChildren(...REASONS.map((r) => el('option', { value: r })));
  window.addEventListener('hashchange', () => route(true));

  // With no token configured (or a token kept in this tab) this opens at once.
  const refused = await signIn(token);
  if (refused !== null) signedOut(refused);

  setInterval(async () => {
    if (!signedIn || document.hidden) return;
    try {
      await poll();
      // Lists a person acts on are redrawn only where they change by themselves.
      if (current.view === 'queue') await showQueue();
      if (current.view === 'reconcile') await showReconcile();
    } catch (e) {
      if (signedIn) flash(e.message, 'bad');
    }
  }, POLL_MS);
}

document.addEventListener('DOMContentLoaded', start);
