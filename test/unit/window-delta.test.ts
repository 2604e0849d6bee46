/** Window deltas are plain data, and merging the deltas of several recorders gives the figures of one recorder that saw all the traffic. */
import t from 'tap'
import { Analysis } from '../../src/analysis/analysis.js'
import { configFromObject } from '../../src/config/load.js'
import { WindowRecorder, type WindowDelta } from '../../src/stats/recorder.js'
import { summarize } from '../../src/stats/side-stats.js'
import { SlidingWindow } from '../../src/stats/window.js'

const T0 = 1_700_000_000_000

/** A seeded stream of outcomes: latency 1ms..2s (log-spread), 3% 5xx, 1% no response. */
function* outcomes(seed: number, n: number): Generator<{ kind: 'response' | 'failure'; isError: boolean; us: number }> {
  let x = seed >>> 0
  const next = (): number => {
    x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0
    return x / 2 ** 32
  }
  for (let i = 0; i < n; i++) {
    const r = next()
    if (r < 0.01) yield { kind: 'failure', isError: true, us: 0 }
    else yield { kind: 'response', isError: r < 0.04, us: Math.round(1000 * Math.exp(next() * Math.log(2000))) }
  }
}

t.test('three recorders merged through JSON deltas read exactly as one recorder that saw everything', async (t) => {
  const parts = [new WindowRecorder(), new WindowRecorder(), new WindowRecorder()]
  const whole = new WindowRecorder()
  const merged = new SlidingWindow(30_000, T0)
  const single = new SlidingWindow(30_000, T0)
  t.teardown(() => {
    for (const r of [...parts, whole]) r.dispose()
    merged.dispose()
    single.dispose()
  })
  let i = 0
  // Five slots of traffic; every slot each recorder ships a delta as JSON, as a worker or a replica does.
  for (let slot = 0; slot < 5; slot++) {
    const now = T0 + slot * 1_000
    merged.advance(now)
    single.advance(now)
    for (const o of outcomes(slot + 1, 3_000)) {
      const part = parts[i++ % parts.length]!
      for (const r of [part, whole]) {
        if (o.kind === 'failure') r.recordFailure()
        else r.recordResponse(o.isError, o.us)
      }
    }
    for (const part of parts) {
      const wire = JSON.stringify(part.takeDelta())
      merged.addDelta(JSON.parse(wire) as WindowDelta)
      t.ok(part.empty, 'a recorder starts again from nothing once taken')
    }
    single.drain(whole)
  }
  const a = summarize(merged.read(T0 + 4_500))
  const b = summarize(single.read(T0 + 4_500))
  t.same(a, b, 'requests, errors, error rate and every quantile agree')
  t.equal(a.requests, 15_000)
  t.ok(a.errors > 0 && a.p99Ms !== null && a.p50Ms !== null)
  const va = merged.view(T0 + 4_500)
  const vb = single.view(T0 + 4_500)
  for (const bound of [5_000, 100_000, 1_000_000]) {
    t.equal(va.countAbove(bound), vb.countAbove(bound), `responses above ${bound}us agree`)
    t.same(va.slowestSlot(bound), vb.slowestSlot(bound), `the slowest slot above ${bound}us agrees`)
  }
})

t.test('an empty recorder gives an empty delta, and an empty delta changes nothing', async (t) => {
  const r = new WindowRecorder()
  const w = new SlidingWindow(10_000, T0)
  t.teardown(() => {
    r.dispose()
    w.dispose()
  })
  const delta = r.takeDelta()
  t.same(delta, { requests: 0, errors: 0, latency: '' })
  w.addDelta(delta)
  t.equal(w.read(T0).requests, 0)
  r.recordFailure()
  const failuresOnly = r.takeDelta()
  t.same(failuresOnly, { requests: 1, errors: 1, latency: '' }, 'failures carry no latency')
  w.addDelta(failuresOnly)
  t.same([w.read(T0).requests, w.read(T0).errors, w.read(T0).latency.totalCount], [1, 1, 0])
})

t.test("a replica's delta read a slot late counts in the latency checks as if it had come in live", async (t) => {
  const parsed = configFromObject({ upstreams: { stable: 'http://127.0.0.1:1', canary: 'http://127.0.0.1:2' }, analysis: { interval: '1s', window: '10s', minRequests: 10, maxP99: '200ms' } })
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error))
  const config = parsed.value.analysis
  const live = new Analysis(config, T0)
  const late = new Analysis(config, T0)
  const without = new Analysis(config, T0)
  t.teardown(() => [live, late, without].forEach((a) => a.dispose()))
  const slow = (): WindowDelta => {
    const r = new WindowRecorder()
    for (let i = 0; i < 10; i++) r.recordResponse(false, 900_000)
    const delta = JSON.parse(JSON.stringify(r.takeDelta())) as WindowDelta
    r.dispose()
    return delta
  }
  const slotMs = live.slotMs
  const first = Math.floor(T0 / slotMs)
  // Three slots of slow canary responses (a trend, not one slot's spike): live as they happen, or each read one slot late (as another replica's).
  for (let k = 0; k < 3; k++) {
    live.addDelta('canary', slow(), first + k)
    for (const a of [live, late, without]) a.advance(T0 + (k + 1) * slotMs)
    late.addDelta('canary', slow(), first + k)
  }
  const now = T0 + 3 * slotMs + 1
  const judge = (a: Analysis) => a.evaluate({ now, phase: 'progressing', weight: 50, baseline: null }).decision.findings.find((f) => f.check === 'maxP99')
  const [a, b, c] = [judge(live), judge(late), judge(without)]
  t.ok(a !== undefined && b !== undefined && c !== undefined, 'maxP99 judged on every side')
  t.same([b?.verdict, b?.reason], [a?.verdict, a?.reason], `late: ${b?.verdict} (${b?.reason ?? ''})`)
  t.equal(a?.verdict, 'fail', '30 responses of 900ms over 3 slots against a 200ms p99 are a proven breach')
  t.not(c?.verdict, 'fail', 'without the late delta there is nothing to judge')
})
