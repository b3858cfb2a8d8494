// Plumbline review page. Every value from the API is put on the page as text (never as
// markup): events carry untrusted text such as commit messages and workflow names.
'use strict';

const SEVERITY = { 1: 'Informational', 2: 'Needs review', 3: 'Urgent' };
const OUTCOME = { helpful: 'Helpful', false_positive: 'False positive', missed_severity: 'Missed severity' };
const COLORS = ['#2f5bd3', '#c62f2f', '#1f8a4c', '#b86e00', '#7a45c8', '#0f8a99'];
const SVGNS = 'http://www.w3.org/2000/svg';

let me = null;

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c) e.append(c);
  return e;
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || ('HTTP ' + status));
    this.status = status;
  }
}

async function api(path, opts = {}) {
  const init = { method: opts.method || 'GET', credentials: 'same-origin', headers: {} };
  if (opts.body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  }
  const r = await fetch(path, init);
  if (r.status === 204) return null;
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = { error: text }; }
  if (!r.ok) {
    if (r.status === 401 && !opts.signIn) showSignIn();
    throw new ApiError(r.status, body);
  }
  return body;
}

function pct(x) {
  if (x === null || x === undefined) return '—';
  const v = x * 100;
  const digits = x > 0.99 && x < 1 ? 2 : (Number.isInteger(v) ? 0 : 1);
  return v.toFixed(digits) + '%';
}

function duration(secs) {
  if (secs === null || secs === undefined) return '—';
  secs = Math.max(0, Math.round(secs));
  if (secs < 60) return secs + ' s';
  const m = Math.floor(secs / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
  if (d > 0) return d + ' d' + (h % 24 ? ' ' + (h % 24) + ' h' : '');
  if (h > 0) return h + ' h' + (m % 60 ? ' ' + (m % 60) + ' min' : '');
  return m + ' min';
}

function ago(iso) {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return duration((Date.now() - t) / 1000) + ' ago';
}

function timeOf(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return { day: '', clock: iso };
  return {
    day: d.toISOString().slice(0, 10),
    clock: d.toISOString().slice(11, 19),
  };
}

function sevPill(s) {
  return el('span', { class: 'pill sev-' + s, text: SEVERITY[s] || ('Severity ' + s) });
}

function statusPill(s) {
  return el('span', { class: 'pill st' + (s === 'open' ? ' st-open' : ''), text: s });
}

function can(scope) {
  return me && (me.scopes.includes(scope) || me.scopes.includes('admin'));
}

function card(title, ...children) {
  return el('section', { class: 'card' }, title ? el('h2', { text: title }) : null, ...children);
}

function setView(...nodes) {
  const v = document.getElementById('view');
  v.replaceChildren(...nodes);
}

function failure(e) {
  return card('Something went wrong', el('p', { class: 'error', text: e.message }));
}

// ---------------------------------------------------------------- sign-in

function showSignIn(message) {
  me = null;
  document.getElementById('nav').hidden = true;
  document.getElementById('who').hidden = true;
  document.getElementById('view').replaceChildren();
  document.getElementById('sign-in').hidden = false;
  document.getElementById('sign-in-error').textContent = message || '';
  document.getElementById('token').focus();
}

async function signedIn(who) {
  me = who;
  document.getElementById('sign-in').hidden = true;
  document.getElementById('nav').hidden = false;
  document.getElementById('who').hidden = false;
  document.getElementById('who-name').textContent = who.open ? 'open API (loopback)' : 'Signed in as ' + who.name;
  document.getElementById('sign-out').hidden = who.open;
  await route();
}

async function start() {
  document.getElementById('sign-in-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = document.getElementById('token').value.trim();
    try {
      const who = await api('/v1/session', { method: 'POST', body: { token }, signIn: true });
      document.getElementById('token').value = '';
      await signedIn(who);
    } catch (e) {
      document.getElementById('sign-in-error').textContent = e.message;
    }
  });
  document.getElementById('sign-out').addEventListener('click', async () => {
    await api('/v1/session', { method: 'DELETE' }).catch(() => {});
    showSignIn('Signed out.');
  });
  window.addEventListener('hashchange', () => { if (me) route(); });
  try {
    await signedIn(await api('/v1/session', { signIn: true }));
  } catch (e) {
    showSignIn(e.status === 401 ? '' : e.message);
  }
}

async function route() {
  const hash = location.hash || '#/';
  const m = hash.match(/^#\/alert\/(.+)$/);
  const page = m ? 'queue' : (hash.replace(/^#\//, '').split('?')[0] || 'queue');
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('active', a.dataset.nav === page);
  }
  try {
    if (m) await alertPage(decodeURIComponent(m[1]));
    else if (page === 'precision') await precisionPage();
    else if (page === 'coverage') await coveragePage();
    else await queuePage();
  } catch (e) {
    if (e.status !== 401) setView(failure(e));
  }
}

// ---------------------------------------------------------------- queue

let queueStatus = 'open';

async function queuePage() {
  const q = await api('/v1/review/queue?status=' + encodeURIComponent(queueStatus));
  const tabs = el('div', { class: 'tabs' }, ['open', 'reviewed', 'resolved', 'all'].map((s) =>
    el('button', {
      type: 'button', class: s === queueStatus ? 'on' : '', text: s[0].toUpperCase() + s.slice(1),
      onclick: () => { queueStatus = s; queuePage().catch((e) => setView(failure(e))); },
    })));
  const counts = el('div', { class: 'counts' }, [3, 2, 1].map((s) =>
    el('span', { class: 'pill sev-' + s, text: SEVERITY[s] + ': ' + (q.by_severity[String(s)] || 0) })));
  const rows = q.alerts.map((a) => el('tr', { class: 'row', dataset: { alertId: a.id } },
    el('td', {}, sevPill(a.severity)),
    el('td', {},
      el('a', { href: '#/alert/' + encodeURIComponent(a.id), class: 'alert-link', text: a.title || a.id }),
      el('div', {}, a.signals.map((s) => el('span', { class: 'tag mono', text: s })))),
    el('td', { class: 'num', text: duration(a.age_secs) }),
    el('td', {}, a.actors.join(', ')),
    el('td', {}, a.systems.join(', ')),
    el('td', {}, statusPill(a.status),
      a.label ? el('span', { class: 'tag', text: OUTCOME[a.label.outcome] }) : null,
      a.pending_actions ? el('span', { class: 'tag', text: a.pending_actions + ' action(s) waiting' }) : null)));
  const table = rows.length
    ? el('table', { id: 'queue' },
      el('thead', {}, el('tr', {}, ['Severity', 'Alert', 'Age', 'Actors', 'Systems', 'State'].map((h, i) =>
        el('th', { class: i === 2 ? 'num' : '', text: h })))),
      el('tbody', {}, rows))
    : el('div', { class: 'empty', text: 'Nothing waiting here.' });
  setView(
    el('div', { class: 'toolbar' }, el('h1', { text: 'Alert queue' }), tabs, counts),
    el('section', { class: 'card flush' }, table));
}

// ---------------------------------------------------------------- alert (the review packet)

async function alertPage(id) {
  const p = await api('/v1/alerts/' + encodeURIComponent(id) + '/packet');
  const a = p.alert;
  const head = el('div', { class: 'alert-head' },
    sevPill(a.severity),
    el('div', {},
      el('h1', { id: 'alert-title', text: a.title }),
      el('div', { class: 'meta' },
        statusPill(a.status), ' ',
        el('span', { class: 'mono', text: a.id }), ' · raised ', ago(a.created_at),
        ' · ', a.detectors.map((d) => d.name + ' ' + d.version).join(', '))));
  const main = el('div', {},
    card('Narrative', el('p', { class: 'narrative', id: 'narrative', text: p.narrative || '(no summary yet)' })),
    findingsCard(a),
    isAgentSession(p) ? agentSessionCard(p) : timelineCard(p),
    auditCard(p));
  const aside = el('div', {},
    labelCard(p),
    actionsCard(p),
    classificationCard(p),
    peopleCard(p),
    remediationCard(p),
    linksCard(p),
    decisionsCard(p));
  setView(
    el('p', {}, el('a', { href: '#/', text: '← Queue' })),
    head,
    el('div', { class: 'layout' }, main, aside));
}

function findingsCard(a) {
  return card('Findings', el('ul', { class: 'plain' }, a.findings.map((f) =>
    el('li', { class: 'person' },
      sevPill(f.severity), ' ', el('strong', { text: f.title }),
      el('div', { class: 'from' }, f.detector + ' ' + f.detector_version + ' · ', el('span', { class: 'mono', text: f.signal }),
        ' · score ' + Number(f.score).toFixed(2) + ' · evidence ',
        f.evidence.map((id) => el('a', {
          href: '#', class: 'tag mono', text: id,
          onclick: (ev) => { ev.preventDefault(); focusEvent(id); },
        })))))));
}

function focusEvent(id) {
  for (const li of document.querySelectorAll('.event')) {
    const hit = li.dataset.eventId === id;
    li.classList.toggle('focus', hit);
    if (hit) li.scrollIntoView({ block: 'center' });
  }
}

function describeVolume(v) {
  if (!v) return null;
  const parts = [];
  if (v.rows !== undefined) parts.push(v.rows.toLocaleString() + ' rows');
  if (v.bytes !== undefined) parts.push(v.bytes.toLocaleString() + ' bytes');
  if (v.files !== undefined) parts.push(v.files.toLocaleString() + ' files');
  return parts.join(', ');
}

// ---------------------------------------------------------------- agent sessions

// An AI coding agent's session (actor type ai-agent, agent.* actions): shown as what the
// agent did, one row per tool call — a call seen both before it ran (a pre-tool hook) and
// after (its result) is one row — with the verdict Plumbline answered on it.
function isAgentSession(p) {
  const t = p.timeline;
  return t.length > 0 && t.every((e) => e.action.startsWith('agent.')) &&
    t.some((e) => e.actor.type === 'ai-agent');
}

const TOOL_KIND = {
  'agent.tool.shell': 'shell', 'agent.tool.file.read': 'read', 'agent.tool.file.write': 'write',
  'agent.tool.web.fetch': 'fetch', 'agent.tool.web.search': 'search', 'agent.tool.mcp': 'mcp',
  'agent.tool.other': 'tool',
};

// What the call did, in one line: the command, the path, the URL.
function callText(e) {
  const a = e.attributes || {};
  return a['tool.command'] || a['file.path'] || a['url'] || a['query'] ||
    [a['mcp.server'], a['mcp.tool']].filter(Boolean).join(' · ') || e.resource || a['tool.name'] || '';
}

function agentCalls(timeline) {
  const verdicts = new Map();
  for (const e of timeline) {
    if (e.action === 'agent.verdict') verdicts.set((e.attributes || {})['verdict.call'], e);
  }
  const rows = [];
  const byCall = new Map();
  for (const e of timeline) {
    if (e.action === 'agent.verdict') continue;
    const a = e.attributes || {};
    const key = a['tool.call_id'] ? e.actor.id + '\u0000' + a['tool.call_id'] : null;
    const row = key && byCall.get(key);
    if (row) {
      row.events.push(e);
      continue;
    }
    const fresh = { first: e, events: [e] };
    rows.push(fresh);
    if (key) byCall.set(key, fresh);
  }
  for (const r of rows) {
    r.verdict = r.events.map((e) => verdicts.get(e.id)).find(Boolean) || null;
    r.cited = r.events.some((e) => e.cited);
    r.citedBy = [...new Set(r.events.flatMap((e) => e.cited_by))];
    const done = r.events.find((e) => (e.attributes || {})['tool.phase'] !== 'requested');
    r.result = done ? done.attributes || {} : null;
  }
  return rows;
}

function agentSessionCard(p) {
  const t = p.trajectory;
  const first = p.timeline[0];
  const a0 = first.attributes || {};
  const rows = agentCalls(p.timeline);
  const calls = rows.filter((r) => TOOL_KIND[r.first.action]).length;
  const cited = rows.filter((r) => r.cited).length;
  const intro = el('p', { class: 'muted' },
    `${a0['agent.name'] || first.source} session ${a0['agent.session'] || t.key || ''}`,
    a0['agent.user'] ? ` for ${a0['agent.user']}` : '',
    first.system ? ` in ${first.system}` : '',
    ` · ${calls} tool calls · ${cited} cited`,
    t.omitted ? ` · ${t.omitted} uncited events not shown` : '');
  const items = rows.map((r) => {
    const e = r.first;
    const when = timeOf(e.time);
    const kind = TOOL_KIND[e.action] || e.action.replace(/^agent\./, '');
    const tags = [];
    if (r.result && r.result['tool.success'] === false) tags.push(el('span', { class: 'tag bad', text: 'failed' }));
    if (r.result && r.result['tool.duration_ms'] !== undefined) tags.push(el('span', { class: 'tag', text: r.result['tool.duration_ms'] + ' ms' }));
    if (!r.result) tags.push(el('span', { class: 'tag', text: 'requested' }));
    if (e.destination) tags.push(el('span', { class: 'tag', text: '→ ' + e.destination }));
    if (r.verdict) {
      const v = r.verdict.attributes || {};
      tags.push(el('span', { class: 'tag verdict verdict-' + v['verdict.decision'], title: v['verdict.reason'] || '', text: 'verdict: ' + v['verdict.decision'] + (v['verdict.basis'] !== 'judged' ? ' (' + v['verdict.basis'] + ')' : '') }));
    }
    const attrs = r.events.flatMap((x) => Object.entries(x.attributes || {}));
    return el('li', { class: 'event call' + (r.cited ? ' cited' : ''), dataset: { eventId: e.id } },
      el('div', { class: 'when' }, el('span', { class: 'day', text: when.day }), when.clock),
      el('div', {}, el('div', { class: 'dot' })),
      el('div', { class: 'what' },
        el('span', { class: 'action tool-kind', text: kind }),
        (e.attributes || {})['tool.name'] ? el('span', { class: 'k', text: ' ' + e.attributes['tool.name'] }) : null,
        r.cited ? el('span', { class: 'cite-tag', text: 'cited · ' + r.citedBy.join(', ') }) : null,
        el('div', { class: 'line' }, el('code', { class: 'call-text', text: callText(e) })),
        tags.length ? el('div', { class: 'line' }, tags) : null,
        el('details', {},
          el('summary', { text: r.events.map((x) => 'id ' + x.id).join(' · ') }),
          el('dl', {}, attrs.map(([k, v]) => [el('dt', { text: k }), el('dd', { text: typeof v === 'string' ? v : JSON.stringify(v) })])))));
  });
  return card('Agent session', intro, el('ol', { class: 'timeline agent', id: 'timeline' }, items));
}

function timelineCard(p) {
  const t = p.trajectory;
  const cited = p.timeline.filter((e) => e.cited).length;
  const intro = el('p', { class: 'muted' },
    t.found
      ? `${t.kind} trajectory ${t.key} · ${t.event_count} events · ${cited} cited`
      : `The trajectory is no longer stored; showing the ${cited} cited events.`,
    t.dropped ? ` · ${t.dropped} older events dropped at the bound` : '',
    t.omitted ? ` · ${t.omitted} uncited events not shown` : '');
  const items = p.timeline.map((e) => {
    const when = timeOf(e.time);
    const attrs = Object.entries(e.attributes || {});
    const line = [];
    line.push(el('span', { class: 'k', text: e.source + ' · ' }), e.actor.display || e.actor.id,
      el('span', { class: 'k', text: ' (' + e.actor.type + ')' }));
    if (e.resource) line.push(el('span', { class: 'k', text: ' · ' }), e.resource);
    if (e.system && e.system !== e.resource) line.push(el('span', { class: 'k', text: ' in ' }), e.system);
    const extra = [];
    if (e.environment && e.environment !== 'unknown') extra.push(el('span', { class: 'tag', text: e.environment }));
    if (e.destination) extra.push(el('span', { class: 'tag', text: '→ ' + e.destination }));
    const vol = describeVolume(e.volume);
    if (vol) extra.push(el('span', { class: 'tag', text: vol }));
    return el('li', { class: 'event' + (e.cited ? ' cited' : ''), dataset: { eventId: e.id } },
      el('div', { class: 'when' }, el('span', { class: 'day', text: when.day }), when.clock),
      el('div', {}, el('div', { class: 'dot' })),
      el('div', { class: 'what' },
        el('span', { class: 'action', text: e.action }),
        e.cited ? el('span', { class: 'cite-tag', text: 'cited · ' + e.cited_by.join(', ') }) : null,
        el('div', { class: 'line' }, line),
        extra.length ? el('div', { class: 'line' }, extra) : null,
        e.links.length ? el('div', { class: 'line' }, e.links.map((l) =>
          el('a', { href: l.url, target: '_blank', rel: 'noopener noreferrer', class: 'tag', text: l.label }))) : null,
        el('details', {},
          el('summary', { text: 'id ' + e.id + (attrs.length ? ' · ' + attrs.length + ' attributes' : '') }),
          el('dl', {}, attrs.map(([k, v]) => [el('dt', { text: k }), el('dd', { text: typeof v === 'string' ? v : JSON.stringify(v) })])))));
  });
  return card('Trajectory', intro, el('ol', { class: 'timeline', id: 'timeline' }, items));
}

function auditCard(p) {
  const s = p.summary_audit;
  if (!s) return card('Summary audit', el('p', { class: 'muted', text: 'No summary recorded yet.' }));
  const prov = s.provenance || {};
  const how = prov.source === 'llm' ? 'Written by ' + prov.model
    : prov.source === 'cached' ? 'Cached from ' + prov.model + ' (' + prov.produced_at + ')'
      : 'Deterministic summary from the findings: ' + (prov.reason || '');
  const rows = [
    ['Summary', how],
    ['When', s.at],
    ['Trajectory hash', s.trajectory_hash],
    ['Severity', `detectors ${s.severity.detectors}, model ${s.severity.model_risk ?? '—'}, cap ${s.severity.cap}, applied ${s.severity.applied}`],
  ];
  for (const c of s.calls) rows.push(['Call (' + c.purpose + ')', `${c.outcome} · ${c.tries} tr${c.tries === 1 ? 'y' : 'ies'} · request sha256 ${c.request_sha256}`]);
  return el('section', { class: 'card audit' }, el('h2', { text: 'Summary audit' }),
    el('dl', {}, rows.map(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })])),
    el('p', { class: 'muted' }, s.records + ' record(s) kept · ',
      el('a', { href: s.url, target: '_blank', rel: 'noopener', text: 'what the model was sent (JSON)' })));
}

function labelCard(p) {
  const a = p.alert;
  const status = el('div', { id: 'label-status' });
  const comment = el('textarea', { id: 'label-comment', rows: 2, placeholder: 'Comment (optional): why?' });
  const name = me && me.open ? el('input', { id: 'label-by', placeholder: 'Your name', value: localStorage.getItem('plumbline.by') || '' }) : null;
  const severity = el('select', { id: 'label-severity', 'aria-label': 'Severity it should have had' },
    [3, 2, 1].filter((s) => s !== a.severity).map((s) => el('option', { value: s, text: SEVERITY[s] })));
  const send = async (outcome, button) => {
    const body = { outcome, comment: comment.value.trim() };
    if (outcome === 'missed_severity') body.severity = Number(severity.value);
    if (name) { body.by = name.value.trim(); localStorage.setItem('plumbline.by', body.by); }
    for (const b of document.querySelectorAll('.label-buttons button')) b.disabled = true;
    try {
      const l = await api('/v1/alerts/' + encodeURIComponent(a.id) + '/labels', { method: 'POST', body });
      await alertPage(a.id);
      const s = document.getElementById('label-status');
      if (s) s.replaceChildren(el('div', { class: 'notice', id: 'label-notice', text: 'Labelled ' + OUTCOME[l.outcome].toLowerCase() + ' by ' + l.by + '.' }));
    } catch (e) {
      status.replaceChildren(el('p', { class: 'error', text: e.message }));
      for (const b of document.querySelectorAll('.label-buttons button')) b.disabled = false;
    }
    return button;
  };
  const buttons = can('review')
    ? el('div', {},
      name, comment,
      el('div', { class: 'label-buttons' },
        el('button', { type: 'button', class: 'good', id: 'label-helpful', text: 'Helpful', onclick: (ev) => send('helpful', ev.target) }),
        el('button', { type: 'button', class: 'bad', id: 'label-false-positive', text: 'False positive', onclick: (ev) => send('false_positive', ev.target) })),
      el('div', { class: 'missed label-buttons' },
        el('button', { type: 'button', class: 'warn', id: 'label-missed', text: 'Missed severity', onclick: (ev) => send('missed_severity', ev.target) }),
        el('span', { class: 'muted', text: 'should be' }), severity))
    : el('p', { class: 'muted', text: 'Your token lacks the review scope: you can read, not label.' });
  const list = p.labels.length
    ? el('ul', { class: 'plain label-list', id: 'labels' }, p.labels.slice().reverse().map((l) => el('li', {},
      el('strong', { text: OUTCOME[l.outcome] + (l.severity ? ' (should be ' + SEVERITY[l.severity].toLowerCase() + ')' : '') }),
      ' by ' + l.by + ', ' + ago(l.at), l.comment ? el('div', { class: 'muted', text: '“' + l.comment + '”' }) : null)))
    : el('p', { class: 'muted', text: 'Not labelled yet.' });
  return card('Label this alert', buttons, status, list);
}

function describeTarget(t) {
  if (!t) return '';
  if (t.type === 'n8n_workflow') return 'n8n workflow ' + t.workflow_id;
  if (t.type === 'github_deploy_key') return 'GitHub deploy key ' + t.key_id + ' on ' + t.repository;
  if (t.type === 'vault_token') return 'Vault token (accessor ' + t.accessor + ')';
  return JSON.stringify(t);
}

function actionsCard(p) {
  if (!p.response_actions.length) {
    return card('Response actions', el('p', { class: 'muted', text: 'None proposed for this alert.' }));
  }
  const items = p.response_actions.map((x) => {
    const box = el('div', { class: 'action', dataset: { actionId: x.id } },
      el('strong', { text: x.action }), ' ', el('span', { class: 'pill st' + (x.state === 'pending' ? ' st-open' : ''), text: x.state }),
      el('div', { class: 'muted', text: describeTarget(x.target) + ' · ' + x.kind }),
      x.decision ? el('div', { class: 'muted', text: `${x.state} by ${x.decision.by} ${ago(x.decision.at)}${x.decision.comment ? ': “' + x.decision.comment + '”' : ''}` }) : null,
      x.result ? el('div', { class: 'muted', text: 'Result: ' + x.result }) : null);
    if (x.state === 'pending') {
      box.append(el('div', { class: 'muted', text: 'Expires ' + x.expires_at }));
      if (can('review')) {
        const why = el('input', { placeholder: 'Comment (optional)', class: 'action-comment' });
        const decide = async (verb) => {
          const body = { comment: why.value.trim() };
          if (me.open) body.by = localStorage.getItem('plumbline.by') || prompt('Your name') || '';
          try {
            await api('/v1/actions/' + encodeURIComponent(x.id) + '/' + verb, { method: 'POST', body });
            await alertPage(p.alert.id);
          } catch (e) {
            box.append(el('p', { class: 'error', text: e.message }));
          }
        };
        box.append(el('div', { class: 'row' }, why,
          el('button', { type: 'button', class: 'good', text: 'Approve', onclick: () => decide('approve') }),
          el('button', { type: 'button', class: 'bad', text: 'Deny', onclick: () => decide('deny') })));
      }
    }
    return box;
  });
  return card('Response actions', items);
}

function classificationCard(p) {
  const body = p.classification.length
    ? p.classification.map((h) => el('div', { class: 'hint' },
      el('span', { class: 'pill', text: h.label }),
      el('span', { class: 'reasons', text: h.reasons.map((r) => r.why).join('; ') })))
    : el('p', { class: 'muted', text: 'No sign of personal data, finance, auth or secrets in what the events name.' });
  return card('Data touched (hint)', body);
}

function peopleCard(p) {
  const person = (x) => el('div', { class: 'person' }, el('strong', { text: x.display }),
    x.kind !== 'unknown' ? el('span', { class: 'muted', text: ' (' + x.kind + ')' }) : null,
    el('div', { class: 'why', text: x.why }));
  return card('Owner and approver',
    el('h3', { text: 'Should explain' }),
    p.people.owners.length ? p.people.owners.map(person) : el('p', { class: 'muted', text: 'Unknown.' }),
    el('h3', { text: 'Can approve' }),
    p.people.approvers.length ? p.people.approvers.map(person)
      : el('p', { class: 'muted', text: 'No approver named in the events; response actions are decided by a reviewer with the review scope.' }));
}

function remediationCard(p) {
  return card('Suggested remediation', p.remediation.length
    ? el('ul', { class: 'steps' }, p.remediation.map((r) => el('li', {}, r.step, el('div', { class: 'from', text: r.from.join(', ') }))))
    : el('p', { class: 'muted', text: 'No next step suggested.' }));
}

function linksCard(p) {
  return card('Links to the sources', p.links.length
    ? el('ul', { class: 'plain links', id: 'source-links' }, p.links.map((l) => el('li', {},
      el('a', { href: l.url, target: '_blank', rel: 'noopener noreferrer', text: l.label }),
      el('span', { class: 'kind', text: l.kind.replace('_', ' ') }))))
    : el('p', { class: 'muted', text: 'No link can be built from these events (set the source URLs under [review]).' }));
}

function decisionsCard(p) {
  if (!p.decisions.length) return card('Policy', el('p', { class: 'muted', text: 'Not routed yet.' }));
  const d = p.decisions[p.decisions.length - 1];
  return card('Policy',
    el('p', {}, d.suppressed ? 'Suppressed: ' + d.suppressed : 'Routes: ' + (d.routes.join(', ') || 'none')),
    d.deliveries && d.deliveries.length ? el('p', { class: 'muted', text: 'Deliveries: ' + d.deliveries.map((x) => x.destination + ' ' + (x.outcome || x.state || '')).join(', ') }) : null,
    d.notes.length ? el('ul', { class: 'steps' }, d.notes.map((n) => el('li', { class: 'muted', text: n }))) : null);
}

// ---------------------------------------------------------------- precision

let precisionDays = 30;

async function precisionPage() {
  const s = await api('/v1/stats?days=' + precisionDays);
  const pr = s.precision;
  const o = pr.overall;
  const worth = o.tally.helpful + o.tally.missed_severity;
  const labelled = worth + o.tally.false_positive;
  const tabs = el('div', { class: 'tabs' }, [7, 30, 90].map((d) => el('button', {
    type: 'button', class: d === precisionDays ? 'on' : '', text: d + ' days',
    onclick: () => { precisionDays = d; precisionPage().catch((e) => setView(failure(e))); },
  })));
  const figures = el('div', { class: 'figures' },
    el('div', { class: 'card figure' }, el('h2', { text: 'Precision' }),
      el('div', { class: 'big', id: 'precision-overall', text: pct(o.precision) }),
      el('div', { class: 'sub', id: 'precision-detail', text: labelled ? `${worth} of ${labelled} labelled alerts were worth raising` : 'no labelled alerts in this window yet' })),
    el('div', { class: 'card figure' }, el('h2', { text: 'False positives' }),
      el('div', { class: 'big', id: 'false-positives', text: String(o.tally.false_positive) }),
      el('div', { class: 'sub', text: 'alerts raised in the window and labelled false positive' })),
    el('div', { class: 'card figure' }, el('h2', { text: 'Missed severity' }),
      el('div', { class: 'big', text: String(o.tally.missed_severity) }),
      el('div', { class: 'sub', text: 'right to fire, routed at the wrong severity' })),
    el('div', { class: 'card figure' }, el('h2', { text: 'Alerts' }),
      el('div', { class: 'big', text: String(s.alerts.total) }),
      el('div', { class: 'sub', text: `${s.alerts.by_status.open} open · ${s.labels.alerts_labelled} labelled` })));
  const series = [o].concat(pr.by_detector.slice(0, COLORS.length - 1));
  setView(
    el('div', { class: 'toolbar' }, el('h1', { text: 'Precision over time' }), tabs),
    figures,
    card('Cumulative precision by day the alert was raised', plot(pr, series), legend(series)),
    tableCard('By detector', pr.by_detector, 'Detector'),
    tableCard('By signal', pr.by_signal, 'Signal'));
}

function dayList(since, n) {
  const out = [];
  const start = Date.parse(since + 'T00:00:00Z');
  for (let i = 0; i < n; i++) out.push(new Date(start + i * 86400000).toISOString().slice(0, 10));
  return out;
}

function plot(pr, series) {
  const W = 900, H = 260, L = 44, R = 16, T = 12, B = 28;
  const days = dayList(pr.since, pr.days);
  const x = (i) => L + (days.length === 1 ? (W - L - R) / 2 : i * (W - L - R) / (days.length - 1));
  const y = (v) => T + (1 - v) * (H - T - B);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Precision over time', id: 'precision-plot' });
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    root.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    root.append(svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', text: (v * 100) + '%' }));
  }
  root.append(svg('line', { class: 'axis', x1: L, x2: W - R, y1: y(0), y2: y(0) }));
  const step = Math.max(1, Math.ceil(days.length / 8));
  days.forEach((d, i) => {
    if (i % step === 0 || i === days.length - 1) root.append(svg('text', { x: x(i), y: H - 8, 'text-anchor': 'middle', text: d.slice(5) }));
  });
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length];
    const pts = s.points.map((p) => ({ i: days.indexOf(p.day), p })).filter((q) => q.i >= 0);
    if (!pts.length) return;
    // The cumulative line carries on to today: precision stays what it was until new labels.
    const line = pts.map((q) => [x(q.i), y(q.p.cumulative)]);
    line.push([x(days.length - 1), y(pts[pts.length - 1].p.cumulative)]);
    root.append(svg('polyline', {
      points: line.map((c) => c.join(',')).join(' '), fill: 'none', stroke: color,
      'stroke-width': k === 0 ? 3 : 1.6, 'stroke-linejoin': 'round', opacity: k === 0 ? 1 : 0.85,
    }));
    for (const q of pts) {
      const n = q.p.tally.helpful + q.p.tally.false_positive + q.p.tally.missed_severity;
      const dot = svg('circle', { cx: x(q.i), cy: y(q.p.precision), r: Math.min(9, 3 + Math.sqrt(n) * 1.5), fill: color, 'fill-opacity': 0.25, stroke: color });
      dot.append(svg('title', { text: `${s.key} ${q.p.day}: ${pct(q.p.precision)} of ${n} labelled (cumulative ${pct(q.p.cumulative)})` }));
      root.append(dot);
    }
  });
  if (!series[0].points.length) {
    root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', text: 'No labelled alerts in this window yet' }));
  }
  return el('div', { class: 'plot' }, root);
}

function legend(series) {
  return el('div', { class: 'legend' }, series.map((s, k) => {
    const sw = el('span', { class: 'sw' });
    sw.style.background = COLORS[k % COLORS.length];
    return el('span', {}, sw, s.key === 'overall' ? 'All detectors' : s.key, el('span', { class: 'muted', text: ' ' + pct(s.precision) }));
  }), el('span', { class: 'muted', text: 'Line: cumulative precision · dots: that day’s alerts (size = labels)' }));
}

function tableCard(title, list, what) {
  if (!list.length) return card(title, el('p', { class: 'muted', text: 'No labels yet.' }));
  return el('section', { class: 'card flush' },
    el('div', { class: 'card' }, el('h2', { text: title })),
    el('table', { class: 'precision-table' },
      el('thead', {}, el('tr', {}, [what, 'Precision', '', 'Helpful', 'False positive', 'Missed severity'].map((h, i) =>
        el('th', { class: i > 2 ? 'num' : '', text: h })))),
      el('tbody', {}, list.map((s) => {
        const bar = el('i');
        bar.style.width = Math.round((s.precision ?? 0) * 100) + '%';
        return el('tr', { class: 'row', dataset: { key: s.key } },
          el('td', {}, el('span', { class: 'mono', text: s.key }), s.versions && s.versions.length ? el('span', { class: 'muted', text: ' ' + s.versions.join(', ') }) : null),
          el('td', { class: 'precision', text: pct(s.precision) }),
          el('td', {}, el('div', { class: 'bar' }, bar)),
          el('td', { class: 'num', text: s.tally.helpful }),
          el('td', { class: 'num', text: s.tally.false_positive }),
          el('td', { class: 'num', text: s.tally.missed_severity }));
      }))));
}

// ---------------------------------------------------------------- coverage

function sparkline(hourly) {
  const W = 120, H = 24, max = Math.max(1, ...hourly), bw = W / hourly.length;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'spark' });
  hourly.forEach((n, i) => {
    const h = n ? Math.max(2, (n / max) * (H - 2)) : 0;
    root.append(svg('rect', { x: i * bw + 0.5, y: H - h, width: Math.max(1, bw - 1), height: h, class: i === hourly.length - 1 ? 'now' : '' }));
  });
  return root;
}

async function coveragePage() {
  const c = await api('/v1/coverage');
  const hr = c.high_risk, ev = c.evaluations;
  const good = hr.meets_target === true, bad = hr.meets_target === false;
  const figures = el('div', { class: 'figures' },
    el('div', { class: 'card figure' }, el('h2', { text: 'High-risk coverage' }),
      el('div', { class: 'big' + (good ? ' good' : bad ? ' bad' : ''), id: 'high-risk-coverage', text: pct(hr.coverage) }),
      el('div', { class: 'sub', text: `goal ${pct(hr.target)} · ${hr.events} high-risk events in ${hr.window_hours} h` +
        (hr.detectors_known ? '' : ' · detector set unknown to this process') })),
    el('div', { class: 'card figure' }, el('h2', { text: 'Read by a detector' }),
      el('div', { class: 'big', text: pct(hr.watched_share) }),
      el('div', { class: 'sub', text: `${hr.watched} of ${hr.events} high-risk events match an active detector` })),
    el('div', { class: 'card figure' }, el('h2', { text: 'Evaluated in time' }),
      el('div', { class: 'big', id: 'within-deadline', text: pct(ev.share) }),
      el('div', { class: 'sub', text: `${ev.within_deadline} of ${ev.evaluations} evaluations within ${ev.effective_deadline_ms} ms · p99 ${ev.p99_ms === null ? '—' : ev.p99_ms + ' ms'}` })),
    el('div', { class: 'card figure' }, el('h2', { text: 'Evaluation lag' }),
      el('div', { class: 'big' + (c.lag.max_ms !== null && c.lag.ms > c.lag.max_ms / 2 ? ' bad' : ' good'), id: 'evaluation-lag', text: c.lag.ms < 1000 ? c.lag.ms + ' ms' : (c.lag.ms / 1000).toFixed(1) + ' s' }),
      el('div', { class: 'sub', text: `oldest change not yet evaluated · ${c.lag.backlog} waiting` +
        (c.lag.max_ms === null ? '' : ` · new events refused above ${c.lag.max_ms / 1000} s`) })),
    el('div', { class: 'card figure' }, el('h2', { text: 'Silent sources' }),
      el('div', { class: 'big' + (hr.silent_sources.length ? ' bad' : ' good'), text: String(hr.silent_sources.length) }),
      el('div', { class: 'sub', text: hr.silent_sources.length ? hr.silent_sources.join(', ') + ': what they did not send is not counted' : 'every source within its usual gap' })));
  const sources = el('section', { class: 'card flush' },
    el('div', { class: 'card' }, el('h2', { text: 'Sources' })),
    el('table', { id: 'sources' },
      el('thead', {}, el('tr', {}, ['Source', 'State', 'Last event', 'Events / h (24 h)', 'Last 24 h', 'Usual gap', 'Silent after', 'Total'].map((h, i) =>
        el('th', { class: [3, 5, 6, 7].includes(i) ? 'num' : '', text: h })))),
      el('tbody', {}, c.sources.map((s) => el('tr', { class: 'row', dataset: { source: s.source } },
        el('td', { class: 'mono', text: s.source }),
        el('td', {}, el('span', { class: 'pill ' + (s.state === 'ok' ? 'st-ok' : s.state === 'silent' ? 'st-silent' : 'st'), text: s.state }),
          s.silent_alert ? el('a', { href: '#/alert/' + encodeURIComponent(s.silent_alert), class: 'tag', text: 'alert' }) : null),
        el('td', { text: s.last_seen ? duration(s.quiet_secs) + ' ago' : 'never' }),
        el('td', { class: 'num', text: s.events_per_hour.toFixed(1) }),
        el('td', {}, sparkline(s.hourly)),
        el('td', { class: 'num', text: s.usual_gap_secs ? duration(s.usual_gap_secs) : '—' }),
        el('td', { class: 'num', text: duration(s.silent_after_secs) }),
        el('td', { class: 'num', text: s.events_total.toLocaleString() }))))));
  const surfaces = el('section', { class: 'card flush' },
    el('div', { class: 'card' }, el('h2', { text: 'High-risk surfaces (last 24 h)' })),
    el('table', {},
      el('thead', {}, el('tr', {}, ['Surface', 'Events', 'Read by a detector', 'Not read'].map((h, i) => el('th', { class: i === 1 || i === 2 ? 'num' : '', text: h })))),
      el('tbody', {}, hr.surfaces.map((s) => el('tr', { class: 'row' },
        el('td', { text: s.label }),
        el('td', { class: 'num', text: s.events }),
        el('td', { class: 'num', text: s.events ? pct(s.watched / s.events) : '—' }),
        el('td', {}, s.unwatched.map((u) => el('span', { class: 'tag mono', text: u }))))))));
  setView(el('div', { class: 'toolbar' }, el('h1', { text: 'Coverage' })), figures, sources, surfaces);
}

document.addEventListener('DOMContentLoaded', start);
