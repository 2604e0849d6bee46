import t from 'tap'
import { buildChecks } from '../../src/analysis/checks/index.js'
import { renderIssue } from '../../src/config/issues.js'
import { parseConfigText } from '../../src/config/load.js'

const ok = 'upstreams:\n  stable: http://127.0.0.1:9001\n'
const analysisOf = (text: string): { falseRollbackRate: number; confidence: number } | string[] => {
  const r = parseConfigText(text, {})
  return r.ok ? r.value.analysis : r.error.map(renderIssue)
}

t.test('analysis.falseRollbackRate: default 0.001; the old gate reads it as its confidence', async (t) => {
  t.match(analysisOf(ok), { falseRollbackRate: 0.001, confidence: 0.999 })
  t.match(analysisOf(`${ok}analysis:\n  falseRollbackRate: 0.01\n`), { falseRollbackRate: 0.01, confidence: 0.99 })
})

t.test('analysis.confidence still works, as the deprecated alias of falseRollbackRate (1 - confidence)', async (t) => {
  const a = analysisOf(`${ok}analysis:\n  confidence: 0.99\n`)
  t.match(a, { confidence: 0.99 })
  t.ok(!Array.isArray(a) && Math.abs(a.falseRollbackRate - 0.01) < 1e-12)
})

t.test('bad values and both keys at once are refused, naming the key and the replacement', async (t) => {
  t.same(analysisOf(`${ok}analysis:\n  confidence: 0.99\n  falseRollbackRate: 0.01\n`), [
    'analysis.confidence: is the deprecated alias of analysis.falseRollbackRate (read as 1 - confidence); set only analysis.falseRollbackRate',
  ])
  t.same(analysisOf(`${ok}analysis:\n  falseRollbackRate: 0\n`), ['analysis.falseRollbackRate: must be > 0'])
  t.same(analysisOf(`${ok}analysis:\n  falseRollbackRate: 0.7\n`), ['analysis.falseRollbackRate: must be <= 0.5'])
  t.same(analysisOf(`${ok}analysis:\n  confidence: 1\n`), ['analysis.confidence: must be < 1'])
})

t.test('the resolved config builds the check set as it is', async (t) => {
  const r = parseConfigText(`${ok}analysis:\n  maxErrorRate: 0.01\n  maxP99Ratio: 1.5\n`, {})
  t.ok(r.ok)
  if (!r.ok) return
  const built = buildChecks({ ...r.value.analysis, steps: r.value.rollout.steps })
  t.same(
    built.checks.map((c) => c.id),
    ['maxErrorRate', 'maxP99Ratio', 'stable.health'],
  )
  t.equal(built.plan.falseRollbackRate, 0.001)
  t.equal(built.plan.failingChecks, 2)
})

t.test('rollout.bakeStableShare: default 0 (the bake at 100%), 0..50, and the α plan follows it', async (t) => {
  const r = parseConfigText(`${ok}rollout:\n  bakeStableShare: 5\n`, {})
  t.ok(r.ok)
  if (!r.ok) return
  t.equal(r.value.rollout.bakeStableShare, 5)
  const plan = buildChecks({ ...r.value.analysis, maxErrorRate: 0.01, steps: r.value.rollout.steps, bakeStableShare: r.value.rollout.bakeStableShare }).plan
  t.same(
    plan.stages.map((s) => s.weight),
    [5, 25, 50, 95],
  )
  const d = parseConfigText(ok, {})
  t.equal(d.ok && d.value.rollout.bakeStableShare, 0)
  t.same(
    (() => {
      const bad = parseConfigText(`${ok}rollout:\n  bakeStableShare: 60\n`, {})
      return bad.ok ? [] : bad.error.map(renderIssue)
    })(),
    ['rollout.bakeStableShare: must be <= 50'],
  )
})
