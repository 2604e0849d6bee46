import t from 'tap'
import { SlidingWindow } from '../../src/stats/window.js'
import { BackendStats, ErrorSignal } from '../../src/stats/backend-stats.js'
import { SideStats, summarize } from '../../src/stats/side-stats.js'

const T0 = 1_700_000_000_000

t.test('counts and latency over the window; old slots expire', async (t) => {
  const w = new SlidingWindow(10_000, T0) // 30 slots... of ~334ms
  t.equal(w.slotCount, 30)
  for (let i = 0; i < 100; i++) w.recordResponse(i % 10 === 0, 1000 + i)
  let f = w.read(T0 + 1)
  t.equal(f.requests, 100)
  t.equal(f.errors, 10)
  t.equal(f.errorRate, 0.1)
  t.equal(f.latency.totalCount, 100)
  w.advance(T0 + 5_000)
  for (let i = 0; i < 50; i++) w.recordFailure()
  f = w.read(T0 + 5_001)
  t.equal(f.requests, 150, 'both batches inside the window')
  t.equal(f.errors, 60)
  t.equal(f.latency.totalCount, 100, 'failures carry no latency')
  f = w.read(T0 + 10_500)
  t.equal(f.requests, 50, 'the first batch has expired, the second has not')
  f = w.read(T0 + 16_000)
  t.equal(f.requests, 0, 'everything expires')
  t.equal(f.latency.totalCount, 0)
})

t.test('a long gap expires everything closed at once', async (t) => {
  const w = new SlidingWindow(1_000, T0)
  w.recordResponse(false, 500)
  w.advance(T0 + 500)
  w.recordResponse(true, 500)
  t.equal(w.read(T0 + 501).requests, 2)
  t.equal(w.read(T0 + 60_000).requests, 1, 'closed slots expire; the current one holds the newest records')
  t.equal(w.read(T0 + 60_001).errors, 1)
  // With regular advances (the controller's timer runs every slot), it expires like any other.
  for (let at = T0 + 60_050; at <= T0 + 61_100; at += 50) w.advance(at)
  t.equal(w.read(T0 + 61_100).requests, 0)
})

t.test('the aggregate stays exact through many rotations (closed == sum of slots)', async (t) => {
  const w = new SlidingWindow(3_000, T0, 6)
  const recorded: { at: number; us: number }[] = []
  let now = T0
  for (let i = 0; i < 600; i++) {
    now += 37
    w.advance(now)
    const us = 100 + ((i * 7919) % 5000)
    w.recordResponse(false, us)
    recorded.push({ at: now, us })
  }
  const f = w.read(now)
  const slot = w.slotMs
  const currentSlot = Math.floor(now / slot)
  const expected = recorded.filter((r) => Math.floor(r.at / slot) > currentSlot - 6)
  t.equal(f.requests, expected.length)
  t.equal(f.latency.totalCount, expected.length)
  const max = Math.max(...expected.map((r) => r.us))
  t.ok(Math.abs(f.latency.getValueAtPercentile(100) - max) <= max * 0.001 + 1, 'max latency matches the samples in the window')
})

t.test('reset forgets the figures', async (t) => {
  const w = new SlidingWindow(10_000, T0)
  for (let i = 0; i < 10; i++) w.recordResponse(true, 10)
  w.reset(T0 + 1)
  t.equal(w.read(T0 + 2).requests, 0)
})

t.test('latencies beyond the histogram range are clamped, not dropped or thrown', async (t) => {
  const w = new SlidingWindow(10_000, T0)
  w.recordResponse(false, 10 * 3_600_000_000)
  w.recordResponse(false, 0)
  t.equal(w.read(T0).latency.totalCount, 2)
})

t.test('BackendStats: status classes, duration buckets, aborts, one error signal for a burst, and the window recorder', async (t) => {
  const side = new SideStats('canary')
  const signal = new ErrorSignal()
  let errorsSeen = 0
  signal.listen(() => errorsSeen++)
  const s = new BackendStats(side, signal)
  t.teardown(() => s.dispose())
  s.recordResponse(200, 800) // 0.8ms -> le 0.001
  s.recordResponse(204, 3_000) // le 0.005
  s.recordResponse(302, 40_000) // le 0.05
  s.recordResponse(404, 1_000)
  s.recordResponse(503, 2_000_000) // le 2.5
  s.recordResponse(101, 100)
  s.recordResponse(999, 100) // nonsense status counts as 5xx
  s.recordFailure()
  s.recordClientAbort()
  t.same(Array.from(side.byClass), [1, 2, 1, 1, 2, 1])
  t.equal(errorsSeen, 0, 'the signal is a message: delivered after the exchange, not during it')
  await Promise.resolve()
  t.equal(errorsSeen, 1, '5xx twice and one failure: one message until the control plane reads the figures')
  signal.lower()
  s.recordFailure()
  await Promise.resolve()
  t.equal(errorsSeen, 2, 'raised again once lowered')
  t.equal(side.clientAborts, 1)
  t.equal(side.durationCount, 7)
  t.equal(side.durationBuckets[0], 4, '<= 1ms: 800us, 1000us and the two 100us responses')
  const sum = Array.from(side.durationBuckets).reduce((a, b) => a + b, 0)
  t.equal(sum, 7)
  const w = new SlidingWindow(30_000, T0)
  t.teardown(() => w.dispose())
  w.drain(s.window)
  t.ok(s.window.empty, 'the recorder starts again from nothing once drained')
  const f = summarize(w.read(T0 + 1))
  t.equal(f.requests, 9)
  t.equal(f.errors, 4)
  t.ok(f.p50Ms !== null && f.p99Ms !== null && f.p99Ms >= 1999, `p99 ${String(f.p99Ms)}ms`)
})

t.test('summary of an empty window has null percentiles', async (t) => {
  const w = new SlidingWindow(1000, T0)
  t.teardown(() => w.dispose())
  t.same(summarize(w.read(T0)), { requests: 0, errors: 0, errorRate: 0, p50Ms: null, p90Ms: null, p99Ms: null, p999Ms: null, latencyCount: 0, latencySumSeconds: 0 })
})

t.test('countAbove counts the values above a bound, to the histogram resolution', async (t) => {
  const { countAbove, newLatencyHistogram } = await import('../../src/stats/latency-histogram.js')
  const h = newLatencyHistogram()
  t.teardown(() => h.destroy())
  t.equal(countAbove(h, 10), 0, 'empty')
  for (let v = 1; v <= 1000; v++) h.recordValue(v * 100) // 100us .. 100ms
  t.equal(countAbove(h, 100_000), 0)
  t.equal(countAbove(h, 50_000), 501, '50,000 itself shares a bucket (49,984..50,015) that reaches above the bound')
  t.equal(countAbove(h, 99_999), 1)
  t.equal(countAbove(h, 0), 1000)
  t.equal(countAbove(h, 12_345), 877)
})

t.test('slowestSlot finds the slot with the most responses above a bound, and expires with it', async (t) => {
  const w = new SlidingWindow(30_000, T0) // 30 slots of 1s
  t.same(w.slowestSlot(50_000), { above: 0, count: 0 }, 'empty')
  for (let i = 0; i < 40; i++) w.recordResponse(false, 10_000) // slot 0: all fast
  w.advance(T0 + 1_000)
  for (let i = 0; i < 20; i++) w.recordResponse(false, i < 12 ? 80_000 : 10_000) // slot 1: 12 slow of 20
  w.advance(T0 + 2_000)
  for (let i = 0; i < 30; i++) w.recordResponse(i % 10 === 0, i < 5 ? 90_000 : 10_000) // slot 2 (current): 5 slow of 30
  w.read(T0 + 2_500)
  t.same(w.slowestSlot(50_000), { above: 12, count: 20 })
  t.same(w.slowestSlot(85_000), { above: 5, count: 30 }, 'only slot 2 has values above 85ms')
  t.same(w.slowestSlot(100_000), { above: 0, count: 0 })
  w.read(T0 + 31_500)
  t.same(w.slowestSlot(50_000), { above: 5, count: 30 }, 'slot 1 has left the window')
})

t.test('a disposed window releases its WebAssembly histograms', async (t) => {
  const w = new SlidingWindow(1000, T0)
  w.recordResponse(false, 10)
  w.dispose()
  t.throws(() => w.recordResponse(false, 10), /destroyed/)
})
