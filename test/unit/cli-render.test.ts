/** The CLI's terminal renderings as pure functions: each phase's status, check figures in their units, events, wrapping, and when to colour. */
import t from 'tap'
import type { StatusView } from '../../src/api/wire.js'
import { checkValue, renderEvent, renderFindings, renderStatus } from '../../src/cli/render.js'
import { WIDTH, ago, colours, fromNow, span, truncate, useColour, wrap } from '../../src/cli/terminal.js'

const NOW = Date.parse('2026-03-01T12:00:30Z')
const at = (secondsFromNow: number): string => new Date(NOW + secondsFromNow * 1000).toISOString()

function status(over: Partial<StatusView>): StatusView {
  return {
    phase: 'progressing',
    weight: 25,
    step: 1,
    steps: [5, 25, 50, 100],
    stable: { url: 'http://127.0.0.1:9001', requests: 1200, errors: 2, errorRate: 2 / 1200, p50Ms: 3.1, p99Ms: 123.4 },
    canary: { url: 'http://127.0.0.1:9002', requests: 300, errors: 0, errorRate: 0, p50Ms: 31.25, p99Ms: null },
    lastDecision: null,
    reason: null,
    stepStartedAt: at(-20),
    stepEndsAt: at(8),
    generation: 1,
    ...over,
  }
}

t.test('status: phase, weight, step and the time to the next step, relative to now', async (t) => {
  const text = renderStatus(status({}), NOW)
  t.match(text, /^phase {5}progressing {3}weight 25% {3}step 2\/4 \(25%\) {3}next step in 8s$/m)
  t.match(text, /^stable {4}http:\/\/127\.0\.0\.1:9001 {3}requests 1200 {3}error rate 0\.17% {3}p50 3\.10ms {3}p99 123ms$/m)
  t.match(text, /^canary {4}http:\/\/127\.0\.0\.1:9002 {3}requests 300 {3}error rate 0\.00% {3}p50 31\.3ms {3}p99 -$/m)
  t.match(renderStatus(status({ stepEndsAt: at(-2) }), NOW), /next step once the checks pass$/m, 'the step time is up: it waits for a pass')
  t.match(renderStatus(status({ phase: 'baking', weight: 100, step: 3, stepEndsAt: at(75) }), NOW), /step 4\/4 \(100%\) {3}bake ends in 1m 15s$/m)
  t.match(renderStatus(status({ phase: 'baking', stepEndsAt: at(-1) }), NOW), /bake done once the checks pass$/m)
  t.match(renderStatus(status({ phase: 'paused', weight: 30 }), NOW), /^phase {5}paused {3}weight 30% {3}step 2\/4 \(25%\) {3}resume continues$/m)
  t.match(renderStatus(status({ phase: 'idle', weight: 0, step: null, stepEndsAt: null }), NOW), /^phase {5}idle {3}weight 0%$/m)
  t.notMatch(text, /\d{4}-\d\d-\d\dT/, 'no absolute times')
})

t.test('status after the end: no canary after success; the reason wrapped under its label', async (t) => {
  const promoted = status({ phase: 'succeeded', weight: 0, step: null, canary: null, stepEndsAt: null, stable: { ...status({}).stable, url: 'http://127.0.0.1:9002' } })
  t.match(renderStatus(promoted, NOW), /^canary {4}none \(http:\/\/127\.0\.0\.1:9002 promoted: now stable\)$/m)
  t.match(renderStatus(status({ phase: 'aborted', canary: null, stepEndsAt: null }), NOW), /^canary {4}none$/m)
  const long = 'canary error rate 12.1% over 240 requests > max 1.0%; '.repeat(4).trim()
  const ended = renderStatus(status({ phase: 'rolled_back', weight: 0, step: null, stepEndsAt: null, reason: long }), NOW).split('\n')
  const reason = ended.findIndex((l) => l.startsWith('reason    '))
  t.ok(reason > 0, 'a reason line')
  t.ok(ended.slice(reason + 1).every((l) => l.startsWith(' '.repeat(10))), 'continued under the label')
  t.ok(ended.every((l) => l.length <= WIDTH), 'every line fits')
  t.match(ended.join(' ').replace(/\s+/g, ' '), long, 'nothing lost in the wrapping')
})

t.test('the last decision: when, relative; each check with observed, threshold and n', async (t) => {
  const s = status({
    lastDecision: {
      at: at(-3),
      verdict: 'fail',
      reason: 'canary error rate 12.1% over 240 requests > max 1.0%',
      findings: [
        { check: 'maxErrorRate', verdict: 'fail', observed: 0.121, threshold: 0.01, n: 240, reason: '' },
        { check: 'minRequests', verdict: 'pass', observed: 240, threshold: 50, n: 240, reason: '' },
        { check: 'webhook.load-test', verdict: 'insufficient', observed: null, threshold: null, n: 0, reason: '' },
      ],
    },
  })
  const text = renderStatus(s, NOW)
  t.match(text, /^decision {2}fail 3s ago: canary error rate 12\.1% over 240 requests > max 1\.0%$/m)
  t.match(text, /^checks {4}fail\s+maxErrorRate\s+12\.1%\s+max 1\.0%\s+n 240$/m)
  t.match(text, /^ {10}pass\s+minRequests\s+240\s+min 50\s+n 240$/m)
  t.match(text, /^ {10}insufficient webhook\.load-test\s+-\s+n 0$/m, 'a check with no figure (a gate webhook)')
  t.match(renderStatus(status({ lastDecision: { at: at(0), verdict: 'pass', reason: 'ok', findings: [] } }), NOW), /^decision {2}pass just now: ok$/m)
  t.same(renderFindings([]), [])
})

t.test('check figures in their own units', async (t) => {
  t.equal(checkValue('maxErrorRate', 0.0123), '1.2%')
  t.equal(checkValue('maxErrorRate', 0.0004), '0.04%')
  t.equal(checkValue('maxErrorRateIncrease', 0.0045), '0.45 points')
  t.equal(checkValue('maxP99', 0.0042), '4.20ms')
  t.equal(checkValue('maxP99Ratio', 0.25), '250ms', 'latency bounds are seconds, shown in ms')
  t.equal(checkValue('resources.maxMemory', 512 * 2 ** 20), '512.0MiB')
  t.equal(checkValue('resources.maxMemoryRatio', 1.234), '1.23x')
  t.equal(checkValue('resources.maxCpuPerRequestRatio', 2), '2x')
  t.equal(checkValue('checks.queue-depth', 17), '17')
  t.equal(checkValue('checks.throttling', 0.123456), '0.1235')
})

t.test('events: when (relative), who, what, from -> to, and why wrapped under it', async (t) => {
  const e = { at: at(-125), actor: 'admin', action: 'set-weight', from: { phase: 'progressing' as const, weight: 5 }, to: { phase: 'paused' as const, weight: 30 }, reason: null }
  t.equal(renderEvent(e, NOW), '  2m 5s ago  admin    set-weight progressing 5% -> paused 30%')
  const long = renderEvent({ ...e, reason: 'weight set to 30% by admin; automation paused until resume, which continues from the step the weight is in now' }, NOW).split('\n')
  t.ok(long.length > 1, 'a long reason wraps')
  t.ok(long.every((l) => l.length <= WIDTH))
  t.ok(long.slice(1).every((l) => l.startsWith(' '.repeat(13))), 'under the event')
})

t.test('terminal helpers: spans, relative times, wrap, truncate', async (t) => {
  t.equal(span(400), '<1s')
  t.equal(span(8_000), '8s')
  t.equal(span(3_720_000), '1h 2m')
  t.equal(ago(at(-0.5), NOW), 'just now')
  t.equal(ago(at(-61), NOW), '1m 1s ago')
  t.equal(fromNow(at(8), NOW), 'in 8s')
  t.equal(fromNow(at(-1), NOW), 'now')
  t.same(wrap('a  b   c', 100), ['a  b   c'], 'spaces between words are kept')
  t.same(wrap('aaaa bbbb cccc', 9, '  '), ['aaaa bbbb', '  cccc'])
  t.same(wrap('', 10), [''])
  t.same(wrap('averyveryverylongword x', 5), ['averyveryverylongword', 'x'], 'a word longer than a line stays whole')
  t.equal(truncate('abcdef', 10), 'abcdef')
  t.equal(truncate('abcdefghijkl', 8), 'abcde...')
})

t.test('colour: on a terminal that has colours; NO_COLOR (non-empty) off, FORCE_COLOR on, TERM=dumb and pipes off', async (t) => {
  const terminal = { isTTY: true, hasColors: (_count: number, env: Record<string, string | undefined>) => env.NO_COLOR === undefined }
  const pipe = { isTTY: false }
  t.equal(useColour(terminal, {}), true)
  t.equal(useColour(terminal, { NO_COLOR: '1' }), false)
  t.equal(useColour(terminal, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)')
  t.equal(useColour(terminal, { TERM: 'dumb' }), false)
  t.equal(useColour({ isTTY: true, hasColors: () => false }, {}), false, 'a terminal without colours')
  t.equal(useColour({ isTTY: true }, {}), true)
  t.equal(useColour(pipe, {}), false)
  t.equal(useColour(pipe, { FORCE_COLOR: '1' }), true)
  t.equal(useColour(pipe, { FORCE_COLOR: '0' }), false)
  t.equal(useColour(terminal, { NO_COLOR: '1', FORCE_COLOR: '1' }), false, 'NO_COLOR wins')
  const on = colours(true)
  const text = renderStatus(status({ phase: 'rolled_back', lastDecision: { at: at(-1), verdict: 'fail', reason: 'r', findings: [] } }), NOW, on)
  t.match(text, on.red('rolled_back'), 'the phase in colour')
  t.match(text, on.red('fail'), 'the verdict in colour')
  for (const [phase, paint] of [['succeeded', on.green], ['paused', on.yellow], ['baking', on.cyan], ['idle', (s: string) => s]] as const) {
    t.match(renderStatus(status({ phase }), NOW, on), `phase     ${paint(phase)}`)
  }
  t.match(renderStatus(status({ lastDecision: { at: at(-1), verdict: 'insufficient', reason: 'r', findings: [] } }), NOW, on), on.yellow('insufficient'))
})
