/** Human renderings of status and events for the terminal, times relative to now (--json prints the API's JSON instead). */
import type { EventView, FindingView, SideView, StatusView } from '../api/wire.js'
import { count, ms as msOfUs, pct, points } from '../core/format.js'
import { PLAIN, WIDTH, ago, fromNow, wrap, type Colors } from './terminal.js'

const LABEL = 10
const INDENT = ' '.repeat(LABEL)

/** `status`: phase, weight and step with the time to the next step, both sides, the last decision with each check. */
export function renderStatus(s: StatusView, now: number, c: Colors = PLAIN): string {
  const lines: string[] = []
  const step = s.step === null ? '' : `   step ${s.step + 1}/${s.steps.length} (${s.steps[s.step] ?? s.weight}%)`
  const timing = timingOf(s, now)
  lines.push(`${label('phase')}${phaseColour(s.phase, c)(s.phase)}   weight ${s.weight}%${step}${timing === '' ? '' : `   ${timing}`}`)
  lines.push(`${label('stable')}${renderSide(s.stable)}`)
  lines.push(`${label('canary')}${canaryLine(s)}`)
  if (s.lastDecision !== null) {
    const d = s.lastDecision
    const head = `${label('decision')}${verdictColour(d.verdict, c)(d.verdict)} ${ago(d.at, now)}: `
    // Wrap on the plain text, so colour codes do not count as columns.
    const plainHead = `${label('decision')}${d.verdict} ${ago(d.at, now)}: `
    const [first = '', ...more] = wrap(`${plainHead}${d.reason}`, WIDTH, INDENT)
    lines.push(`${head}${first.slice(plainHead.length)}`, ...more)
    lines.push(...renderFindings(d.findings, c))
  }
  if (s.reason !== null) lines.push(...wrap(`${label('reason')}${s.reason}`, WIDTH, INDENT))
  return lines.join('\n')
}

function label(name: string): string {
  return name.padEnd(LABEL)
}

/** "next step in 8s": said relative to now, from the proxy's own times. */
function timingOf(s: StatusView, now: number): string {
  if (s.phase === 'paused') return 'resume continues'
  if (s.stepEndsAt === null) return ''
  if (s.phase === 'progressing') return Date.parse(s.stepEndsAt) > now ? `next step ${fromNow(s.stepEndsAt, now)}` : 'next step once the checks pass'
  if (s.phase === 'baking') return Date.parse(s.stepEndsAt) > now ? `bake ends ${fromNow(s.stepEndsAt, now)}` : 'bake done once the checks pass'
  return ''
}

function canaryLine(s: StatusView): string {
  if (s.canary !== null) return renderSide(s.canary)
  // After success the canary slot is empty and the weight 0: say so, so "weight 0%" does not read as "canary at 0%".
  if (s.phase === 'succeeded') return `none (${s.stable.url} promoted: now stable)`
  return 'none'
}

export function renderSide(side: SideView): string {
  return `${side.url}   requests ${side.requests}   error rate ${(side.errorRate * 100).toFixed(2)}%   p50 ${ms(side.p50Ms)}   p99 ${ms(side.p99Ms)}`
}

function ms(v: number | null): string {
  return v === null ? '-' : msOfUs(v * 1000)
}

/** One line per check: verdict, check, observed against its threshold, and over how many samples. */
export function renderFindings(findings: readonly FindingView[], c: Colors = PLAIN, first = label('checks'), indent = INDENT): string[] {
  const width = Math.min(30, Math.max(0, ...findings.map((f) => f.check.length)))
  return findings.map((f, i) => {
    const head = i === 0 ? first : indent
    const limit = f.threshold === null ? '' : `${f.check.startsWith('min') ? 'min' : 'max'} ${checkValue(f.check, f.threshold)}`
    const observed = f.observed === null ? '-' : checkValue(f.check, f.observed)
    return `${head}${verdictColour(f.verdict, c)(f.verdict.padEnd(12))} ${f.check.padEnd(width)}  ${observed.padStart(11)}  ${limit.padEnd(16)} n ${count(f.n)}`.trimEnd()
  })
}

/**
 * A check's figure in its own unit (src/analysis/finding.ts), read as the
 * gate's reasons read it (core/format.ts): error ratios in percent, their
 * increase in points, latencies (seconds) in ms; memory in MiB, ratios as
 * "1.5x", counts as they are.
 */
export function checkValue(check: string, v: number): string {
  if (/ErrorRateIncrease$/.test(check)) return points(v)
  if (/ErrorRate$|^stable\.health$/.test(check)) return pct(v)
  if (/P\d+/.test(check)) return msOfUs(v * 1e6)
  if (/Memory$/.test(check)) return `${(v / 2 ** 20).toFixed(1)}MiB`
  if (/Ratio$/.test(check)) return `${Number(v.toFixed(2))}x`
  if (Number.isInteger(v)) return String(v)
  return String(Number(v.toPrecision(4)))
}

/** One event: when (relative), who, what, from -> to, and why (wrapped under it). */
export function renderEvent(e: EventView, now: number): string {
  const head = `${ago(e.at, now).padStart(11)}  ${e.actor.padEnd(8)} ${e.action.padEnd(10)} ${e.from.phase} ${e.from.weight}% -> ${e.to.phase} ${e.to.weight}%`
  return e.reason === null || e.reason === '' ? head : wrap(`${head}  ${e.reason}`, WIDTH, ' '.repeat(13)).join('\n')
}

export function phaseColour(phase: string, c: Colors): (text: string) => string {
  switch (phase) {
    case 'succeeded':
      return c.green
    case 'rolled_back':
    case 'aborted':
      return c.red
    case 'paused':
      return c.yellow
    case 'progressing':
    case 'baking':
      return c.cyan
    default:
      return (text) => text
  }
}

export function verdictColour(verdict: string, c: Colors): (text: string) => string {
  return verdict === 'pass' ? c.green : verdict === 'fail' ? c.red : c.yellow
}
