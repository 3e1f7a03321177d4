// sluice's log viewer: plain ES2020, no dependencies, no build step.
//
// Every element is made with DOM APIs and filled with textContent (never innerHTML), so nothing a
// log entry carries can become markup. The key lives in this tab's sessionStorage only.
'use strict';

const KEY_STORAGE = 'sluice.readKey';
const LEVELS = ['debug', 'info', 'warning', 'error', 'critical'];
const PAGE_SIZE = 100;
const FOLLOW_EVERY_MS = 2000;
const STATS_EVERY_MS = 10000; // while following, the chart is asked again at most this often
const MAX_BUCKETS = 120;
const INTERVALS = [['1m', 60e3], ['5m', 300e3], ['1h', 3600e3], ['1d', 86400e3]];
const PRESETS = { '15m': 15 * 60e3, '1h': 3600e3, '24h': 86400e3 };
const SVG = 'http://www.w3.org/2000/svg';

// The API's base path: this page is <base>/ui, so drop the last segment. That is "/" under
// chalice local (http://127.0.0.1:8000/ui) and "/_aws/execute-api/<id>/api/" under a LocalStack
// or API Gateway stage; every call below is relative to it.
const API_BASE = location.pathname.replace(/\/ui\/?$/, '/');

const state = {
  generation: 0, // bumped by every reload: answers to an older one are dropped
  seen: new Set(), // ids in the list, so follow mode never shows an entry twice
  cursor: null, // GET /logs's next_cursor, for "Load more"
  followCursor: null, // GET /logs/tail's cursor: what was stored after what we have seen
  followTimer: null,
  range: null, // the range the list was loaded for
  statsAt: 0, // when the chart was last drawn (Date.now())
};

function $(id) {
  return document.getElementById(id);
}

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function makeSvg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

// --- the key -------------------------------------------------------------------------------

function readKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

function showKeyState() {
  const key = readKey();
  $('key-state').textContent = key ? 'a key is in use (in this tab only)' : 'no key: paste a read key';
  $('forget-key').disabled = !key;
}

function useKey(event) {
  event.preventDefault();
  const key = $('key').value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORAGE, key);
  $('key').value = ''; // the key is not left on the page
  showKeyState();
  reload();
}

function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
  stopFollowing();
  state.generation += 1;
  clearResults();
  clearError();
  showKeyState();
  $('status').textContent = 'Key forgotten. Paste a read key to see entries.';
}

// --- talking to the API --------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body, headers) {
    super(`HTTP ${status}`);
    this.status = status;
    this.error = (body && body.error) || {};
    this.retryAfter = Number(headers.get('Retry-After')) || null;
  }
}

async function api(path, params) {
  const query = params.toString();
  const response = await fetch(API_BASE + path + (query ? `?${query}` : ''), {
    headers: { Authorization: `Bearer ${readKey()}` },
    cache: 'no-store',
  });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null; // a gateway's non-JSON answer: the status says enough
  }
  if (!response.ok) throw new ApiError(response.status, body, response.headers);
  return body;
}

// The API's refusals in words; the request id is what an operator looks for in the logs.
function describe(error) {
  if (!(error instanceof ApiError)) return `The API could not be reached (${error.message}).`;
  const message = error.error.message || '';
  const request = error.error.request_id ? ` (request id ${error.error.request_id})` : '';
  switch (error.status) {
    case 400:
      return `The API refused this search: ${message}${details(error.error.details)}`;
    case 401:
      return 'This key is not valid: it is unknown, revoked or mistyped. Paste a key with logs:read.';
    case 403:
      return `This key may not read these logs: ${message}`;
    case 429:
      return error.retryAfter
        ? `Rate limited, retry in ${error.retryAfter} s.`
        : `Rate limited: ${message}`;
    case 503:
      return `The API is unavailable for now: ${message}${request}. Try again shortly.`;
    default:
      return `The API answered ${error.status}: ${message}${request}`;
  }
}

function details(list) {
  if (!Array.isArray(list) || list.length === 0) return '';
  // each detail is {"field", "message"}; the last may be a line counting the rest
  const parts = list.map((d) => (d && typeof d === 'object' ? [d.field, d.message].filter(Boolean).join(': ') : String(d)));
  return ` (${parts.join('; ')})`;
}

function showError(error) {
  $('error').textContent = describe(error);
  $('error').hidden = false;
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

// --- what the filters ask for --------------------------------------------------------------

// The chosen time range as Dates; a custom one must parse (RFC 3339; "until" may be left empty).
function timeRange() {
  const choice = $('range').value;
  const now = new Date();
  if (choice !== 'custom') return { since: new Date(now - PRESETS[choice]), until: now };
  const since = new Date($('since').value.trim());
  const untilText = $('until').value.trim();
  const until = untilText ? new Date(untilText) : now;
  if (Number.isNaN(since.getTime()) || Number.isNaN(until.getTime())) {
    throw new Error('Since and until must be times such as 2026-01-31T09:00:00Z.');
  }
  if (since >= until) throw new Error('Since must be before until.');
  return { since, until };
}

function attributeFilters() {
  const filters = [];
  for (const row of $('attribute-rows').children) {
    const [name, value] = row.querySelectorAll('input');
    if (name.value.trim()) filters.push([name.value.trim(), value.value]);
  }
  return filters;
}

// Source and level: what every route takes; q and attributes: what the list and the tail take.
function baseParams() {
  const params = new URLSearchParams();
  if ($('source').value.trim()) params.set('source', $('source').value.trim());
  if ($('level').value) params.set('level', $('level').value);
  return params;
}

function searchParams() {
  const params = baseParams();
  if ($('q').value.trim()) params.set('q', $('q').value.trim());
  for (const [name, value] of attributeFilters()) params.append(`attr.${name}`, value);
  return params;
}

// The smallest interval that keeps the chart within MAX_BUCKETS bars.
function intervalFor(range) {
  const span = range.until - range.since;
  const found = INTERVALS.find(([, ms]) => span / ms <= MAX_BUCKETS);
  return found || INTERVALS[INTERVALS.length - 1];
}

// --- loading -------------------------------------------------------------------------------

async function reload(event) {
  if (event) event.preventDefault();
  stopFollowing();
  const generation = ++state.generation;
  clearResults();
  clearError();
  if (!readKey()) {
    $('status').textContent = 'Paste a read key (logs:read) to see entries.';
    return;
  }
  let range;
  try {
    range = timeRange();
  } catch (error) {
    $('error').textContent = error.message;
    $('error').hidden = false;
    return;
  }
  $('status').textContent = 'Loading…';
  $('histogram-note').hidden = !($('q').value.trim() || attributeFilters().length);
  await Promise.all([loadStats(generation, range), loadPage(generation, range, null)]);
  if (generation === state.generation && $('follow').checked) startFollowing();
}

async function loadPage(generation, range, cursor) {
  const params = searchParams();
  params.set('since', range.since.toISOString());
  params.set('until', range.until.toISOString());
  params.set('limit', String(PAGE_SIZE));
  if (cursor) params.set('cursor', cursor);
  try {
    const page = await api('logs', params);
    if (generation !== state.generation) return;
    for (const entry of page.logs) addEntry(entry, false);
    state.cursor = page.next_cursor;
    state.range = range;
    $('more').hidden = !page.next_cursor;
    showCount();
  } catch (error) {
    if (generation !== state.generation) return;
    $('status').textContent = '';
    showError(error);
  }
}

function loadMore() {
  if (state.cursor && state.range) loadPage(state.generation, state.range, state.cursor);
}

function showCount() {
  const shown = state.seen.size;
  $('empty').hidden = shown > 0;
  $('status').textContent = `${shown} ${shown === 1 ? 'entry' : 'entries'}, newest first${state.cursor ? ' (more below)' : ''}.`;
}

async function loadStats(generation, range) {
  const [interval] = intervalFor(range);
  const params = baseParams();
  params.set('since', range.since.toISOString());
  params.set('until', range.until.toISOString());
  params.set('interval', interval);
  params.set('by', 'level');
  try {
    const stats = await api('logs/stats', params);
    if (generation !== state.generation) return;
    state.statsAt = Date.now();
    drawHistogram(stats);
  } catch (error) {
    if (generation !== state.generation) return;
    showError(error);
  }
}

// --- the entries ---------------------------------------------------------------------------

function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

// Add one entry's row where its timestamp puts it (newest first); false if it is shown already.
// Follow mode brings entries in the order they were stored, which is not always the order of
// their timestamps: a late one goes to its place in time, marked as new.
function addEntry(entry, isNew) {
  if (state.seen.has(entry.id)) return false;
  state.seen.add(entry.id);
  const row = make('tr', `entry level-${entry.level}${isNew ? ' new' : ''}`);
  row.dataset.id = entry.id;
  row.dataset.timestamp = entry.timestamp;
  row.tabIndex = 0;
  row.setAttribute('aria-expanded', 'false');
  row.append(
    make('td', 'time', formatTime(entry.timestamp)),
    make('td', 'level', entry.level),
    make('td', 'source', entry.source),
    make('td', 'message', entry.message),
  );
  row.addEventListener('click', () => toggleDetail(row, entry));
  row.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      toggleDetail(row, entry);
    }
  });
  const rows = $('entry-rows');
  if (!isNew) {
    rows.append(row); // pages arrive newest first, each older than the last
    return true;
  }
  const time = Date.parse(entry.timestamp);
  const later = [...rows.querySelectorAll('tr.entry')].find((other) => Date.parse(other.dataset.timestamp) < time);
  rows.insertBefore(row, later || null);
  return true;
}

// An entry opened: its ids, times and attributes, in a row under it.
function toggleDetail(row, entry) {
  const next = row.nextElementSibling;
  if (next && next.classList.contains('detail')) {
    next.remove();
    row.setAttribute('aria-expanded', 'false');
    return;
  }
  const fields = make('dl');
  for (const name of ['id', 'timestamp', 'received_at', 'stored_at', 'key_id', 'source', 'level']) {
    fields.append(make('dt', '', name), make('dd', '', entry[name] === null ? 'null' : entry[name]));
  }
  const cell = make('td');
  cell.colSpan = 4;
  cell.append(
    make('p', 'full-message', entry.message),
    fields,
    make('h3', '', 'attributes'),
    make('pre', 'attributes', JSON.stringify(entry.attributes || {}, null, 2)),
  );
  const detail = make('tr', 'detail');
  detail.dataset.id = entry.id;
  detail.append(cell);
  row.after(detail);
  row.setAttribute('aria-expanded', 'true');
}

function clearResults() {
  state.seen.clear();
  state.cursor = null;
  state.range = null;
  $('entry-rows').replaceChildren();
  $('histogram').replaceChildren();
  $('histogram-axis').replaceChildren();
  $('histogram-legend').replaceChildren();
  $('histogram-note').hidden = true;
  $('empty').hidden = true;
  $('more').hidden = true;
  $('status').textContent = '';
}

// --- the histogram -------------------------------------------------------------------------

// One bar per bucket, its levels stacked, as an SVG built with DOM calls. Each bar keeps its
// bucket's start (data-start) and each level's part its count (data-count); clicking a bar
// narrows the range to its bucket.
function drawHistogram(stats) {
  const buckets = stats.buckets;
  const chart = $('histogram');
  chart.dataset.since = stats.since;
  chart.dataset.until = stats.until;
  chart.dataset.interval = stats.interval;
  const totals = buckets.map((b) => Object.values(b.counts).reduce((sum, n) => sum + n, 0));
  const highest = Math.max(1, ...totals);
  const intervalMs = Object.fromEntries(INTERVALS)[stats.interval];
  const svg = makeSvg('svg', {
    viewBox: `0 0 ${Math.max(1, buckets.length) * 10} 100`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': `${stats.total} entries by level, ${stats.interval} bars`,
  });
  buckets.forEach((bucket, i) => {
    const bar = makeSvg('g', { class: 'bucket', 'data-start': bucket.start });
    bar.setAttribute('tabindex', '0');
    bar.setAttribute('role', 'button');
    const summary = describeBucket(bucket, totals[i]);
    bar.setAttribute('aria-label', summary);
    const title = makeSvg('title', {});
    title.textContent = summary;
    bar.append(title, makeSvg('rect', { class: 'hit', x: i * 10, y: 0, width: 10, height: 100 }));
    let top = 100;
    for (const level of LEVELS) {
      const count = bucket.counts[level] || 0;
      if (!count) continue;
      const height = (count / highest) * 100;
      top -= height;
      const part = { class: `bar level-${level}`, 'data-level': level, 'data-count': count };
      bar.append(makeSvg('rect', { ...part, x: i * 10 + 1, y: top, width: 8, height }));
    }
    const narrow = () => narrowTo(new Date(bucket.start), new Date(Date.parse(bucket.start) + intervalMs));
    bar.addEventListener('click', narrow);
    bar.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        narrow();
      }
    });
    svg.append(bar);
  });
  chart.replaceChildren(svg);
  $('histogram-axis').replaceChildren(
    make('span', '', formatTime(stats.since)),
    make('span', '', `${stats.interval} bars, highest ${Math.max(0, ...totals)}`),
    make('span', '', formatTime(stats.until)),
  );
  drawLegend(buckets, stats.total);
}

function describeBucket(bucket, total) {
  const parts = LEVELS.filter((level) => bucket.counts[level]).map((level) => `${bucket.counts[level]} ${level}`);
  return `${formatTime(bucket.start)}: ${total ? parts.join(', ') : 'no entries'}`;
}

function drawLegend(buckets, total) {
  const legend = $('histogram-legend');
  legend.replaceChildren(make('span', 'total', `${total} ${total === 1 ? 'entry' : 'entries'}`));
  for (const level of LEVELS) {
    const count = buckets.reduce((sum, b) => sum + (b.counts[level] || 0), 0);
    if (!count) continue;
    const item = make('span', `legend level-${level}`);
    item.dataset.level = level;
    item.dataset.count = String(count);
    item.append(make('span', 'swatch'), make('span', '', `${level} ${count}`));
    legend.append(item);
  }
}

function narrowTo(since, until) {
  $('range').value = 'custom';
  $('custom-range').hidden = false;
  $('since').value = since.toISOString();
  $('until').value = until.toISOString();
  reload();
}

// --- follow mode ---------------------------------------------------------------------------

function startFollowing() {
  stopFollowing();
  state.followCursor = null; // the first poll answers the latest entries and where they end
  const generation = state.generation;
  const poll = async () => {
    let wait = FOLLOW_EVERY_MS;
    try {
      const params = searchParams();
      params.set('limit', String(PAGE_SIZE));
      if (state.followCursor) params.set('cursor', state.followCursor);
      const page = await api('logs/tail', params);
      if (generation !== state.generation || !$('follow').checked) return;
      state.followCursor = page.next_cursor;
      let added = 0;
      for (const entry of page.logs) if (addEntry(entry, true)) added += 1;
      clearError();
      showCount();
      if (added && Date.now() - state.statsAt > STATS_EVERY_MS) refreshStats(generation);
    } catch (error) {
      if (generation !== state.generation) return;
      showError(error);
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        $('follow').checked = false; // asking again cannot help (and a bad key costs the address)
        return;
      }
      if (error instanceof ApiError && error.retryAfter) wait = Math.max(wait, error.retryAfter * 1000);
    }
    if (generation === state.generation && $('follow').checked) state.followTimer = setTimeout(poll, wait);
  };
  poll();
}

function stopFollowing() {
  clearTimeout(state.followTimer);
  state.followTimer = null;
}

// A preset range slides with the clock while following; a custom one stays where it is.
function refreshStats(generation) {
  try {
    loadStats(generation, timeRange());
  } catch (_) {
    // an invalid custom range was already reported by reload
  }
}

function toggleFollow() {
  if ($('follow').checked && readKey()) startFollowing();
  else stopFollowing();
}

// --- attribute rows ------------------------------------------------------------------------

function addAttributeRow() {
  const row = make('div', 'attribute');
  const name = make('input');
  name.placeholder = 'name';
  name.setAttribute('aria-label', 'attribute name');
  name.spellcheck = false;
  const value = make('input');
  value.placeholder = 'value';
  value.setAttribute('aria-label', 'attribute value');
  value.spellcheck = false;
  const remove = make('button', 'remove', '×');
  remove.type = 'button';
  remove.setAttribute('aria-label', 'remove this attribute filter');
  remove.addEventListener('click', () => {
    row.remove();
    reload();
  });
  row.append(name, make('span', '', '='), value, remove);
  $('attribute-rows').append(row);
  name.focus();
}

// --- start ---------------------------------------------------------------------------------

function start() {
  $('key-form').addEventListener('submit', useKey);
  $('forget-key').addEventListener('click', forgetKey);
  $('filters').addEventListener('submit', reload);
  $('level').addEventListener('change', () => reload());
  $('range').addEventListener('change', () => {
    const custom = $('range').value === 'custom';
    $('custom-range').hidden = !custom;
    if (!custom) reload();
  });
  $('follow').addEventListener('change', toggleFollow);
  $('add-attribute').addEventListener('click', addAttributeRow);
  $('more').addEventListener('click', loadMore);
  showKeyState();
  reload();
}

start();
