import t from 'tap'
import { canaryBoundUs, ladderFor, LatencyTallyRing, NO_LADDER, REFERENCE_MIN_RESPONSES, robustQuantileUs, type LatencySample } from '../../src/analysis/latency-ladder.js'
import { windowOf } from '../helpers/analysis-step.js'

const SETTINGS = { maxP99Ms: 500, maxP99Ratio: 1.5, minP99DeltaMs: 5 }
const sample = (values: readonly number[]): LatencySample => ({ count: values.length, above: (us) => values.filter((v) => v > us).length })
const responses = (values: readonly number[]) => values.map((us) => ({ error: false, us }))

t.test('ladderFor: maxP99 on both sides; ratio rungs at 1x, 2x, 4x the reference, canary at max(ratio x b, b + delta)', async (t) => {
  const l = ladderFor(SETTINGS, 28_000)
  t.same(l.absolute, { stableUs: 500_000, canaryUs: 500_000 })
  t.same(l.ratio, [
    { stableUs: 28_000, canaryUs: 42_000 },
    { stableUs: 56_000, canaryUs: 84_000 },
    { stableUs: 112_000, canaryUs: 168_000 },
  ])
  t.equal(l.referenceUs, 28_000)
  t.same(ladderFor(SETTINGS, 2_000).ratio![0], { stableUs: 2_000, canaryUs: 7_000 }, 'a fast service: minP99Delta governs')
  t.equal(canaryBoundUs(10_000, 2, 1_000), 20_000)
  t.same(ladderFor(SETTINGS, null), { absolute: { stableUs: 500_000, canaryUs: 500_000 }, ratio: null, referenceUs: null })
  t.same(ladderFor(SETTINGS, 0).ratio, null, 'no usable reference')
  t.same(ladderFor({ maxP99Ms: null, maxP99Ratio: null, minP99DeltaMs: 5 }, 28_000), NO_LADDER)
})

t.test('robustQuantileUs: one slot of stalled responses does not lift the reference', async (t) => {
  const calm = Array.from({ length: 10 }, (_, s) => responses(Array.from({ length: 200 }, (_, i) => 1_000 + ((i * 37 + s) % 200) * 100)))
  const plain = windowOf(calm).quantileUs(0.99)!
  const robust = robustQuantileUs(windowOf(calm))!
  t.ok(Math.abs(robust - plain) / plain < 0.05, `no stall: ${robust} vs ${plain}`)
  const stalled = calm.map((slot, s) => (s === 4 ? responses(slot.map((r) => r.us + 300_000)) : slot))
  const inflated = windowOf(stalled).quantileUs(0.99)!
  const kept = robustQuantileUs(windowOf(stalled))!
  t.ok(inflated > 300_000, `the plain p99 with a stalled slot: ${inflated}`)
  t.ok(kept < 25_000, `without its worst slot: ${kept}`)
  t.equal(robustQuantileUs(windowOf([responses(Array.from({ length: REFERENCE_MIN_RESPONSES - 1 }, () => 1000))])), null, 'too few responses')
  const one = windowOf([calm[0]!])
  t.equal(robustQuantileUs(one), one.quantileUs(0.99), 'a single slot: nothing to leave out, the plain p99')
})

t.test('LatencyTallyRing: each slot is counted against the ladder it began with', async (t) => {
  const ring = new LatencyTallyRing(3, ladderFor(SETTINGS, 10_000))
  // Slot 1 (reference 10ms: canary bound 15ms).
  ring.close(sample([9_000, 11_000, 30_000]), sample([16_000, 14_000]))
  ring.open(ladderFor(SETTINGS, 20_000))
  // Slot 2 (reference 20ms: canary bound 30ms), current.
  let v = ring.view(sample([21_000, 9_000]), sample([16_000, 31_000]))
  t.same(v.ratio!.step.stable, { measured: 5, slow: [3, 1, 0] })
  t.same(v.ratio!.step.canary, { measured: 4, slow: [2, 0, 0] })
  t.same(v.absolute!.step.canary, { measured: 4, slow: [0] })
  t.equal(v.ratio!.slots.length, 2)
  t.equal(v.ladder.referenceUs, 20_000)
  ring.close(sample([21_000, 9_000]), sample([16_000, 31_000]))
  ring.close(sample([]), sample([]))
  ring.close(sample([]), sample([]))
  v = ring.view(sample([]), sample([]))
  t.equal(v.ratio!.slots.length, 3, 'the window holds 3 slots: 2 closed + the current one')
  t.same(v.ratio!.step.stable.slow, [3, 1, 0], 'the step keeps slots that left the window')
  ring.restart()
  v = ring.view(sample([25_000]), sample([]))
  t.same(v.ratio!.step.stable, { measured: 1, slow: [1, 0, 0] }, 'a new step starts from nothing, against the ladder it had')
  t.equal(v.ratio!.slots.length, 1)
})

t.test('LatencyTallyRing: no ratio tally before the first reference; no tally at all without a ladder', async (t) => {
  const ring = new LatencyTallyRing(30, ladderFor(SETTINGS, null))
  ring.close(sample([1_000]), sample([1_000]))
  let v = ring.view(sample([1_000]), sample([1_000]))
  t.equal(v.ratio, null)
  t.same(v.absolute!.step.stable, { measured: 2, slow: [0] })
  ring.open(ladderFor(SETTINGS, 1_000))
  v = ring.view(sample([7_000]), sample([7_000]))
  t.same(v.ratio!.step.stable, { measured: 1, slow: [1, 1, 1] }, 'counted from the slot that had a reference (bounds 1, 2, 4ms)')
  t.same(v.ratio!.step.canary, { measured: 1, slow: [1, 0, 0] }, 'canary bounds 6, 7, 9ms')
  const none = new LatencyTallyRing(30)
  t.same(none.view(sample([1]), sample([1])), { ladder: NO_LADDER, absolute: null, ratio: null })
  t.same(none.ladder, NO_LADDER)
})
