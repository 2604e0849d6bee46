/** metrics.buckets: the config key's checks and defaults, and SideStats' indexed bucket search against a plain linear one. */
import t from 'tap'
import { parseConfigText } from '../../src/config/load.js'
import { renderIssue } from '../../src/config/issues.js'
import { DEFAULT_DURATION_BUCKETS_SECONDS, MAX_DURATION_BUCKETS } from '../../src/stats/buckets.js'
import { SideStats } from '../../src/stats/side-stats.js'

const ok = 'upstreams:\n  stable: http://127.0.0.1:9001\n'
const problems = (text: string): string[] => {
  const r = parseConfigText(text, {})
  return r.ok ? [] : r.error.map(renderIssue)
}

t.test('metrics.buckets defaults to the documented set, ascending, and takes a list of seconds', async (t) => {
  const r = parseConfigText(ok, {})
  t.ok(r.ok)
  if (!r.ok) return
  t.same(r.value.metrics.bucketsSeconds, DEFAULT_DURATION_BUCKETS_SECONDS)
  t.ok(DEFAULT_DURATION_BUCKETS_SECONDS.every((b, i, all) => i === 0 || b > all[i - 1]!), 'ascending')
  // The fill-ins issue 12 asked for: no jump from 10ms to 25ms, nor from 250ms to 500ms.
  for (const bound of [0.001, 0.015, 0.02, 0.3, 0.4, 0.5, 30]) t.ok(DEFAULT_DURATION_BUCKETS_SECONDS.includes(bound), `default has ${bound}s`)
  const custom = parseConfigText(`${ok}metrics:\n  buckets: [0.005, 0.05, 0.5, 5]\n`, {})
  t.ok(custom.ok)
  if (custom.ok) t.same(custom.value.metrics.bucketsSeconds, [0.005, 0.05, 0.5, 5])
})

t.test('bad metrics.buckets: one clear line per problem, and nothing else', async (t) => {
  const table: [string, string, string[]][] = [
    ['out of order', '[0.1, 0.05, 1]', ['metrics.buckets[1]: must be greater than the bucket before it (0.1); buckets go up in order (got 0.05)']],
    ['a repeated bound', '[0.1, 0.1]', ['metrics.buckets[1]: must be greater than the bucket before it (0.1); buckets go up in order (got 0.1)']],
    ['zero', '[0, 1]', ['metrics.buckets[0]: must be a finite number of seconds above 0, such as 0.25 (got 0)']],
    ['negative', '[-1, 1]', ['metrics.buckets[0]: must be a finite number of seconds above 0, such as 0.25 (got -1)']],
    ['empty', '[]', ['metrics.buckets: must have at least 1 item']],
    ['a duration string', '[250ms]', ['metrics.buckets[0]: must be a finite number of seconds above 0, such as 0.25 (got "250ms")']],
    ['infinity', '[1, .inf]', ['metrics.buckets[1]: must be a finite number of seconds above 0, such as 0.25 (got Infinity)']],
    ['+Inf, as in the exposition', '[1, +Inf]', ['metrics.buckets[1]: must be a finite number of seconds above 0, such as 0.25 (got "+Inf")']],
    ['not a list', '0.5', ['metrics.buckets: must be a list (got 0.5)']],
    ['too many', `[${Array.from({ length: MAX_DURATION_BUCKETS + 1 }, (_, i) => (i + 1) / 100).join(', ')}]`, [`metrics.buckets: must have at most ${MAX_DURATION_BUCKETS} items (got ${MAX_DURATION_BUCKETS + 1})`]],
  ]
  for (const [name, value, expected] of table) t.same(problems(`${ok}metrics:\n  buckets: ${value}\n`), expected, name)
  t.same(problems(`${ok}metrics:\n  bucket: [1]\n`), ['metrics.bucket: unknown key (did you mean buckets?); expected one of: buckets'])
})

/** The bucket a plain linear search picks: the first bound at or above the latency, else +Inf. */
function reference(boundsSeconds: readonly number[], latencyUs: number): number {
  const i = boundsSeconds.findIndex((b) => latencyUs <= b * 1e6)
  return i === -1 ? boundsSeconds.length : i
}

t.test('recordResponse puts every latency in the same bucket as a linear search would', async (t) => {
  const sets: (readonly number[])[] = [DEFAULT_DURATION_BUCKETS_SECONDS, [0.0001, 0.00025, 0.0003, 2], [0.005, 0.05, 0.5], [3600], [0.001]]
  for (const bounds of sets) {
    const latencies: number[] = [0, 0.4, 1, 255.9, 256, 256.1, 1_048_575, 1_048_576, 1_048_577, 5_000_000, 7_200_000_000, 5_000_000_000]
    for (const b of bounds) latencies.push(b * 1e6 - 0.5, b * 1e6, b * 1e6 + 0.5, b * 1e6 + 256)
    // and a spread over 1us..100s
    for (let i = 0; i < 2000; i++) latencies.push(Math.pow(10, (i / 2000) * 8) + (i % 7) / 10)
    const stats = new SideStats('canary', bounds)
    t.same(stats.bucketsSeconds, bounds)
    t.equal(stats.durationBuckets.length, bounds.length + 1, 'one slot per bound and +Inf')
    let mismatches = 0
    for (const us of latencies) {
      const before = Float64Array.from(stats.durationBuckets)
      stats.recordResponse(200, us)
      const slot = stats.durationBuckets.findIndex((v, i) => v !== before[i])
      if (slot !== reference(bounds, us)) {
        mismatches++
        t.fail(`bounds ${bounds.join(',')}: ${us}us went to bucket ${slot}, expected ${reference(bounds, us)}`)
      }
    }
    t.equal(mismatches, 0, `bounds ${bounds.slice(0, 4).join(',')}…: ${latencies.length} latencies, each in its bucket`)
    t.equal(stats.durationCount, latencies.length)
  }
})

t.test('the shipped example config lists the default buckets', async (t) => {
  const { loadConfigFile } = await import('../../src/config/load.js')
  const r = await loadConfigFile('config/canary-proxy.yaml', {})
  t.ok(r.ok)
  if (r.ok) t.same(r.value.metrics.bucketsSeconds, DEFAULT_DURATION_BUCKETS_SECONDS, 'config/canary-proxy.yaml says what the default is')
})
