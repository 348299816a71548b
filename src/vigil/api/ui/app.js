// Vigil's dashboard: plain JavaScript over the HTTP API of docs/api.md, no framework and no
// build step. Views are routed by the URL fragment: #/ (KPIs, the alert queue, rule hits),
// #/alert/ID, #/cases, #/case/ID. The API token lives in sessionStorage and goes with every
// request as `Authorization: Bearer`; the live stream is read with fetch() because
// EventSource cannot send that header.
'use strict';

const PAGE = 25;
const state = {
  kpi: null,
  rules: null,
  alerts: {total: 0, offset: 0, items: [], outcome: '', rule: ''},
  pending: [],       // live alerts held back while the user points at the queue
  live: 0,           // alerts the stream brought since the page opened
  stream: null,      // AbortController of the running stream
};

// ---- helpers ----------------------------------------------------------------------------------

function token() { return sessionStorage.getItem('vigil.token') || ''; }

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

const fmtInt = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '–');
const fmtNum = (n, d = 1) => (typeof n === 'number' ? n.toLocaleString('en-US',
    {maximumFractionDigits: d}) : '–');

function notice(text, ok = false) {
  const n = document.getElementById('notice');
  n.textContent = text || '';
  n.className = ok ? 'ok' : '';
  n.hidden = !text;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// What a 401/403 means to the person at the keyboard.
function explain(err) {
  if (!(err instanceof ApiError)) return `Cannot reach the server: ${err.message}`;
  if (err.status === 401) {
    return token() ? `The server does not accept this token (${err.message}). Paste another one.`
                   : `This server needs an API token: paste one above (${err.message}).`;
  }
  if (err.status === 403) return `Not allowed with this token: ${err.message}`;
  if (err.status === 503) return `The server is busy, try again: ${err.message}`;
  return `${err.status}: ${err.message}`;
}

async function api(path, body) {
  const headers = {};
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const init = {headers};
  if (body !== undefined) {
    init.method = 'POST';
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res = await fetch(path, init);
  // 503 means the database stayed locked past its busy timeout, so nothing was written
  // (docs/api.md: retry): retried here three times with a growing pause before the user is told.
  for (let i = 0; res.status === 503 && i < 3; ++i) {
    await new Promise((r) => setTimeout(r, 500 * (i + 1)));
    res = await fetch(path, init);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || text.trim() || res.statusText);
  return data;
}

// The rule ids an alert fired on (reason codes other than the model's).
const ruleIds = (a) => (a.reasons || []).map((r) => r.code).filter((c) => c && c !== 'model');

// Model drivers, as the model stage appends them to its reason: "...; top drivers: f=+0.41, ...".
function drivers(alert) {
  const r = (alert.reasons || []).find((x) => x.code === 'model');
  const m = r && /top drivers: (.*)$/.exec(r.detail || '');
  if (!m) return [];
  return m[1].split(', ').map((s) => {
    const i = s.lastIndexOf('=');
    return {name: s.slice(0, i), value: Number(s.slice(i + 1))};
  }).filter((d) => d.name && !Number.isNaN(d.value));
}

const outcomeTag = (o) => el('span', {class: `outcome ${o}`}, o);
const alertLink = (id) => el('a', {href: `#/alert/${encodeURIComponent(id)}`}, id);
const caseLink = (id) => el('a', {href: `#/case/${id}`}, `case ${id}`);

// ---- the live stream ---------------------------------------------------------------------------

function setConn(text) { document.getElementById('conn').textContent = text; }

async function stream() {
  if (state.stream) state.stream.abort();
  const ctl = new AbortController();
  state.stream = ctl;
  let delay = 1000;
  while (!ctl.signal.aborted) {
    try {
      const headers = token() ? {Authorization: `Bearer ${token()}`} : {};
      const res = await fetch('/api/stream', {headers, signal: ctl.signal});
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        throw new ApiError(res.status, body.error || res.statusText);
      }
      setConn('live');
      delay = 1000;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          dispatch(buf.slice(0, cut));
          buf = buf.slice(cut + 2);
        }
      }
      setConn('stream ended (run finished?)');
    } catch (err) {
      if (ctl.signal.aborted) return;
      setConn('not connected');
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        notice(explain(err));
        return;  // retried when a token is entered
      }
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

function dispatch(block) {
  let type = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) type = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (!data) return;
  const msg = JSON.parse(data);
  if (type === 'kpi') {
    state.kpi = msg;
    renderKpis();
  } else if (type === 'alert') {
    onLiveAlert(msg);
  } else if (type === 'dropped') {
    setConn(`live (skipped ${fmtInt(msg.dropped)} events: this tab fell behind)`);
  }
}

function matchesFilter(a) {
  const f = state.alerts;
  return (!f.outcome || a.outcome === f.outcome) && (!f.rule || ruleIds(a).includes(f.rule));
}

// A live alert goes on top of the first page, row by row: rows already there stay the same
// elements. While the pointer is over the queue or focus is in it, arrivals wait behind a
// "show" button instead, so nothing moves under a click.
function onLiveAlert(a) {
  const q = state.alerts;
  state.live += 1;
  if (!matchesFilter(a)) return renderQueueMeta();
  q.total += 1;
  if (q.offset !== 0) return renderQueueMeta();  // paging through older ones: leave them be
  if (queueHeld()) {
    state.pending.push(a);
    return renderQueueMeta();
  }
  insertAlert(a);
  renderQueueMeta();
}

function queueHeld() {
  const t = document.getElementById('queue');
  return !!t && (t.matches(':hover') || t.contains(document.activeElement));
}

function insertAlert(a) {
  const q = state.alerts;
  q.items.unshift(a);
  q.items.length = Math.min(q.items.length, PAGE);
  const body = document.querySelector('#queue tbody');
  if (!body) return;
  const row = alertRow(a);
  row.className = 'new';
  body.prepend(row);
  while (body.rows.length > PAGE) body.lastElementChild.remove();
}

function releaseQueue() {
  if (queueHeld()) return;
  const pending = state.pending;
  state.pending = [];
  for (const a of pending) insertAlert(a);
  renderQueueMeta();
}

// ---- overview ----------------------------------------------------------------------------------

function overview(main) {
  main.append(
      el('h2', {id: 'kpi-h'}, 'Live counters'),
      el('section', {class: 'card', 'aria-labelledby': 'kpi-h'},
          el('dl', {class: 'kpis', id: 'kpis'}),
          el('p', {class: 'muted', id: 'kpi-note'}, 'Waiting for the first kpi event…')),
      el('h2', {id: 'queue-h'}, 'Alert queue'),
      el('section', {class: 'card', 'aria-labelledby': 'queue-h'},
          el('form', {class: 'filters', id: 'filters', onsubmit: (e) => {
            e.preventDefault();
            state.alerts.outcome = document.getElementById('f-outcome').value;
            state.alerts.rule = document.getElementById('f-rule').value;
            loadQueue(0);
          }},
          el('label', {}, 'Outcome', el('select', {id: 'f-outcome'},
              el('option', {value: ''}, 'any'), el('option', {value: 'review'}, 'review'),
              el('option', {value: 'block'}, 'block'))),
          el('label', {}, 'Rule', el('select', {id: 'f-rule'}, el('option', {value: ''}, 'any'))),
          el('button', {type: 'submit'}, 'Filter')),
          el('div', {class: 'queue-bar'}, el('p', {class: 'muted', id: 'queue-meta'}),
              // Takes its space even when hidden, so showing it moves nothing.
              el('button', {type: 'button', id: 'show-new', class: 'invisible', onclick: () => {
                state.alerts.items.unshift(...state.pending.reverse());
                state.alerts.items.length = Math.min(state.alerts.items.length, PAGE);
                renderQueue();
              }}, 'Show new alerts')),
          el('table', {id: 'queue', onmouseleave: releaseQueue, onfocusout: () =>
            setTimeout(releaseQueue, 0)},
              el('thead', {}, el('tr', {}, ['Event', 'Time', 'Entity', 'Outcome', 'Score',
                'Reasons'].map((h) => el('th', {scope: 'col'}, h)))),
              el('tbody')),
          el('div', {class: 'pager'},
              el('button', {type: 'button', id: 'newer', onclick: () =>
                loadQueue(Math.max(0, state.alerts.offset - PAGE))}, '← Newer'),
              el('button', {type: 'button', id: 'older', onclick: () =>
                loadQueue(state.alerts.offset + PAGE)}, 'Older →'))),
      el('h2', {id: 'rules-h'}, 'Rule hits this run'),
      el('section', {class: 'card', 'aria-labelledby': 'rules-h'},
          el('div', {id: 'rule-chart'}, el('p', {class: 'muted'}, 'Loading rules…'))));
  document.getElementById('f-outcome').value = state.alerts.outcome;
  renderKpis();
  loadQueue(state.alerts.offset);
  loadRules();
}

function renderKpis() {
  const box = document.getElementById('kpis');
  const k = state.kpi;
  if (!box || !k) return;
  const items = [
    ['Events/s', fmtNum(k.events_per_second, 0)], ['Read', fmtInt(k.read)],
    ['Decided', fmtInt(k.decided)],
  ];
  for (const [o, n] of Object.entries(k.outcomes || {})) items.push([`Decided ${o}`, fmtInt(n)]);
  items.push(['Alerts', fmtInt(k.alerts)], ['Dead letters', fmtInt(k.dead_lettered)]);
  // Latency only when the engine reports it; nothing is made up here.
  for (const [name, v] of Object.entries(k)) {
    if (/p50|p99/.test(name) && typeof v === 'number') items.push([name, fmtNum(v, 2)]);
  }
  box.replaceChildren(...items.map(([t, v]) => el('div', {}, el('dt', {}, t), el('dd', {}, v))));
  const note = document.getElementById('kpi-note');
  note.textContent = k.stream_dropped ? `${fmtInt(k.stream_dropped)} stream events skipped for ` +
      'slow clients' : 'Updated about once a second from /api/stream.';
}

async function loadQueue(offset) {
  const q = state.alerts;
  const p = new URLSearchParams({limit: PAGE, offset});
  if (q.outcome) p.set('outcome', q.outcome);
  if (q.rule) p.set('rule', q.rule);
  try {
    const page = await api(`/api/alerts?${p}`);
    q.offset = offset;
    q.items = page.alerts;
    q.total = page.total;
    renderQueue();
  } catch (err) {
    notice(explain(err));
  }
}

function renderQueueMeta() {
  const q = state.alerts;
  const meta = document.getElementById('queue-meta');
  if (!meta) return;
  const last = q.offset + q.items.length;
  meta.textContent = q.items.length ? `Alerts ${fmtInt(q.offset + 1)}–${fmtInt(last)}` +
      `${q.outcome || q.rule ? ' matching the filter' : ''}; ${fmtInt(q.total)} stored in all, ` +
      `newest first; ${fmtInt(state.live)} arrived live since this page opened.` :
      'No alerts yet.';
  meta.dataset.live = state.live;
  const show = document.getElementById('show-new');
  show.classList.toggle('invisible', state.pending.length === 0);
  show.textContent = `Show ${fmtInt(state.pending.length)} new alert` +
      `${state.pending.length === 1 ? '' : 's'}`;
  document.getElementById('newer').disabled = q.offset === 0;
  document.getElementById('older').disabled = q.items.length < PAGE;
}

function alertRow(a) {
  return el('tr', {}, el('td', {}, alertLink(a.event_id)), el('td', {}, a.event_time || ''),
      el('td', {}, a.key || ''), el('td', {}, outcomeTag(a.outcome)),
      el('td', {}, fmtNum(a.score, 1)),
      el('td', {}, (a.reasons || []).map((r) => r.code).join(', ')));
}

function renderQueue() {
  const body = document.querySelector('#queue tbody');
  if (!body) return;
  state.pending = [];
  body.replaceChildren(...state.alerts.items.map(alertRow));
  renderQueueMeta();
}

async function loadRules() {
  const box = document.getElementById('rule-chart');
  if (!box) return;
  try {
    state.rules = await api('/api/rules');
  } catch (err) {
    box.replaceChildren(el('p', {class: 'muted'}, explain(err)));
    return;
  }
  const rules = state.rules.rules || [];
  const select = document.getElementById('f-rule');
  if (select && select.options.length === 1) {
    for (const r of rules) select.append(el('option', {value: r.id}, r.id));
    select.value = state.alerts.rule;
  }
  box.replaceChildren(ruleChart(rules));
}

// A horizontal bar per rule, drawn as SVG with a text table for screen readers.
function ruleChart(rules) {
  const sorted = [...rules].sort((a, b) => (b.hits || 0) - (a.hits || 0));
  const max = Math.max(1, ...sorted.map((r) => r.hits || 0));
  const rowH = 24;
  const labelW = 20 + 7.5 * Math.max(8, ...sorted.map((r) => r.id.length +
      (r.mode === 'shadow' ? 9 : 0)));
  const barW = 520;
  const g = svg('svg', {viewBox: `0 0 ${labelW + barW + 90} ${sorted.length * rowH + 4}`,
    width: '100%', role: 'img', 'aria-labelledby': 'rules-h', id: 'rule-svg'});
  sorted.forEach((r, i) => {
    const y = i * rowH + 2;
    const w = Math.max(1, Math.round(((r.hits || 0) / max) * barW));
    const bar = svg('rect', {x: labelW, y, width: w, height: rowH - 6, 'data-rule': r.id,
      'data-hits': r.hits || 0,
      class: r.mode === 'shadow' ? 'bar shadow' : 'bar'});
    bar.append(svg('title', {}, `${r.id}: ${r.hits || 0} hits${r.mode === 'shadow' ?
      ' (shadow)' : ''}`));
    g.append(svg('text', {x: labelW - 8, y: y + rowH - 11, 'text-anchor': 'end'},
        r.id + (r.mode === 'shadow' ? ' (shadow)' : '')), bar,
    svg('text', {x: labelW + w + 6, y: y + rowH - 11}, fmtInt(r.hits || 0)));
  });
  const table = el('table', {class: 'sr-table'},
      el('caption', {class: 'muted'}, `Version ${state.rules.version ?? '?'}; refreshed every 3 s`),
      el('thead', {}, el('tr', {}, el('th', {scope: 'col'}, 'Rule'),
          el('th', {scope: 'col'}, 'Action'), el('th', {scope: 'col'}, 'Mode'),
          el('th', {scope: 'col'}, 'Hits'))),
      el('tbody', {}, sorted.map((r) => el('tr', {}, el('td', {}, r.id), el('td', {}, r.action),
          el('td', {}, r.mode), el('td', {}, fmtInt(r.hits || 0))))));
  return el('div', {}, g, el('details', {}, el('summary', {}, 'As a table'), table));
}

// ---- one alert ---------------------------------------------------------------------------------

async function alertView(main, id) {
  main.append(el('p', {}, el('a', {href: '#/'}, '← Alert queue')), el('h2', {}, `Alert ${id}`));
  let d;
  try {
    d = await api(`/api/alerts/${encodeURIComponent(id)}`);
  } catch (err) {
    main.append(el('p', {}, explain(err)));
    return;
  }
  const a = d.alert;
  const drv = drivers(a);
  main.append(
      el('div', {class: 'grid2'},
          el('section', {class: 'card', 'aria-label': 'Decision'},
              el('dl', {class: 'facts'},
                  el('dt', {}, 'Outcome'), el('dd', {id: 'alert-outcome'}, outcomeTag(a.outcome)),
                  el('dt', {}, 'Score'), el('dd', {}, fmtNum(a.score, 2)),
                  a.model_score !== undefined && [el('dt', {}, 'Model score'),
                    el('dd', {}, fmtNum(a.model_score, 3))],
                  el('dt', {}, 'Entity'), el('dd', {}, d.entity),
                  el('dt', {}, 'Event time'), el('dd', {}, a.event_time),
                  el('dt', {}, 'Cases'), el('dd', {}, d.cases.length ?
                    d.cases.flatMap((c, i) => [i ? ', ' : '', caseLink(c)]) : 'none')),
              el('h3', {}, 'Narrative'),
              el('p', {id: 'narrative'}, a.narrative || 'No narrative for this alert.'),
              el('h3', {}, 'Reasons'),
              el('ul', {class: 'plain', id: 'reasons'}, (a.reasons || []).map((r) => el('li', {},
                  el('strong', {}, r.code), ` (+${fmtNum(r.score, 1)}${r.action ?
                    `, ${r.action}` : ''}): ${r.detail}`))),
              drv.length > 0 && [el('h3', {}, 'Model drivers'), el('ul', {class: 'plain'},
                  drv.map((x) => el('li', {}, `${x.name}: ${x.value > 0 ? '+' : ''}${x.value}`)))]),
          el('section', {class: 'card', 'aria-labelledby': 'triage-h'},
              el('h3', {id: 'triage-h'}, 'Triage'),
              el('form', {class: 'stack', id: 'open-case', onsubmit: async (e) => {
                e.preventDefault();
                const title = document.getElementById('case-title').value;
                try {
                  const c = await api('/api/cases', {alerts: [a.event_id], title});
                  notice(`Opened case ${c.id}.`, true);
                  location.hash = `#/case/${c.id}`;
                } catch (err) {
                  notice(explain(err));
                }
              }},
              el('label', {}, 'Case title', el('input', {id: 'case-title', size: 30,
                value: `${ruleIds(a).join(', ') || a.outcome} on ${d.entity}`})),
              el('button', {type: 'submit'}, 'Open a case from this alert')),
              el('h3', {}, "The entity's other alerts"),
              d.entity_recent.length ? el('table', {},
                  el('thead', {}, el('tr', {}, ['Event', 'Time', 'Outcome', 'Score']
                      .map((h) => el('th', {scope: 'col'}, h)))),
                  el('tbody', {}, d.entity_recent.map((r) => el('tr', {},
                      el('td', {}, alertLink(r.event_id)), el('td', {}, r.event_time),
                      el('td', {}, outcomeTag(r.outcome)), el('td', {}, fmtNum(r.score, 1))))))
                : el('p', {class: 'muted'}, 'None stored.'))),
      el('details', {}, el('summary', {}, 'The event as received'),
          el('pre', {}, JSON.stringify(a.event || {}, null, 2))));
}

// ---- cases -------------------------------------------------------------------------------------

async function casesView(main) {
  main.append(el('h2', {}, 'Cases'));
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const status = params.get('status') || '';
  main.append(el('form', {class: 'filters', onsubmit: (e) => {
    e.preventDefault();
    const s = document.getElementById('f-status').value;
    location.hash = s ? `#/cases?status=${s}` : '#/cases';
  }}, el('label', {}, 'Status', el('select', {id: 'f-status'}, el('option', {value: ''}, 'any'),
      el('option', {value: 'open'}, 'open'), el('option', {value: 'closed'}, 'closed'))),
  el('button', {type: 'submit'}, 'Filter')));
  document.getElementById('f-status').value = status;
  let page;
  try {
    page = await api(`/api/cases?limit=100${status ? `&status=${status}` : ''}`);
  } catch (err) {
    main.append(el('p', {}, explain(err)));
    return;
  }
  main.append(el('p', {class: 'muted'}, `${fmtInt(page.total)} cases, newest first.`),
      el('table', {}, el('thead', {}, el('tr', {}, ['Case', 'Title', 'Status', 'Disposition',
        'Assignee', 'Alerts', 'Opened'].map((h) => el('th', {scope: 'col'}, h)))),
      el('tbody', {}, page.cases.map((c) => el('tr', {}, el('td', {}, caseLink(c.id)),
          el('td', {}, c.title), el('td', {}, c.status), el('td', {}, c.disposition || ''),
          el('td', {}, c.assignee || ''), el('td', {}, c.alerts.length),
          el('td', {}, `${c.created_at} by ${c.created_by}`))))));
}

async function caseView(main, id) {
  main.append(el('p', {}, el('a', {href: '#/cases'}, '← Cases')));
  let c;
  try {
    c = await api(`/api/cases/${id}`);
  } catch (err) {
    main.append(el('h2', {}, `Case ${id}`), el('p', {}, explain(err)));
    return;
  }
  const open = c.status === 'open';
  const act = (path, body, done) => async (e) => {
    e.preventDefault();
    try {
      await api(`/api/cases/${id}/${path}`, body());
      notice(done, true);
      route();
    } catch (err) {
      notice(explain(err));
    }
  };
  main.append(el('h2', {}, `Case ${c.id}: ${c.title || '(untitled)'}`),
      el('div', {class: 'grid2'},
          el('section', {class: 'card', 'aria-label': 'Case'},
              el('dl', {class: 'facts'},
                  el('dt', {}, 'Status'), el('dd', {id: 'case-status'}, c.status),
                  el('dt', {}, 'Disposition'), el('dd', {id: 'case-disposition'},
                      c.disposition || '–'),
                  el('dt', {}, 'Assignee'), el('dd', {}, c.assignee || 'nobody'),
                  el('dt', {}, 'Opened'), el('dd', {}, `${c.created_at} by ${c.created_by}`),
                  el('dt', {}, 'Updated'), el('dd', {}, c.updated_at),
                  c.closed_at && [el('dt', {}, 'Closed'), el('dd', {}, c.closed_at)]),
              el('h3', {}, 'Alerts'),
              el('ul', {class: 'plain'}, (c.alert_details || []).map((a) => el('li', {},
                  alertLink(a.event_id), ' ', outcomeTag(a.outcome), ` score ${fmtNum(a.score, 1)}`,
                  a.narrative ? el('div', {class: 'muted'}, a.narrative) : null))),
              el('h3', {}, 'Comments'),
              (c.comments || []).length ? el('ul', {class: 'plain', id: 'comments'},
                  c.comments.map((m) => el('li', {}, el('strong', {}, m.author || m.actor || ''),
                      ` ${m.at || m.created_at || ''}: ${m.text}`)))
                : el('p', {class: 'muted'}, 'No comments.')),
          el('section', {class: 'card', 'aria-label': 'Actions'},
              open ? [
                el('form', {class: 'stack', onsubmit: act('assign', () => ({assignee:
                  document.getElementById('assignee').value}), 'Assigned.')},
                el('label', {}, 'Assign to', el('input', {id: 'assignee', value: c.assignee || ''})),
                el('button', {type: 'submit'}, 'Assign')),
                el('form', {class: 'stack', id: 'close-form', onsubmit: act('close', () => ({
                  disposition: document.getElementById('disposition').value,
                  comment: document.getElementById('close-comment').value}), 'Case closed.')},
                el('label', {}, 'Disposition', el('select', {id: 'disposition'},
                    el('option', {value: 'fraud'}, 'fraud'),
                    el('option', {value: 'not_fraud'}, 'not fraud'),
                    el('option', {value: 'inconclusive'}, 'inconclusive'))),
                el('label', {}, 'Closing comment (optional)',
                    el('input', {id: 'close-comment', size: 28})),
                el('button', {type: 'submit'}, 'Close case')),
              ] : el('p', {}, `Closed as ${c.disposition}.`),
              el('form', {class: 'stack', onsubmit: act('comments', () => ({text:
                document.getElementById('comment').value}), 'Comment added.')},
              el('label', {}, 'Comment', el('textarea', {id: 'comment', rows: 2, cols: 34})),
              el('button', {type: 'submit'}, 'Add comment')))),
      el('h2', {}, 'History'),
      el('section', {class: 'card'}, historyTable(c.history || [], 'history')),
      el('h2', {}, 'Audit log'),
      el('section', {class: 'card', id: 'audit'}, el('p', {class: 'muted'}, 'Loading…')));
  const box = document.getElementById('audit');
  try {
    const log = await api(`/api/audit?object=case/${id}`);
    box.replaceChildren(historyTable(log.entries || [], 'audit-table'));
  } catch (err) {
    box.replaceChildren(el('p', {class: 'muted'}, err.status === 403 ?
      'The audit log needs an admin token.' : explain(err)));
  }
}

// Audit entries as a table: who did what, and which of the case's fields it changed.
function historyTable(entries, id) {
  if (!entries.length) return el('p', {class: 'muted'}, 'Nothing yet.');
  const show = (v) => (v === null || v === undefined || v === '' ? '–' :
    typeof v === 'object' ? JSON.stringify(v) : String(v));
  const changes = (before, after) => {
    if (!after || typeof after !== 'object') return show(after);
    return Object.keys(after).filter((k) => k !== 'updated_at' && (!before ||
        JSON.stringify(before[k]) !== JSON.stringify(after[k])))
        .filter((k) => before || ['status', 'title', 'alerts'].includes(k))
        .map((k) => (before ? `${k}: ${show(before[k])} → ${show(after[k])}` :
          `${k}: ${show(after[k])}`)).join('; ');
  };
  return el('table', {id}, el('thead', {}, el('tr', {}, ['When', 'Who', 'Action', 'Changes']
      .map((h) => el('th', {scope: 'col'}, h)))),
  el('tbody', {}, entries.map((e) => el('tr', {}, el('td', {}, e.at), el('td', {}, e.actor),
      el('td', {}, e.action), el('td', {}, changes(e.before, e.after))))));
}

// ---- routing -----------------------------------------------------------------------------------

let rulesTimer = null;

function route() {
  const main = document.getElementById('main');
  main.replaceChildren();
  clearInterval(rulesTimer);
  const h = location.hash.replace(/^#/, '') || '/';
  let m;
  if ((m = /^\/alert\/(.+)$/.exec(h))) alertView(main, decodeURIComponent(m[1]));
  else if ((m = /^\/case\/(\d+)$/.exec(h))) caseView(main, m[1]);
  else if (/^\/cases/.test(h)) casesView(main);
  else {
    overview(main);
    rulesTimer = setInterval(loadRules, 3000);
  }
}

function init() {
  const form = document.getElementById('token-form');
  const input = document.getElementById('token');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('vigil.token', input.value.trim());
    input.value = '';
    input.placeholder = 'token in use (this tab only)';
    notice('');
    stream();
    route();
  });
  document.getElementById('token-forget').addEventListener('click', () => {
    sessionStorage.removeItem('vigil.token');
    input.placeholder = 'paste a Bearer token';
    stream();
    route();
  });
  if (token()) input.placeholder = 'token in use (this tab only)';
  window.addEventListener('hashchange', () => {
    notice('');
    route();
    document.getElementById('main').focus();
  });
  stream();
  route();
}

document.addEventListener('DOMContentLoaded', init);
