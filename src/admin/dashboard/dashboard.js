// @ts-check
/**
 * The dashboard's script (GET /), inlined into the page at boot under a hashed
 * script-src. It follows GET /api/v1/stream (Server-Sent Events) and falls
 * back to polling GET /api/v1/status when the stream is unavailable; it draws
 * the last minutes with uPlot and drives the admin API's mutations.
 *
 * Every string that comes from the API is inserted with textContent or as an
 * attribute value, never as markup. Loaded as a module script (strict, its
 * names its own); uPlot, inlined before it, is the one global it uses.
 */
// The admin API's JSON (src/api/wire.ts), as far as this page reads it.
/** @typedef {{ url: string, requests: number, errors: number, errorRate: number, p50Ms: number | null, p99Ms: number | null, requestsTotal?: number }} Side */
/** @typedef {{ check: string, verdict: string, observed: number | null, threshold: number | null, n: number, reason: string }} Finding */
/** @typedef {{ at: string, verdict: string, reason: string, findings?: Finding[] }} Decision */
/**
 * @typedef {object} Status
 * @property {string} phase
 * @property {number} weight
 * @property {number | null} step
 * @property {number[]} steps
 * @property {Side} stable
 * @property {Side | null} canary
 * @property {Decision | null} lastDecision
 * @property {string | null} reason
 * @property {string | null} stepStartedAt
 * @property {string | null} stepEndsAt
 * @property {number} generation
 */
/** @typedef {{ phase: string, weight: number }} Point */
/** @typedef {{ at: string, actor: string, action: string, from: Point, to: Point, reason: string | null }} AuditEvent */
/** @typedef {{ key: string, at: string, stable: Side, canary: Side | null }} DecisionFigures */
/** @typedef {'pause' | 'resume' | 'promote' | 'abort' | 'setWeight' | 'start'} Action */

const TOKEN_KEY = 'canary-proxy.admin-token'
const FIGURES_KEY = 'canary-proxy.decision-figures'
const EVENTS_SHOWN = 50
/** How much the charts keep. */
const HISTORY_SECONDS = 10 * 60
/** Polling period when the stream is unavailable, and how often the stream is tried again meanwhile. */
const POLL_MS = 1000
const STREAM_RETRY_MS = 5000
const HINTS = /** @type {Record<string, string>} */ ({
  idle: 'No rollout under way.',
  progressing: 'Moving through the steps on its own.',
  paused: 'Automation paused; the weight holds.',
  baking: 'At 100%: final checks before success.',
  succeeded: 'The canary is the new stable.',
  rolled_back: 'A check failed: canary weight dropped to 0.',
  aborted: 'Stopped by an operator: canary weight 0.',
})
const UNDER_WAY = ['progressing', 'paused', 'baking']
const ENDED = ['succeeded', 'rolled_back', 'aborted']

// ---- small helpers ----------------------------------------------------------
/** @param {string} id */
function $(id) {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`dashboard: no element #${id}`)
  return el
}
/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ ($(id))
/** @param {string} id */
const button = (id) => /** @type {HTMLButtonElement} */ ($(id))
/** @param {string} id @param {string} text */
function setText(id, text) {
  const el = $(id)
  if (el.textContent !== text) el.textContent = text
}
/** @param {unknown} v @returns {v is number} */
const isNum = (v) => typeof v === 'number' && Number.isFinite(v)
/** @param {unknown} v */
const str = (v) => (typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v))
/** @param {unknown} n */
const num = (n) => (isNum(n) ? n.toLocaleString('en-US') : '–')
/** @param {unknown} n */
function ms(n) {
  if (!isNum(n)) return '–'
  return `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)} ms`
}
/** @param {unknown} ratio */
const pct = (ratio) => (isNum(ratio) ? `${(ratio * 100).toFixed(2)} %` : '–')
/** @param {unknown} w */
const weightText = (w) => (isNum(w) ? `${w}%` : '–')
/** @param {number} sec */
function duration(sec) {
  const h = Math.floor(sec / 3600)
  const m = Math.floor((sec % 3600) / 60)
  const r = sec % 60
  return h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${r}s` : `${r}s`
}
/** @param {unknown} iso */
function time(iso) {
  const d = new Date(str(iso))
  return Number.isNaN(d.getTime()) ? str(iso) : d.toLocaleTimeString('en-GB', { hour12: false })
}
/** @param {unknown} iso */
function timeEl(iso) {
  const t = document.createElement('time')
  t.dateTime = str(iso)
  t.title = str(iso)
  t.textContent = time(iso)
  return t
}
/** @param {string} name */
const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888'

// ---- figures of a check, in its own unit ---------------------------------------
/** @param {string} check @param {number | null} value */
function checkValue(check, value) {
  if (!isNum(value)) return '–'
  if (check === 'minRequests') return num(value)
  if (check === 'maxErrorRate') return pct(value)
  if (check === 'maxErrorRateIncrease') return `${(value * 100).toFixed(2)} points`
  if (check === 'maxP99' || check === 'maxP99Ratio') return ms(value * 1000)
  if (/Ratio$/.test(check)) return `${value.toFixed(2)}x`
  if (/Memory$/.test(check)) return `${(value / 2 ** 20).toFixed(1)} MiB`
  return Number(value.toPrecision(4)).toLocaleString('en-US')
}

// ---- token: only for this tab, never in a URL -------------------------------------
const tokenInput = input('token')
const auth = $('auth')
function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? ''
  } catch {
    return ''
  }
}
/** @param {string} v */
function storeToken(v) {
  try {
    if (v) sessionStorage.setItem(TOKEN_KEY, v)
    else sessionStorage.removeItem(TOKEN_KEY)
  } catch {
    // storage is off: the token lives in the field only
  }
}
tokenInput.value = storedToken()
auth.hidden = tokenInput.value === ''
tokenInput.addEventListener('input', () => storeToken(tokenInput.value.trim()))
$('token-form').addEventListener('submit', (e) => e.preventDefault())
$('btn-forget').addEventListener('click', () => {
  tokenInput.value = ''
  storeToken('')
  say('ok', 'Token forgotten.')
})

// ---- message area ---------------------------------------------------------------
const message = $('message')
/** @param {'' | 'ok' | 'error'} kind @param {string} text */
function say(kind, text) {
  message.className = kind
  message.setAttribute('role', kind === 'error' ? 'alert' : 'status')
  message.textContent = text
}

// ---- charts ---------------------------------------------------------------------
/**
 * One array per series, all the same length (uPlot's aligned data). Time in
 * seconds (the browser's clock at arrival). Thresholds come from the last
 * decision's findings, kept per check for the rollout (a decision that holds
 * for too little traffic names no thresholds).
 */
const history = {
  /** @type {number[]} */ t: [],
  /** @type {(number | null)[]} */ weight: [],
  /** @type {(number | null)[]} */ stableTotal: [],
  /** @type {(number | null)[]} */ canaryTotal: [],
  /** @type {(number | null)[]} */ stableRps: [],
  /** @type {(number | null)[]} */ canaryRps: [],
  /** @type {(number | null)[]} */ stableErr: [],
  /** @type {(number | null)[]} */ canaryErr: [],
  /** @type {(number | null)[]} */ maxErr: [],
  /** @type {(number | null)[]} */ maxErrInc: [],
  /** @type {(number | null)[]} */ stableP99: [],
  /** @type {(number | null)[]} */ canaryP99: [],
  /** @type {(number | null)[]} */ maxP99: [],
  /** @type {(number | null)[]} */ maxP99Ratio: [],
}
/** @type {Map<string, number>} */
const thresholds = new Map()
let thresholdsOf = -1

/**
 * Rate from the cumulative count: over the span back to a sample at least a
 * second older, so two statuses close together do not make a spike.
 * @param {(number | null)[]} totals @param {number | null} total @param {number} now
 */
function rate(totals, total, now) {
  if (!isNum(total)) return null
  for (let i = history.t.length - 1; i >= 0; i--) {
    const then = history.t[i] ?? 0
    if (now - then < 1) continue
    const before = totals[i]
    if (!isNum(before) || before > total) return null
    return (total - before) / (now - then)
  }
  return null
}

/** @param {Status} s */
function record(s) {
  if (s.generation !== thresholdsOf) {
    thresholds.clear()
    thresholdsOf = s.generation
  }
  for (const f of s.lastDecision?.findings ?? []) if (isNum(f.threshold)) thresholds.set(f.check, f.threshold)
  const now = Date.now() / 1000
  const h = history
  // Points stay at least 250 ms apart (a short analysis interval, a change right after a tick): until then a status replaces the newest.
  if (h.t.length > 1 && now - (h.t[h.t.length - 2] ?? 0) < 0.25) for (const series of Object.values(h)) series.pop()
  const stableTotal = isNum(s.stable?.requestsTotal) ? s.stable.requestsTotal : null
  const canaryTotal = isNum(s.canary?.requestsTotal) ? s.canary.requestsTotal : null
  const stableErr = isNum(s.stable?.errorRate) ? s.stable.errorRate * 100 : null
  const inc = thresholds.get('maxErrorRateIncrease')
  const maxP99 = thresholds.get('maxP99')
  const maxP99Ratio = thresholds.get('maxP99Ratio')
  const maxErr = thresholds.get('maxErrorRate')
  h.stableRps.push(rate(h.stableTotal, stableTotal, now))
  h.canaryRps.push(rate(h.canaryTotal, canaryTotal, now))
  h.t.push(now)
  h.weight.push(isNum(s.weight) ? s.weight : null)
  h.stableTotal.push(stableTotal)
  h.canaryTotal.push(canaryTotal)
  h.stableErr.push(stableErr)
  h.canaryErr.push(isNum(s.canary?.errorRate) ? s.canary.errorRate * 100 : null)
  h.maxErr.push(isNum(maxErr) ? maxErr * 100 : null)
  h.maxErrInc.push(isNum(inc) && stableErr !== null ? stableErr + inc * 100 : null)
  h.stableP99.push(isNum(s.stable?.p99Ms) ? s.stable.p99Ms : null)
  h.canaryP99.push(isNum(s.canary?.p99Ms) ? s.canary.p99Ms : null)
  h.maxP99.push(isNum(maxP99) ? maxP99 * 1000 : null)
  h.maxP99Ratio.push(isNum(maxP99Ratio) ? maxP99Ratio * 1000 : null)
  let old = 0
  while (old < h.t.length && now - (h.t[old] ?? 0) > HISTORY_SECONDS) old++
  if (old > 0) for (const series of Object.values(h)) series.splice(0, old)
}

/** @typedef {{ plot: uPlot | null, el: HTMLElement, series: uPlot.Series[], data: () => uPlot.AlignedData, unit: string, min: number | null, max: number | null }} Chart */

/**
 * @param {string} id
 * @param {string} unit
 * @param {{ label: string, color: string, dash?: number[], stepped?: boolean }[]} lines
 * @param {() => (number | null)[][]} pick
 * @param {{ min?: number, max?: number }} range
 * @returns {Chart}
 */
function chart(id, unit, lines, pick, range = {}) {
  const series = lines.map((l) => {
    /** @type {uPlot.Series} */
    const s = { label: l.label, stroke: cssVar(l.color), width: l.dash ? 1.5 : 2, points: { show: false }, spanGaps: false }
    if (l.dash) s.dash = l.dash
    if (l.stepped && typeof uPlot.paths.stepped === 'function') s.paths = uPlot.paths.stepped({ align: 1 })
    return s
  })
  return {
    plot: null,
    el: $(id),
    series,
    data: () => /** @type {uPlot.AlignedData} */ ([history.t, ...pick()]),
    unit,
    min: range.min ?? null,
    max: range.max ?? null,
  }
}

const THRESHOLD = '--danger'
const charts = [
  chart('chart-weight', '%', [{ label: 'canary weight', color: '--canary', stepped: true }], () => [history.weight], { min: 0, max: 100 }),
  chart('chart-rate', 'req/s', [
    { label: 'stable', color: '--stable' },
    { label: 'canary', color: '--canary' },
  ], () => [history.stableRps, history.canaryRps], { min: 0 }),
  chart('chart-errors', '%', [
    { label: 'stable', color: '--stable' },
    { label: 'canary', color: '--canary' },
    { label: 'max error rate', color: THRESHOLD, dash: [6, 4] },
    { label: 'stable + max increase', color: THRESHOLD, dash: [2, 3] },
  ], () => [history.stableErr, history.canaryErr, history.maxErr, history.maxErrInc], { min: 0 }),
  chart('chart-p99', 'ms', [
    { label: 'stable', color: '--stable' },
    { label: 'canary', color: '--canary' },
    { label: 'max p99', color: THRESHOLD, dash: [6, 4] },
    { label: 'max p99 vs stable', color: THRESHOLD, dash: [2, 3] },
  ], () => [history.stableP99, history.canaryP99, history.maxP99, history.maxP99Ratio], { min: 0 }),
]

/** @param {Chart} c */
function chartWidth(c) {
  return Math.max(200, Math.floor(c.el.clientWidth || 320))
}

/** @param {Chart} c */
function createPlot(c) {
  const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--line'), width: 1 }, ticks: { stroke: cssVar('--line'), width: 1 } }
  /** @type {uPlot.Options} */
  const opts = {
    width: chartWidth(c),
    height: 170,
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    scales: {
      x: { time: true },
      y: {
        // Room above the highest line (a threshold is often it), and a span of at least 1 when everything is 0.
        range: (_u, dataMin, dataMax) => {
          const lo = c.min ?? (isNum(dataMin) ? dataMin : 0)
          return [lo, c.max ?? Math.max((isNum(dataMax) ? dataMax : 0) * 1.1, lo + 1)]
        },
      },
    },
    axes: [
      { ...axis, space: 90, values: (_u, splits) => splits.map((t) => new Date(t * 1000).toLocaleTimeString('en-GB', { hour12: false })) },
      { ...axis, size: 56, values: (_u, splits) => splits.map((v) => `${Number(v.toPrecision(3))}${c.unit === '%' ? '%' : ''}`) },
    ],
    series: [{}, ...c.series],
  }
  c.plot = new uPlot(opts, c.data(), c.el)
}

function drawCharts() {
  if (history.t.length < 1) return
  for (const c of charts) {
    if (c.plot === null) createPlot(c)
    else c.plot.setData(c.data())
  }
}

if (typeof ResizeObserver === 'function') {
  const resize = new ResizeObserver(() => {
    for (const c of charts) if (c.plot !== null && c.plot.width !== chartWidth(c)) c.plot.setSize({ width: chartWidth(c), height: 170 })
  })
  for (const c of charts) resize.observe(c.el)
}

/** @param {(number | null)[]} series */
const last = (series) => series[series.length - 1] ?? null
/** @param {number | null} v @param {(n: number) => string} f */
const or = (v, f) => (v === null ? '–' : f(v))

/** The numbers the charts show now, as text: for screen readers, and for whoever reads rather than looks. */
function captions() {
  const h = history
  const rps = (/** @type {number} */ v) => `${v.toFixed(1)}/s`
  const p = (/** @type {number} */ v) => `${v.toFixed(2)} %`
  /** @param {string} id @param {string} title @param {[string, string][]} parts @param {[string, string][]} limits */
  const caption = (id, title, parts, limits) => {
    const el = $(id)
    el.textContent = `${title}: `
    parts.forEach(([name, value], i) => {
      if (i > 0) el.append(', ')
      el.append(`${name} `)
      const b = document.createElement('b')
      b.textContent = value
      el.append(b)
    })
    for (const [name, value] of limits) {
      const span = document.createElement('span')
      span.className = 'threshold'
      span.textContent = ` · ${name} ${value}`
      el.append(span)
    }
  }
  caption('cap-weight', 'Canary weight', [['now', or(last(h.weight), (v) => `${v}%`)]], [])
  caption('cap-rate', 'Requests per second', [['stable', or(last(h.stableRps), rps)], ['canary', or(last(h.canaryRps), rps)]], [])
  /** @type {[string, string][]} */
  const errLimits = []
  const maxErr = last(h.maxErr)
  if (maxErr !== null) errLimits.push(['max', p(maxErr)])
  const inc = thresholds.get('maxErrorRateIncrease')
  if (isNum(inc)) errLimits.push(['max increase', `${(inc * 100).toFixed(2)} points`])
  caption('cap-errors', 'Error rate (analysis window)', [['stable', or(last(h.stableErr), p)], ['canary', or(last(h.canaryErr), p)]], errLimits)
  /** @type {[string, string][]} */
  const p99Limits = []
  const maxP99 = last(h.maxP99)
  if (maxP99 !== null) p99Limits.push(['max', ms(maxP99)])
  const maxRatio = last(h.maxP99Ratio)
  if (maxRatio !== null) p99Limits.push(['max vs stable', ms(maxRatio)])
  caption('cap-p99', 'p99 latency (analysis window)', [['stable', or(last(h.stableP99), ms)], ['canary', or(last(h.canaryP99), ms)]], p99Limits)
}

// ---- figures at the last decision ----------------------------------------------------
/**
 * The window empties within `analysis.window` of a rollback (the canary gets
 * no more traffic), so the figures the page saw when the last decision came
 * are kept beside the live ones, for this tab (a reload keeps them). A page
 * opened after the decision did not see them: the checks table (kept by the
 * server with the decision) still has the observed figures.
 * @type {DecisionFigures | null}
 */
let decisionFigures = null
try {
  const saved = JSON.parse(sessionStorage.getItem(FIGURES_KEY) ?? 'null')
  if (saved !== null && typeof saved === 'object' && typeof saved.key === 'string') decisionFigures = saved
} catch {
  decisionFigures = null
}
/** @type {string | null} */
let seenDecisionKey = null

/** @param {Status} s */
function decisionKey(s) {
  const d = s.lastDecision
  return d ? JSON.stringify([s.generation, d.at, d.verdict, d.reason]) : null
}

/** @param {Status} s */
function keepDecisionFigures(s) {
  const key = decisionKey(s)
  const first = seenDecisionKey === null
  const changed = key !== seenDecisionKey
  seenDecisionKey = key ?? ''
  // The first status of a page load shows today's window, not the one of a decision made before it opened.
  if (key === null || first || !changed || s.lastDecision === null) return
  decisionFigures = { key, at: s.lastDecision.at, stable: s.stable, canary: s.canary }
  try {
    sessionStorage.setItem(FIGURES_KEY, JSON.stringify(decisionFigures))
  } catch {
    // storage is off: kept until the page goes
  }
}

/** @param {string} prefix @param {Side | null | undefined} side @param {string} none */
function renderSide(prefix, side, none) {
  if (!side) {
    setText(`${prefix}-url`, none)
    for (const k of ['requests', 'errors', 'error-rate', 'p50', 'p99']) setText(`${prefix}-${k}`, '–')
    return
  }
  setText(`${prefix}-url`, str(side.url))
  setText(`${prefix}-requests`, num(side.requests))
  setText(`${prefix}-errors`, num(side.errors))
  setText(`${prefix}-error-rate`, pct(side.errorRate))
  setText(`${prefix}-p50`, ms(side.p50Ms))
  setText(`${prefix}-p99`, ms(side.p99Ms))
}

/** @param {Status} s */
function renderDecisionFigures(s) {
  const key = decisionKey(s)
  const kept = decisionFigures !== null && key !== null && decisionFigures.key === key ? decisionFigures : null
  renderSide('then-stable', kept?.stable, '–')
  renderSide('then-canary', kept?.canary, kept ? 'no canary' : '–')
  setText(
    'then-note',
    kept
      ? `Figures of the window at the last decision (${time(kept.at)}, ${str(s.lastDecision?.verdict)}): they stay after the window empties.`
      : s.lastDecision
        ? 'The figures at the last decision were not seen by this page (it opened after); the checks above keep what was observed.'
        : '',
  )
}

// ---- the step ladder ------------------------------------------------------------------
/** @type {AuditEvent[]} */
let events = []
/** The last step seen under way, for marking where an ended rollout stopped. @type {{ generation: number, weight: number } | null} */
let lastUnderWay = null

/** @param {number} weight @param {number[]} steps */
function stepAt(weight, steps) {
  let found = -1
  steps.forEach((v, i) => {
    if (isNum(v) && v <= weight) found = i
  })
  return found
}

/**
 * Where a rolled back (or aborted) rollout stopped: the weight it left, from
 * its last event (rollback or abort), else from what this page saw.
 * @param {Status} s
 * @returns {number | null}
 */
function stoppedAtWeight(s) {
  const action = s.phase === 'rolled_back' ? 'rollback' : 'abort'
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]
    if (e && e.action === action && e.to?.phase === s.phase) return isNum(e.from?.weight) ? e.from.weight : null
    if (e && e.to?.phase !== s.phase) break
  }
  return lastUnderWay !== null && lastUnderWay.generation === s.generation ? lastUnderWay.weight : null
}

/** @param {Status} s */
function renderLadder(s) {
  const steps = Array.isArray(s.steps) ? s.steps : []
  const step = isNum(s.step) ? s.step : null
  const phase = str(s.phase)
  const ended = phase === 'rolled_back' || phase === 'aborted'
  const stopWeight = ended ? stoppedAtWeight(s) : null
  const stopped = stopWeight === null ? -1 : stepAt(stopWeight, steps)
  const mark = phase === 'rolled_back' ? 'failed' : 'stopped'
  const key = JSON.stringify([steps, step, ended ? [mark, stopped] : null])
  const list = $('steps')
  const bar = $('weight-bar')
  if (list.getAttribute('data-key') !== key) {
    list.setAttribute('data-key', key)
    list.textContent = ''
    for (const tick of bar.querySelectorAll('.tick')) tick.remove()
    steps.forEach((v, i) => {
      const li = document.createElement('li')
      if (i === stopped) {
        li.className = mark
        li.title = mark === 'failed' ? 'the rollout failed at this step and was rolled back' : 'the rollout was aborted at this step'
        const sign = document.createElement('span')
        sign.className = 'mark'
        sign.setAttribute('aria-hidden', 'true')
        sign.textContent = mark === 'failed' ? '✕' : '■'
        li.append(sign, weightText(v))
        const sr = document.createElement('span')
        sr.className = 'sr-only'
        sr.textContent = mark === 'failed' ? ' (failed here)' : ' (aborted here)'
        li.append(sr)
      } else {
        li.textContent = weightText(v)
        if (step !== null && i < step) li.className = 'done'
        if (step === i) {
          li.className = 'current'
          li.setAttribute('aria-current', 'step')
        }
      }
      list.append(li)
      if (isNum(v) && v > 0 && v < 100) {
        const tick = document.createElement('span')
        tick.className = 'tick'
        tick.style.left = `${v}%`
        bar.append(tick)
      }
    })
  }
  let where = ''
  if (ended && stopWeight !== null) {
    const verb = phase === 'rolled_back' ? 'Failed' : 'Aborted'
    where = stopped >= 0 ? `${verb} at step ${stopped + 1} of ${steps.length} (${weightText(stopWeight)})` : `${verb} at ${weightText(stopWeight)}, below the first step`
  }
  setText('failed-step', where)
}

// ---- what applies now ------------------------------------------------------------------
let busy = 0
const framed = window.top !== window.self
/** @type {Status | null} */
let current = null

/**
 * The admin API's 409 rules (README "Admin API"), so a button is offered
 * only when its call can succeed; the reason is said for the others.
 * @param {Status} s
 * @returns {Record<Action, string | null>} null when the action applies, else why not
 */
function availability(s) {
  const phase = str(s.phase)
  const canary = s.canary !== null && s.canary !== undefined
  const underWay = UNDER_WAY.includes(phase)
  const url = input('start-canary').value.trim() !== ''
  return {
    pause: phase === 'progressing' || phase === 'baking' ? null : phase === 'paused' ? 'already paused' : 'no rollout is progressing',
    resume: phase !== 'paused' ? 'nothing is paused' : canary ? null : 'no canary is known',
    promote: !canary ? 'no canary to promote' : phase === 'rolled_back' || phase === 'aborted' ? `the canary was ${phase === 'aborted' ? 'aborted' : 'rolled back'}: start it again first` : null,
    abort: underWay ? null : 'no rollout under way',
    setWeight: canary ? null : 'no canary is known',
    start: underWay && canary ? 'a rollout is under way' : canary || url ? null : 'give the canary URL',
  }
}

const BUTTONS = /** @type {const} */ ([
  ['pause', 'btn-pause', 'Pause'],
  ['resume', 'btn-resume', 'Resume'],
  ['promote', 'btn-promote', 'Promote'],
  ['abort', 'btn-abort', 'Abort'],
  ['setWeight', 'btn-set-weight', 'Set weight'],
  ['start', 'btn-start', 'Start'],
])

function renderButtons() {
  const why = current === null ? null : availability(current)
  /** @type {string[]} */
  const notes = []
  for (const [action, id, label] of BUTTONS) {
    const reason = why === null ? 'waiting for the status' : why[action]
    const b = button(id)
    b.disabled = framed || busy > 0 || reason !== null
    b.setAttribute('aria-busy', busy > 0 ? 'true' : 'false')
    b.title = reason === null ? '' : `${label}: ${reason}`
    if (reason !== null && why !== null) notes.push(`${label}: ${reason}`)
  }
  input('weight-input').disabled = framed || (why !== null && why.setWeight !== null)
  setText('actions-hint', framed ? 'Disabled inside a frame.' : notes.length > 0 ? `Not available now: ${notes.join('; ')}.` : '')
}
input('start-canary').addEventListener('input', renderButtons)

// ---- rendering the status ----------------------------------------------------------------
/** @param {Status} s */
function renderStatus(s) {
  current = s
  const phase = str(s.phase) || 'unknown'
  const known = Object.hasOwn(HINTS, phase)
  $('phase').setAttribute('data-phase', known ? phase : 'unknown')
  setText('phase', phase)
  setText('phase-hint', known ? (HINTS[phase] ?? '') : '')
  if (UNDER_WAY.includes(phase) && isNum(s.weight)) lastUnderWay = { generation: s.generation, weight: s.weight }

  const w = isNum(s.weight) ? Math.max(0, Math.min(100, s.weight)) : 0
  $('weight-fill').style.width = `${w}%`
  const bar = $('weight-bar')
  bar.setAttribute('aria-valuenow', String(w))
  bar.setAttribute('aria-valuetext', `canary ${weightText(s.weight)}`)
  setText('weight', weightText(s.weight))
  setText('stable-share', isNum(s.weight) ? weightText(Math.round((100 - w) * 100) / 100) : '–')

  const steps = Array.isArray(s.steps) ? s.steps : []
  const step = isNum(s.step) ? s.step : null
  setText('step', step !== null ? `${step + 1} of ${steps.length} (${weightText(steps[step])})` : phase === 'paused' ? 'below the first step' : '–')
  renderLadder(s)

  const baking = phase === 'baking'
  setText('step-started-label', baking ? 'Bake started' : 'Step started')
  setText('step-ends-label', baking ? 'Bake ends' : 'Step ends')
  setText('step-started', s.stepStartedAt ? time(s.stepStartedAt) : '–')
  renderCountdown()
  setText('generation', isNum(s.generation) ? String(s.generation) : '–')

  renderSide('stable', s.stable, '–')
  renderSide('canary', s.canary, 'no canary')
  keepDecisionFigures(s)
  renderDecisionFigures(s)
  renderDecision(s.lastDecision)

  const ended = $('ended')
  const showEnded = ENDED.includes(phase) && s.reason !== null && s.reason !== undefined
  ended.hidden = !showEnded
  ended.setAttribute('data-phase', phase)
  setText('ended-phase', showEnded ? phase : '')
  setText('reason', showEnded ? str(s.reason) : '')

  renderButtons()
  record(s)
  drawCharts()
  captions()
}

function renderCountdown() {
  const ends = current?.stepEndsAt
  if (!ends) {
    setText('step-ends', '–')
    return
  }
  const left = Math.round((new Date(str(ends)).getTime() - Date.now()) / 1000)
  setText('step-ends', time(ends) + (Number.isNaN(left) ? '' : left > 0 ? ` (in ${duration(left)})` : ' (due; moves on after a passing verdict)'))
}
setInterval(renderCountdown, 1000)

/** @param {Decision | null} d */
function renderDecision(d) {
  $('decision').hidden = !d
  $('decision-none').hidden = !!d
  if (!d) return
  const verdict = str(d.verdict)
  $('decision-verdict').setAttribute('data-verdict', verdict)
  setText('decision-verdict', verdict)
  setText('decision-at', `at ${time(d.at)}`)
  setText('decision-reason', str(d.reason))
  const findings = Array.isArray(d.findings) ? d.findings : []
  const key = JSON.stringify(findings)
  const body = $('checks')
  if (body.getAttribute('data-key') === key) return
  body.setAttribute('data-key', key)
  body.textContent = ''
  for (const f of findings) {
    const check = str(f.check)
    const tr = document.createElement('tr')
    tr.setAttribute('data-check', check)
    tr.setAttribute('data-verdict', str(f.verdict))
    tr.title = str(f.reason)
    const name = document.createElement('th')
    name.scope = 'row'
    name.className = 'mono'
    name.textContent = check
    tr.append(name)
    for (const [text, cls] of [
      [checkValue(check, f.observed), 'num'],
      [checkValue(check, f.threshold), 'num'],
      [num(f.n), 'num'],
    ]) {
      const td = document.createElement('td')
      td.className = cls ?? ''
      td.textContent = text ?? ''
      tr.append(td)
    }
    const v = document.createElement('td')
    const badge = document.createElement('span')
    badge.className = 'verdict'
    badge.setAttribute('data-verdict', str(f.verdict))
    badge.textContent = str(f.verdict)
    v.append(badge)
    tr.append(v)
    body.append(tr)
  }
}

// ---- events ---------------------------------------------------------------------------------
/** @param {string} label */
function cell(label) {
  const td = document.createElement('td')
  td.setAttribute('data-label', label)
  return td
}

let eventsKey = ''
function renderEvents() {
  const newest = events[events.length - 1]
  const key = `${events.length}|${newest ? JSON.stringify(newest) : ''}`
  if (key === eventsKey) return
  eventsKey = key
  const body = $('events')
  body.textContent = ''
  for (const ev of events.slice(-EVENTS_SHOWN).reverse()) {
    const tr = document.createElement('tr')
    tr.setAttribute('data-testid', 'event')
    tr.setAttribute('data-action', str(ev.action))
    const at = cell('Time')
    at.append(timeEl(ev.at))
    tr.append(at)
    for (const [label, text] of [
      ['Actor', str(ev.actor)],
      ['Action', str(ev.action)],
    ]) {
      const c = cell(label ?? '')
      c.textContent = text ?? ''
      tr.append(c)
    }
    const move = cell('From → to')
    const from = ev.from ?? { phase: '', weight: NaN }
    const to = ev.to ?? { phase: '', weight: NaN }
    const arrow = document.createElement('span')
    arrow.className = 'arrow'
    arrow.textContent = ' → '
    move.append(`${str(from.phase)} ${weightText(from.weight)}`, arrow, `${str(to.phase)} ${weightText(to.weight)}`)
    tr.append(move)
    const reason = cell('Reason')
    reason.className = 'reason'
    reason.textContent = str(ev.reason)
    tr.append(reason)
    body.append(tr)
  }
  $('events-none').hidden = events.length > 0
  setText('events-count', events.length > EVENTS_SHOWN ? `(newest ${EVENTS_SHOWN} of ${events.length})` : events.length ? `(${events.length})` : '')
  // An ended rollout's ladder marks its step from its last event.
  if (current !== null) renderLadder(current)
}

// ---- the stream, and polling when it is unavailable ---------------------------------------------
const conn = $('conn')
/**
 * The connection's state is a live region: it speaks when the state changes,
 * not on every update (the time of the last one sits beside it, outside).
 * @param {'live' | 'polling' | 'down'} state @param {string} text
 */
function connection(state, text) {
  conn.className = state === 'down' ? 'down' : ''
  conn.setAttribute('data-state', state)
  if (conn.textContent !== text) conn.textContent = text
  setText('conn-updated', state === 'down' ? '' : `updated ${clock()}`)
}
const clock = () => new Date().toLocaleTimeString('en-GB', { hour12: false })

/** @type {EventSource | null} */
let source = null
let streaming = false
/** @type {ReturnType<typeof setTimeout> | null} */
let pollTimer = null
/** @type {ReturnType<typeof setTimeout> | null} */
let retryTimer = null
// A poll answer is dropped when a mutation started or ended while it was in
// flight: the mutation's own answer is newer, and the next poll follows it.
let epoch = 0

/** @param {string} path */
async function getJson(path) {
  const res = await fetch(path, { cache: 'no-store', credentials: 'same-origin', headers: { accept: 'application/json' } })
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`)
  return res.json()
}

function openStream() {
  retryTimer = null
  if (typeof EventSource !== 'function') {
    startPolling()
    return
  }
  const es = new EventSource(`/api/v1/stream?events=${EVENTS_SHOWN}`)
  source = es
  // The stream replays the newest events first: the list starts again with each connection.
  es.addEventListener('open', () => {
    events = []
    stopPolling()
  })
  es.addEventListener('status', (e) => {
    if (!streaming) {
      // The first status of a connection follows its replay: the list is whole now, even when empty.
      streaming = true
      stopPolling()
      renderEvents()
    }
    connection('live', 'live')
    renderStatus(/** @type {Status} */ (JSON.parse(e.data)))
  })
  es.addEventListener('event', (e) => {
    events.push(/** @type {AuditEvent} */ (JSON.parse(e.data)))
    if (events.length > 1000) events.splice(0, events.length - 1000)
    if (streaming) renderEvents()
  })
  es.addEventListener('error', () => {
    // Ended (shutdown), refused (503: too many streams) or never there: poll, and try the stream again later.
    es.close()
    if (source === es) source = null
    streaming = false
    startPolling()
    retryTimer ??= setTimeout(openStream, STREAM_RETRY_MS)
  })
}

/** Connected, or still reading the opening replay of a connection. */
const following = () => streaming || (source !== null && source.readyState === EventSource.OPEN)

function stopPolling() {
  if (pollTimer !== null) clearTimeout(pollTimer)
  pollTimer = null
}

let polls = 0
function startPolling() {
  if (pollTimer !== null || following()) return
  pollTimer = setTimeout(() => {
    pollTimer = null
    void poll().then(() => startPolling())
  }, 0)
}

async function poll() {
  polls++
  const started = epoch
  try {
    // Status every second; the event list (it can be long) every other second.
    const [status, list] = await Promise.all([getJson('/api/v1/status'), polls % 2 === 1 ? getJson(`/api/v1/events?limit=${EVENTS_SHOWN}`) : null])
    if (following()) return
    connection('polling', 'polling (the stream is unavailable)')
    if (started !== epoch || busy > 0) return
    renderStatus(status)
    if (list !== null && Array.isArray(list.events)) {
      events = list.events
      renderEvents()
    }
  } catch (err) {
    connection('down', `cannot reach the admin API (${str(err instanceof Error ? err.message : err)}); retrying`)
  }
  await new Promise((resolve) => setTimeout(resolve, document.hidden ? 5 * POLL_MS : POLL_MS))
}

// ---- mutations ------------------------------------------------------------------------------------
/**
 * @param {string} label
 * @param {'POST' | 'PUT'} method
 * @param {string} path
 * @param {Record<string, unknown>} [body]
 * @param {{ name: string, input: string }} [field] the body field an input edits, to mark it when the API names it
 */
async function mutate(label, method, path, body, field) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json', 'content-type': 'application/json' }
  const token = tokenInput.value.trim()
  if (token) headers.authorization = `Bearer ${token}`
  for (const id of ['weight-input', 'start-canary', 'abort-reason']) $(id).removeAttribute('aria-invalid')
  epoch++
  busy++
  renderButtons()
  say('', `${label}…`)
  try {
    const res = await fetch(path, { method, cache: 'no-store', credentials: 'same-origin', headers, body: JSON.stringify(body ?? {}) })
    const text = await res.text()
    /** @type {any} */
    let json = null
    try {
      json = text ? JSON.parse(text) : null
    } catch {
      json = null
    }
    if (res.ok && json) {
      renderStatus(json)
      say('ok', `${label}: done. Phase ${str(json.phase)}, canary weight ${weightText(json.weight)}.`)
      return
    }
    const what = json && typeof json.error === 'string' ? json.error : text || res.statusText || 'no details'
    const code = json && typeof json.code === 'string' ? ` [${json.code}]` : ''
    say('error', `${label} failed (HTTP ${res.status}): ${what}${code}`)
    if (res.status === 401 || res.status === 403) {
      auth.hidden = false
      tokenInput.focus()
    }
    const bad = json && typeof json.field === 'string' ? json.field : null
    if (bad && field && bad.split('.')[0] === field.name) {
      $(field.input).setAttribute('aria-invalid', 'true')
      $(field.input).focus()
    }
  } catch (err) {
    say('error', `${label} failed: cannot reach the admin API (${str(err instanceof Error ? err.message : err)})`)
  } finally {
    epoch++
    busy--
    renderButtons()
  }
}

button('btn-pause').addEventListener('click', () => void mutate('Pause', 'POST', '/api/v1/rollout/pause'))
button('btn-resume').addEventListener('click', () => void mutate('Resume', 'POST', '/api/v1/rollout/resume'))
button('btn-promote').addEventListener('click', () => {
  if (!window.confirm('Promote the canary? It becomes the new stable and takes all traffic now.')) {
    say('', 'Promote cancelled.')
    return
  }
  void mutate('Promote', 'POST', '/api/v1/rollout/promote')
})
button('btn-abort').addEventListener('click', () => {
  if (!window.confirm('Abort the rollout? The canary weight drops to 0 at once.')) {
    say('', 'Abort cancelled.')
    return
  }
  const reason = input('abort-reason').value.trim()
  void mutate('Abort', 'POST', '/api/v1/rollout/abort', reason ? { reason } : {}, { name: 'reason', input: 'abort-reason' })
})
$('weight-form').addEventListener('submit', (e) => {
  e.preventDefault()
  const raw = input('weight-input').value.trim()
  if (raw === '') {
    $('weight-input').setAttribute('aria-invalid', 'true')
    say('error', 'Set weight: enter a canary weight from 0 to 100.')
    $('weight-input').focus()
    return
  }
  void mutate(`Set weight ${raw}%`, 'PUT', '/api/v1/weight', { weight: Number(raw) }, { name: 'weight', input: 'weight-input' })
})
$('start-form').addEventListener('submit', (e) => {
  e.preventDefault()
  const url = input('start-canary').value.trim()
  void mutate('Start', 'POST', '/api/v1/rollout/start', url ? { canary: url } : {}, { name: 'canary', input: 'start-canary' })
})

// Controls act with the operator's token: never from inside another site's frame.
if (framed) say('error', 'This dashboard is shown inside a frame; the controls are disabled. Open it directly.')
renderButtons()
openStream()
