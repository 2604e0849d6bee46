/**
 * GET / : the dashboard. One self-contained page (inline CSS and vanilla JS, no
 * external resources) that polls the admin API and offers the operator actions.
 *
 * The page is built once, at module load. Every string that comes from the API
 * is inserted with textContent or as an attribute value, never as markup, and a
 * Content-Security-Policy (hashes of the one inline script and style) forbids
 * any other script, so even a hostile upstream URL or reason cannot run code.
 */
import { createHash } from 'node:crypto'

const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #f5f6f8; --panel: #ffffff; --text: #16181d; --muted: #4a5160; --line: #d5d9e0;
  --stable: #5b6b82; --canary: #c2410c; --track: #e3e7ed; --focus: #1d4ed8;
  --ok-bg: #dcfce7; --ok-text: #14532d; --err-bg: #fee2e2; --err-text: #7f1d1d;
  --btn: #1f2937; --btn-text: #ffffff; --danger: #b91c1c;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #111318; --panel: #1b1e25; --text: #eceef2; --muted: #aab1bf; --line: #343945;
    --stable: #8fa3bf; --canary: #fb923c; --track: #2b303a; --focus: #93c5fd;
    --ok-bg: #14361f; --ok-text: #bbf7d0; --err-bg: #451a1a; --err-text: #fecaca;
    --btn: #e5e7eb; --btn-text: #111318; --danger: #f87171;
  }
}
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--text); }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .25rem 1rem; padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--panel); }
header h1 { margin: 0; font-size: 1.15rem; }
#conn { color: var(--muted); font-size: .85rem; }
#conn.down { color: var(--err-text); background: var(--err-bg); padding: 0 .4rem; border-radius: 4px; }
main { display: grid; gap: 1rem; padding: 1rem; max-width: 1200px; margin: 0 auto; grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: .9rem 1rem; min-width: 0; }
section h2 { margin: 0 0 .6rem; font-size: 1rem; }
.wide { grid-column: 1 / -1; }
.muted { color: var(--muted); }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.phase { display: inline-block; padding: .15rem .6rem; border-radius: 999px; font-weight: 700; font-size: 1.1rem; letter-spacing: .02em; color: #fff; background: #4b5563; }
.phase[data-phase="idle"] { background: #4b5563; }
.phase[data-phase="progressing"] { background: #1d4ed8; }
.phase[data-phase="paused"] { background: #fbbf24; color: #1c1917; }
.phase[data-phase="baking"] { background: #6d28d9; }
.phase[data-phase="succeeded"] { background: #15803d; }
.phase[data-phase="rolled_back"] { background: #b91c1c; }
.phase[data-phase="aborted"] { background: #9a3412; }
.phase[data-phase="unknown"] { background: #4b5563; }
.row { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem .75rem; margin: .75rem 0 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
.bar { position: relative; height: 1.6rem; background: var(--stable); border-radius: 6px; overflow: hidden; margin: .5rem 0 .25rem; }
.bar .fill { position: absolute; inset: 0 auto 0 0; width: 0; background: var(--canary); transition: width .3s ease; }
.bar .tick { position: absolute; top: 0; bottom: 0; width: 2px; margin-left: -1px; background: var(--panel); opacity: .8; }
.legend { display: flex; justify-content: space-between; font-size: .85rem; color: var(--muted); }
.legend b { color: var(--text); }
.swatch { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px; margin-right: .3rem; vertical-align: -.05rem; }
.swatch.s { background: var(--stable); } .swatch.c { background: var(--canary); }
.steps { display: flex; flex-wrap: wrap; gap: .3rem; list-style: none; padding: 0; margin: .4rem 0 0; }
.steps li { border: 1px solid var(--line); border-radius: 4px; padding: 0 .4rem; font-size: .85rem; }
.steps li.done { color: var(--muted); }
.steps li.current { border-color: var(--text); font-weight: 700; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); }
#sides td, #sides th[scope="col"] { text-align: right; }
#sides td.url { text-align: right; font-size: .85rem; }
.verdict { font-weight: 700; text-transform: uppercase; font-size: .85rem; padding: 0 .4rem; border-radius: 4px; background: var(--track); }
.verdict[data-verdict="pass"] { background: var(--ok-bg); color: var(--ok-text); }
.verdict[data-verdict="fail"] { background: var(--err-bg); color: var(--err-text); }
#ended { border-left: 4px solid #b91c1c; }
#ended[data-phase="succeeded"] { border-left-color: #15803d; }
#ended[data-phase="aborted"] { border-left-color: #9a3412; }
#message { min-height: 1.5rem; margin: 0 0 .75rem; padding: 0; border-radius: 6px; }
#message.ok { background: var(--ok-bg); color: var(--ok-text); padding: .4rem .6rem; }
#message.error { background: var(--err-bg); color: var(--err-text); padding: .4rem .6rem; font-weight: 600; }
form { margin: 0; }
fieldset { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 .75rem; padding: .5rem .75rem .75rem; min-width: 0; }
legend { font-weight: 600; padding: 0 .3rem; }
label { display: block; font-size: .85rem; color: var(--muted); margin-bottom: .15rem; }
input { font: inherit; color: var(--text); background: var(--panel); border: 1px solid var(--muted); border-radius: 4px; padding: .35rem .5rem; min-width: 0; width: 100%; }
input[aria-invalid="true"] { border-color: var(--danger); outline: 2px solid var(--danger); }
.field { flex: 1 1 12rem; min-width: 0; }
.field.narrow { flex: 0 1 8rem; }
button { font: inherit; font-weight: 600; cursor: pointer; border: 1px solid transparent; border-radius: 6px; padding: .4rem .9rem; background: var(--btn); color: var(--btn-text); min-height: 2.25rem; }
button.danger { background: #b91c1c; color: #fff; }
button.secondary { background: transparent; color: var(--text); border-color: var(--muted); }
button:disabled { opacity: .55; cursor: progress; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; }
.inline-form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-end; }
#events-table td { font-size: .9rem; }
#events-table td.reason { overflow-wrap: anywhere; min-width: 12rem; }
#events-table .arrow { color: var(--muted); }
.spaced { margin-top: .6rem; }
.row.stretch { align-items: stretch; }
.note { margin: .4rem 0 0; font-size: .85rem; }
@media (max-width: 640px) {
  main { padding: .5rem; gap: .5rem; }
  section { padding: .75rem; }
  th, td { padding: .3rem .35rem; }
  #events-table thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  #events-table tr { display: block; padding: .4rem 0; border-bottom: 1px solid var(--line); }
  #events-table td { display: block; border: 0; padding: .05rem 0; }
  #events-table td::before { content: attr(data-label) ": "; color: var(--muted); }
  #events-table td.reason { min-width: 0; }
}
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`

const BODY = `
<header>
  <h1>canary-proxy</h1>
  <span id="conn" data-testid="conn" role="status">connecting…</span>
</header>
<main>
  <section aria-labelledby="h-rollout">
    <h2 id="h-rollout">Rollout</h2>
    <div class="row">
      <span id="phase" data-testid="phase" class="phase" data-phase="unknown">…</span>
      <span id="phase-hint" class="muted"></span>
    </div>
    <div id="weight-bar" data-testid="weight-bar" class="bar" role="progressbar" aria-label="Canary weight" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">
      <div class="fill" id="weight-fill"></div>
    </div>
    <div class="legend">
      <span><span class="swatch s"></span>stable <b id="stable-share">–</b></span>
      <span><span class="swatch c"></span>canary <b id="weight" data-testid="weight">–</b></span>
    </div>
    <dl class="facts">
      <dt>Step</dt><dd><span id="step" data-testid="step">–</span><ol id="steps" class="steps" aria-label="Steps (canary weight)"></ol></dd>
      <dt id="step-started-label">Step started</dt><dd id="step-started" data-testid="step-started">–</dd>
      <dt id="step-ends-label">Step ends</dt><dd id="step-ends" data-testid="step-ends">–</dd>
      <dt>Rollout #</dt><dd id="generation">–</dd>
    </dl>
  </section>

  <section aria-labelledby="h-decision">
    <h2 id="h-decision">Last decision</h2>
    <p id="decision-none" class="muted">No verdict yet.</p>
    <div id="decision" hidden>
      <div class="row"><span id="decision-verdict" data-testid="decision-verdict" class="verdict"></span><span id="decision-at" class="muted"></span></div>
      <p id="decision-reason" data-testid="decision-reason"></p>
    </div>
  </section>

  <section id="ended" aria-labelledby="h-ended" class="wide" hidden>
    <h2 id="h-ended">Rollout ended: <span id="ended-phase"></span></h2>
    <p id="reason" data-testid="reason"></p>
  </section>

  <section aria-labelledby="h-sides" class="wide">
    <h2 id="h-sides">Stable vs canary <span class="muted">(analysis window)</span></h2>
    <div class="table-wrap">
      <table id="sides" data-testid="sides">
        <thead><tr><th scope="col"><span class="sr-only">Figure</span></th><th scope="col">Stable</th><th scope="col">Canary</th></tr></thead>
        <tbody>
          <tr><th scope="row">URL</th><td class="url mono" id="stable-url" data-testid="stable-url">–</td><td class="url mono" id="canary-url" data-testid="canary-url">–</td></tr>
          <tr><th scope="row">Requests</th><td id="stable-requests" data-testid="stable-requests">–</td><td id="canary-requests" data-testid="canary-requests">–</td></tr>
          <tr><th scope="row">Errors</th><td id="stable-errors" data-testid="stable-errors">–</td><td id="canary-errors" data-testid="canary-errors">–</td></tr>
          <tr><th scope="row">Error rate</th><td id="stable-error-rate" data-testid="stable-error-rate">–</td><td id="canary-error-rate" data-testid="canary-error-rate">–</td></tr>
          <tr><th scope="row">p50</th><td id="stable-p50" data-testid="stable-p50">–</td><td id="canary-p50" data-testid="canary-p50">–</td></tr>
          <tr><th scope="row">p99</th><td id="stable-p99" data-testid="stable-p99">–</td><td id="canary-p99" data-testid="canary-p99">–</td></tr>
        </tbody>
      </table>
    </div>
  </section>

  <section aria-labelledby="h-controls" class="wide">
    <h2 id="h-controls">Operator controls</h2>
    <div id="message" data-testid="message" role="status" aria-live="polite"></div>
    <fieldset>
      <legend>Rollout</legend>
      <div class="actions">
        <button type="button" id="btn-pause" data-testid="pause">Pause</button>
        <button type="button" id="btn-resume" data-testid="resume">Resume</button>
        <button type="button" id="btn-promote" data-testid="promote">Promote</button>
        <button type="button" id="btn-abort" data-testid="abort" class="danger">Abort</button>
      </div>
      <div class="field spaced">
        <label for="abort-reason">Abort reason (optional)</label>
        <input id="abort-reason" data-testid="abort-reason" type="text" maxlength="500" autocomplete="off">
      </div>
    </fieldset>
    <div class="row stretch">
      <fieldset class="field">
        <legend>Set weight</legend>
        <form id="weight-form" class="inline-form" novalidate>
          <div class="field narrow">
            <label for="weight-input">Canary weight (%)</label>
            <input id="weight-input" data-testid="weight-input" type="number" min="0" max="100" step="0.01" inputmode="decimal" required>
          </div>
          <button type="submit" id="btn-set-weight" data-testid="set-weight">Set weight</button>
        </form>
        <p class="muted note">Pauses automation at that weight.</p>
      </fieldset>
      <fieldset class="field">
        <legend>Start a rollout</legend>
        <form id="start-form" class="inline-form" novalidate>
          <div class="field">
            <label for="start-canary">Canary URL (empty: the known canary)</label>
            <input id="start-canary" data-testid="start-canary" type="url" placeholder="http://10.0.0.7:8080" autocomplete="off" spellcheck="false">
          </div>
          <button type="submit" id="btn-start" data-testid="start">Start</button>
        </form>
      </fieldset>
    </div>
    <fieldset>
      <legend>Authorization</legend>
      <form id="token-form" class="inline-form" autocomplete="off">
        <div class="field">
          <label for="token">Admin token (kept in this tab only)</label>
          <input id="token" data-testid="token" type="password" autocomplete="off" spellcheck="false">
        </div>
        <button type="button" id="btn-forget" class="secondary">Forget token</button>
      </form>
    </fieldset>
  </section>

  <section aria-labelledby="h-events" class="wide">
    <h2 id="h-events">Recent events <span id="events-count" class="muted"></span></h2>
    <p id="events-none" class="muted">No events yet.</p>
    <div class="table-wrap">
      <table id="events-table" data-testid="events">
        <thead><tr><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">From → to</th><th scope="col">Reason</th></tr></thead>
        <tbody id="events"></tbody>
      </table>
    </div>
  </section>
</main>
`

// Client code. It is plain ES2017 with no template literals or backslashes, so
// it can sit in this TypeScript template string unchanged.
const SCRIPT = `
'use strict';
(function () {
  var TOKEN_KEY = 'canary-proxy.admin-token';
  var EVENTS_SHOWN = 50;
  var HINTS = {
    idle: 'No rollout under way.',
    progressing: 'Moving through the steps on its own.',
    paused: 'Automation paused; the weight holds.',
    baking: 'At 100%: final checks before success.',
    succeeded: 'The canary is the new stable.',
    rolled_back: 'A check failed: canary weight dropped to 0.',
    aborted: 'Stopped by an operator: canary weight 0.'
  };
  var ENDED = { succeeded: true, rolled_back: true, aborted: true };

  function $(id) { return document.getElementById(id); }
  function setText(id, text) { var el = $(id); if (el.textContent !== text) el.textContent = text; }
  function num(n) { return typeof n === 'number' && isFinite(n) ? n.toLocaleString('en-US') : '–'; }
  function ms(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '–';
    return (n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)) + ' ms';
  }
  function pct(ratio) { return typeof ratio === 'number' && isFinite(ratio) ? (ratio * 100).toFixed(2) + ' %' : '–'; }
  function weightText(w) { return typeof w === 'number' && isFinite(w) ? String(w) + '%' : '–'; }
  function duration(sec) {
    var h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), r = sec % 60;
    return h > 0 ? h + 'h ' + m + 'm' : m > 0 ? m + 'm ' + r + 's' : r + 's';
  }
  function str(v) { return typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v); }
  function time(iso) {
    var d = new Date(str(iso));
    if (isNaN(d.getTime())) return str(iso);
    return d.toLocaleTimeString('en-GB', { hour12: false });
  }
  function timeEl(iso) {
    var t = document.createElement('time');
    t.dateTime = str(iso);
    t.title = str(iso);
    t.textContent = time(iso);
    return t;
  }

  // ---- token ----------------------------------------------------------------
  var tokenInput = $('token');
  function storedToken() { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; } }
  function storeToken(v) { try { if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* storage off */ } }
  tokenInput.value = storedToken();
  tokenInput.addEventListener('input', function () { storeToken(tokenInput.value.trim()); });
  $('token-form').addEventListener('submit', function (e) { e.preventDefault(); });
  $('btn-forget').addEventListener('click', function () { tokenInput.value = ''; storeToken(''); say('ok', 'Token forgotten.'); });

  // ---- message area -----------------------------------------------------------
  var message = $('message');
  function say(kind, text) {
    message.className = kind;
    message.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    message.textContent = text;
  }

  // ---- rendering ----------------------------------------------------------------
  function renderSide(prefix, side) {
    if (!side) {
      setText(prefix + '-url', prefix === 'canary' ? 'no canary' : '–');
      ['requests', 'errors', 'error-rate', 'p50', 'p99'].forEach(function (k) { setText(prefix + '-' + k, '–'); });
      return;
    }
    setText(prefix + '-url', str(side.url));
    setText(prefix + '-requests', num(side.requests));
    setText(prefix + '-errors', num(side.errors));
    setText(prefix + '-error-rate', pct(side.errorRate));
    setText(prefix + '-p50', ms(side.p50Ms));
    setText(prefix + '-p99', ms(side.p99Ms));
  }

  function renderStatus(s) {
    var phase = str(s.phase) || 'unknown';
    var phaseEl = $('phase');
    phaseEl.setAttribute('data-phase', HINTS.hasOwnProperty(phase) ? phase : 'unknown');
    setText('phase', phase);
    setText('phase-hint', HINTS.hasOwnProperty(phase) ? HINTS[phase] : '');

    var w = typeof s.weight === 'number' && isFinite(s.weight) ? Math.max(0, Math.min(100, s.weight)) : 0;
    $('weight-fill').style.width = w + '%';
    var bar = $('weight-bar');
    bar.setAttribute('aria-valuenow', String(w));
    bar.setAttribute('aria-valuetext', 'canary ' + weightText(s.weight));
    setText('weight', weightText(s.weight));
    setText('stable-share', typeof s.weight === 'number' ? weightText(Math.round((100 - w) * 100) / 100) : '–');

    var steps = Array.isArray(s.steps) ? s.steps : [];
    var step = typeof s.step === 'number' ? s.step : null;
    setText('step', step !== null ? (step + 1) + ' of ' + steps.length + ' (' + weightText(steps[step]) + ')' : phase === 'paused' ? 'below the first step' : '–');
    var stepsKey = JSON.stringify([steps, step]);
    var list = $('steps');
    if (list.getAttribute('data-key') !== stepsKey) {
      list.setAttribute('data-key', stepsKey);
      list.textContent = '';
      while (bar.querySelector('.tick')) bar.removeChild(bar.querySelector('.tick'));
      steps.forEach(function (v, i) {
        var li = document.createElement('li');
        li.textContent = weightText(v);
        if (step !== null && i < step) li.className = 'done';
        if (step === i) { li.className = 'current'; li.setAttribute('aria-current', 'step'); }
        list.appendChild(li);
        if (typeof v === 'number' && v > 0 && v < 100) {
          var tick = document.createElement('span');
          tick.className = 'tick';
          tick.style.left = v + '%';
          bar.appendChild(tick);
        }
      });
    }

    var baking = phase === 'baking';
    setText('step-started-label', baking ? 'Bake started' : 'Step started');
    setText('step-ends-label', baking ? 'Bake ends' : 'Step ends');
    setText('step-started', s.stepStartedAt ? time(s.stepStartedAt) : '–');
    if (s.stepEndsAt) {
      var left = Math.round((new Date(str(s.stepEndsAt)).getTime() - Date.now()) / 1000);
      setText('step-ends', time(s.stepEndsAt) + (isNaN(left) ? '' : left > 0 ? ' (in ' + duration(left) + ')' : ' (due; moves on after a passing verdict)'));
    } else {
      setText('step-ends', '–');
    }
    setText('generation', typeof s.generation === 'number' ? String(s.generation) : '–');

    renderSide('stable', s.stable);
    renderSide('canary', s.canary);

    var d = s.lastDecision;
    $('decision').hidden = !d;
    $('decision-none').hidden = !!d;
    if (d) {
      var verdict = str(d.verdict);
      $('decision-verdict').setAttribute('data-verdict', verdict);
      setText('decision-verdict', verdict);
      setText('decision-at', 'at ' + time(d.at));
      setText('decision-reason', str(d.reason));
    }

    var ended = $('ended');
    var showEnded = ENDED.hasOwnProperty(phase) && s.reason !== null && s.reason !== undefined;
    ended.hidden = !showEnded;
    ended.setAttribute('data-phase', phase);
    setText('ended-phase', showEnded ? phase : '');
    setText('reason', showEnded ? str(s.reason) : '');
  }

  function cell(label) {
    var td = document.createElement('td');
    td.setAttribute('data-label', label);
    return td;
  }

  var eventsKey = '';
  function renderEvents(events) {
    if (!Array.isArray(events)) return;
    var last = events[events.length - 1];
    var key = events.length + '|' + (last ? JSON.stringify(last) : '');
    if (key === eventsKey) return;
    eventsKey = key;
    var body = $('events');
    body.textContent = '';
    var shown = events.slice(-EVENTS_SHOWN).reverse();
    shown.forEach(function (ev) {
      var tr = document.createElement('tr');
      tr.setAttribute('data-testid', 'event');
      tr.setAttribute('data-action', str(ev.action));
      var td = cell('Time');
      td.appendChild(timeEl(ev.at));
      tr.appendChild(td);
      [['Actor', str(ev.actor)], ['Action', str(ev.action)]].forEach(function (pair) {
        var c = cell(pair[0]);
        c.textContent = pair[1];
        tr.appendChild(c);
      });
      var move = cell('From → to');
      var from = ev.from || {}, to = ev.to || {};
      move.appendChild(document.createTextNode(str(from.phase) + ' ' + weightText(from.weight)));
      var arrow = document.createElement('span');
      arrow.className = 'arrow';
      arrow.textContent = ' → ';
      move.appendChild(arrow);
      move.appendChild(document.createTextNode(str(to.phase) + ' ' + weightText(to.weight)));
      tr.appendChild(move);
      var reason = cell('Reason');
      reason.className = 'reason';
      reason.textContent = str(ev.reason);
      tr.appendChild(reason);
      body.appendChild(tr);
    });
    $('events-none').hidden = events.length > 0;
    setText('events-count', events.length > EVENTS_SHOWN ? '(newest ' + EVENTS_SHOWN + ' of ' + events.length + ')' : events.length ? '(' + events.length + ')' : '');
  }

  // ---- talking to the API ------------------------------------------------------
  // A poll answer is dropped when a mutation started or ended while it was in
  // flight: the mutation's own answer is newer, and the next poll follows it.
  var epoch = 0;
  var busy = 0;

  function getJson(path) {
    return fetch(path, { cache: 'no-store', credentials: 'same-origin', headers: { accept: 'application/json' } }).then(function (res) {
      if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
      return res.json();
    });
  }

  var conn = $('conn');
  function refresh(withEvents) {
    var started = epoch;
    var calls = [getJson('/api/v1/status')];
    if (withEvents) calls.push(getJson('/api/v1/events?limit=' + EVENTS_SHOWN));
    return Promise.all(calls).then(function (answers) {
      conn.className = '';
      conn.textContent = 'live · updated ' + new Date().toLocaleTimeString('en-GB', { hour12: false });
      if (started !== epoch || busy > 0) return;
      renderStatus(answers[0]);
      if (answers[1]) renderEvents(answers[1].events);
    }, function (err) {
      conn.className = 'down';
      conn.textContent = 'cannot reach the admin API (' + str(err && err.message) + '); retrying';
    });
  }

  var polls = 0;
  function loop() {
    polls++;
    // Status every second; the event list (it can be long) every other second.
    refresh(polls % 2 === 1).then(function () {
      setTimeout(loop, document.hidden ? 5000 : 1000);
    });
  }

  var controls = Array.prototype.slice.call(document.querySelectorAll('main button'));
  function setBusy(on) {
    busy += on ? 1 : -1;
    controls.forEach(function (b) { b.disabled = busy > 0 || framed; });
  }

  function mutate(label, method, path, body, field) {
    var headers = { accept: 'application/json', 'content-type': 'application/json' };
    var token = tokenInput.value.trim();
    if (token) headers.authorization = 'Bearer ' + token;
    ['weight-input', 'start-canary', 'abort-reason'].forEach(function (id) { $(id).removeAttribute('aria-invalid'); });
    epoch++;
    setBusy(true);
    say('', label + '…');
    return fetch(path, { method: method, cache: 'no-store', credentials: 'same-origin', headers: headers, body: JSON.stringify(body || {}) })
      .then(function (res) {
        return res.text().then(function (text) {
          var json = null;
          try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
          if (res.ok && json) {
            renderStatus(json);
            say('ok', label + ': done. Phase ' + str(json.phase) + ', canary weight ' + weightText(json.weight) + '.');
            return;
          }
          var what = json && typeof json.error === 'string' ? json.error : (text || res.statusText || 'no details');
          var code = json && typeof json.code === 'string' ? ' [' + json.code + ']' : '';
          say('error', label + ' failed (HTTP ' + res.status + '): ' + what + code);
          var bad = json && typeof json.field === 'string' ? json.field : null;
          if (bad && field && bad.split('.')[0] === field.name) {
            $(field.input).setAttribute('aria-invalid', 'true');
            $(field.input).focus();
          }
        });
      }, function (err) {
        say('error', label + ' failed: cannot reach the admin API (' + str(err && err.message) + ')');
      })
      .then(function () {
        epoch++;
        setBusy(false);
        return refresh(true);
      });
  }

  $('btn-pause').addEventListener('click', function () { mutate('Pause', 'POST', '/api/v1/rollout/pause'); });
  $('btn-resume').addEventListener('click', function () { mutate('Resume', 'POST', '/api/v1/rollout/resume'); });
  $('btn-promote').addEventListener('click', function () {
    if (!window.confirm('Promote the canary? It becomes the new stable and takes all traffic now.')) { say('', 'Promote cancelled.'); return; }
    mutate('Promote', 'POST', '/api/v1/rollout/promote');
  });
  $('btn-abort').addEventListener('click', function () {
    if (!window.confirm('Abort the rollout? The canary weight drops to 0 at once.')) { say('', 'Abort cancelled.'); return; }
    var reason = $('abort-reason').value.trim();
    mutate('Abort', 'POST', '/api/v1/rollout/abort', reason ? { reason: reason } : {}, { name: 'reason', input: 'abort-reason' });
  });
  $('weight-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var raw = $('weight-input').value.trim();
    if (raw === '') {
      $('weight-input').setAttribute('aria-invalid', 'true');
      say('error', 'Set weight: enter a canary weight from 0 to 100.');
      $('weight-input').focus();
      return;
    }
    mutate('Set weight ' + raw + '%', 'PUT', '/api/v1/weight', { weight: Number(raw) }, { name: 'weight', input: 'weight-input' });
  });
  $('start-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var url = $('start-canary').value.trim();
    mutate('Start', 'POST', '/api/v1/rollout/start', url ? { canary: url } : {}, { name: 'canary', input: 'start-canary' });
  });

  // Controls act with the operator's token: never from inside another site's frame.
  var framed = window.top !== window.self;
  if (framed) {
    controls.forEach(function (b) { b.disabled = true; });
    say('error', 'This dashboard is shown inside a frame; the controls are disabled. Open it directly.');
  }

  loop();
})();
`

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`

const CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src data:",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ')

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<link rel="icon" href="data:,">
<title>canary-proxy dashboard</title>
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`

/** GET / : the dashboard page (the same string on every call). */
export function dashboardHtml(): string {
  return PAGE
}
