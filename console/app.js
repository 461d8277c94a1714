// meshlimit console: plain browser JavaScript, no build step, no third-party code, no network
// access beyond this admin port. Every value from the server is written with textContent (never
// innerHTML), so descriptor values cannot inject markup.
'use strict';

const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  return e;
}

const tokenInput = $('token');
tokenInput.value = sessionStorage.getItem('meshlimit-token') || '';
tokenInput.addEventListener('change', () => {
  sessionStorage.setItem('meshlimit-token', tokenInput.value);
  refresh();
});

/** fetch() with the admin token (when typed in) and JSON both ways; resolves {status, body}. */
async function api(method, url, body) {
  const headers = {};
  if (tokenInput.value) headers.authorization = `Bearer ${tokenInput.value}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

const errorText = (r) => (r.body && r.body.code ? `${r.status} ${r.body.code}: ${r.body.message}` : `HTTP ${r.status}`);
const descriptorText = (entries) => entries.map((e) => `${e.key}=${e.value}`).join(',');
const limitText = (l) => (l ? `${l.requestsPerUnit}/${l.unitMultiplier > 1 ? `${l.unitMultiplier} ` : ''}${l.unit} (${l.algorithm})` : '—');

/** "k=v,k2=v2" -> entries; values may hold '=' (split at the first). */
function parseDescriptor(text) {
  return text.split(',').map((p) => {
    const i = p.indexOf('=');
    return i < 0 ? { key: p.trim(), value: '' } : { key: p.slice(0, i).trim(), value: p.slice(i + 1) };
  });
}

function fillTable(table, rows) {
  const tbody = table.tBodies[0];
  tbody.replaceChildren(...rows);
}

// --- state and config tree ---------------------------------------------------------------

let traffic = { rules: [], top_limited: [] };

async function loadState() {
  const r = await api('GET', '/v1/console/state');
  if (r.status !== 200) {
    $('state-summary').textContent = errorText(r);
    return;
  }
  const s = r.body;
  const connected = s.stores_connected;
  $('state-summary').replaceChildren(
    el('span', { class: connected ? 'ok' : 'bad' }, `${s.backend} ${connected ? 'connected' : 'not connected'}`),
    ` · breaker ${s.breaker || 'n/a'} · config ${s.config.version.slice(0, 12)} · ${s.overrides.count} override(s)`,
  );
  const items = [
    ['Backend', s.backend],
    ['Stores', connected ? 'connected' : `not connected: ${s.why_not_connected || ''}`],
    ['Circuit breaker', s.breaker || 'none (memory backend)'],
    ['Config version', s.config.version],
    ['Loaded at', s.config.loaded_at],
    ['Domains', s.config.domains.join(', ') || '(none)'],
    ['Tenant overrides', `${s.overrides.count} (${s.overrides.store})`],
    ['Mutations', s.mutations_enabled ? 'enabled (admin token set)' : 'disabled: set ADMIN_TOKEN or ADMIN_TOKEN_FILE'],
  ];
  $('state-list').replaceChildren(...items.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  renderTree(s.config.tree);
}

function ruleStats(domain, ruleKey) {
  return traffic.rules.find((r) => r.domain === domain && r.ruleKey === ruleKey);
}

function descriptorNode(domain, d) {
  const name = d.value === null ? d.key : `${d.key}=${d.value}`;
  const summary = el('summary', {}, el('code', {}, name));
  if (d.ruleKey) {
    const st = ruleStats(domain, d.ruleKey);
    for (const l of d.limits) summary.append(' ', el('span', { class: 'pill' }, limitText(l)));
    if (d.unlimited) summary.append(' ', el('span', { class: 'pill' }, 'unlimited'));
    if (d.shadowMode) summary.append(' ', el('span', { class: 'pill' }, 'shadow'));
    const denied = st ? st.overLimit : 0;
    summary.append(
      ' ',
      el(
        'span',
        { class: 'rule muted', 'data-rule': d.ruleKey },
        `${st ? st.decisions : 0} decisions, `,
        el('span', { class: denied > 0 ? 'bad' : 'muted' }, `${denied} denied`),
      ),
    );
  }
  const node = el('details', { open: '' }, summary);
  for (const c of d.descriptors) node.append(descriptorNode(domain, c));
  return node;
}

function renderTree(tree) {
  const out = [];
  for (const dom of tree.domains) {
    const node = el(
      'details',
      { open: '' },
      el('summary', {}, el('strong', {}, dom.domain), el('span', { class: 'muted' }, ` ${dom.files.join(', ')}`)),
    );
    for (const d of dom.descriptors) node.append(descriptorNode(dom.domain, d));
    out.push(node);
  }
  $('config-tree').replaceChildren(...out);
}

async function loadTraffic() {
  const r = await api('GET', '/v1/console/traffic');
  if (r.status !== 200) return;
  traffic = r.body;
  const rows = traffic.top_limited.map((t) =>
    el(
      'tr',
      {},
      el('td', {}, t.domain),
      el('td', {}, el('code', {}, t.ruleKey)),
      el('td', {}, el('code', {}, t.shape)),
      el('td', { class: 'mono' }, t.id),
      el('td', {}, t.values ? t.values.join(', ') : el('span', { class: 'muted' }, 'hidden')),
      el('td', {}, t.denials),
      el('td', {}, new Date(t.lastAt).toLocaleTimeString()),
    ),
  );
  fillTable($('top-limited'), rows);
  $('top-limited-empty').hidden = rows.length > 0;
}

// --- explain ------------------------------------------------------------------------------

$('explain-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const r = await api('POST', '/v1/explain', $('explain-body').value);
  $('explain-result').textContent =
    r.status === 404 && r.body && r.body.code === 'ML_ERR_NOT_FOUND'
      ? 'This meshlimit has no POST /v1/explain.'
      : `${r.status}\n${JSON.stringify(r.body, null, 2)}`;
});

// --- counters -----------------------------------------------------------------------------

function countersQuery() {
  return `domain=${encodeURIComponent($('counters-domain').value)}&descriptor=${encodeURIComponent($('counters-descriptor').value)}`;
}

function showCounters(r, what) {
  if (r.status !== 200) {
    $('counters-message').textContent = errorText(r);
    fillTable($('counters-table'), []);
    return;
  }
  const counters = r.body.descriptors.flatMap((d) => d.counters);
  $('counters-message').textContent = !r.body.known_domain
    ? `Unknown domain ${r.body.domain}: nothing is limited there.`
    : counters.length === 0
      ? 'No rule applies to this descriptor: it is not limited.'
      : `${what}${r.body.deleted !== undefined ? ` (${r.body.deleted} counter(s) deleted)` : ''}`;
  fillTable(
    $('counters-table'),
    counters.map((c) =>
      el(
        'tr',
        {},
        el('td', {}, el('code', {}, c.rule || '—')),
        el('td', {}, c.source),
        el('td', {}, c.algorithm),
        el('td', {}, `${c.unit_multiplier > 1 ? `${c.unit_multiplier} ` : ''}${c.unit}`),
        el('td', {}, c.algorithm === 'token_bucket' ? `${c.requests_per_unit} (burst ${c.burst})` : c.requests_per_unit),
        el('td', { class: c.over_limit ? 'bad' : '' }, c.used),
        el('td', {}, c.remaining),
        el('td', {}, `${Math.ceil(c.reset_ms / 1000)} s`),
      ),
    ),
  );
}

$('counters-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showCounters(await api('GET', `/v1/counters?${countersQuery()}`), 'Live counters (reading them charged nothing).');
});
$('counters-reset').addEventListener('click', async () => {
  if (!confirm('Reset these counters on every replica?')) return;
  showCounters(await api('DELETE', `/v1/counters?${countersQuery()}`), 'Counters reset.');
});

// --- overrides ----------------------------------------------------------------------------

async function loadOverrides() {
  const r = await api('GET', '/v1/overrides');
  if (r.status !== 200) {
    $('override-message').textContent = errorText(r);
    return;
  }
  fillTable(
    $('overrides-table'),
    r.body.overrides.map((o) =>
      el(
        'tr',
        {},
        el('td', {}, o.domain),
        el('td', {}, el('code', {}, descriptorText(o.entries))),
        el('td', {}, limitText(o.limit)),
        el('td', {}, o.setAt),
        el('td', { class: 'mono' }, o.setBy),
        el('td', {}, el('button', { class: 'danger', type: 'button', onclick: () => removeOverride(o) }, 'Remove')),
      ),
    ),
  );
  const a = await api('GET', '/v1/overrides/audit');
  if (a.status !== 200) return;
  fillTable(
    $('audit-table'),
    a.body.audit.map((e) =>
      el(
        'tr',
        {},
        el('td', {}, e.at),
        el('td', { class: 'mono' }, e.who),
        el('td', {}, e.action),
        el('td', {}, e.domain),
        el('td', {}, el('code', {}, descriptorText(e.entries))),
        el('td', {}, limitText(e.old)),
        el('td', {}, limitText(e.new)),
      ),
    ),
  );
}

async function removeOverride(o) {
  const r = await api('DELETE', '/v1/overrides', { domain: o.domain, entries: o.entries });
  $('override-message').textContent = r.status === 200 ? 'Override removed.' : errorText(r);
  await loadOverrides();
}

$('override-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const body = {
    domain: $('override-domain').value,
    entries: parseDescriptor($('override-descriptor').value),
    rate_limit: {
      unit: $('override-unit').value,
      requests_per_unit: Number($('override-rpu').value),
      algorithm: $('override-algorithm').value,
    },
  };
  const r = await api('PUT', '/v1/overrides', body);
  $('override-message').textContent = r.status === 200 ? 'Override set; every replica applies it within a second.' : errorText(r);
  await loadOverrides();
});

// --- refresh ------------------------------------------------------------------------------

async function refresh() {
  await loadTraffic();
  await Promise.all([loadState(), loadOverrides()]);
}

refresh();
setInterval(() => {
  if (!document.hidden) loadTraffic().then(loadState);
}, 2000);
