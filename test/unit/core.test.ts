import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { formatDuration, parseDuration } from '../../src/core/duration.js'
import { CanaryProxyError, ERROR_CODES, messageOf, RETIRED_CODES } from '../../src/core/errors.js'
import { betaQuantile, differenceLowerBound, logGamma, proportionBounds, regularizedBeta } from '../../src/analysis/confidence.js'

t.test('durations', async (t) => {
  t.equal(parseDuration('250ms'), 250)
  t.equal(parseDuration('30s'), 30_000)
  t.equal(parseDuration('2m'), 120_000)
  t.equal(parseDuration('1h'), 3_600_000)
  t.equal(parseDuration('1m30s'), 90_000)
  t.equal(parseDuration('1.5s'), 1500)
  t.equal(parseDuration('0s'), 0)
  for (const bad of ['', '30', 's', '1 s', '-1s', '1d', '1s2', 'ms']) t.equal(parseDuration(bad), null, `${JSON.stringify(bad)} is not a duration`)
  t.equal(formatDuration(250), '250ms')
  t.equal(formatDuration(1500), '1.5s')
  t.equal(formatDuration(90_000), '1.5m')
  t.equal(formatDuration(7_200_000), '2h')
})

t.test('statistics', async (t) => {
  const close = (a: number, b: number, tol: number): boolean => Math.abs(a - b) < tol
  t.ok(close(Math.exp(logGamma(5)), 24, 1e-9), 'Γ(5) = 4!')
  t.ok(close(logGamma(0.5), Math.log(Math.sqrt(Math.PI)), 1e-12), 'Γ(1/2) = √π')
  t.ok(close(regularizedBeta(0.3, 1, 1), 0.3, 1e-12), 'I_x(1,1) = x')
  t.ok(close(regularizedBeta(0.3, 2, 3), 1 - 0.7 ** 4 - 4 * 0.3 * 0.7 ** 3, 1e-12), 'I_x(2,3) from its binomial sum')
  t.ok(close(betaQuantile(regularizedBeta(0.123, 7, 40), 7, 40), 0.123, 1e-9), 'the quantile inverts the CDF')
  // Exact bounds, checked against the binomial tail they are defined by: at the
  // lower bound L of k in n, P(X >= k | L) = 1 - confidence.
  const tail = (k: number, n: number, p: number): number => {
    let below = 0
    for (let i = 0; i < k; i++) below += Math.exp(logGamma(n + 1) - logGamma(i + 1) - logGamma(n - i + 1) + i * Math.log(p) + (n - i) * Math.log1p(-p))
    return 1 - below
  }
  for (const [k, n] of [[2, 25], [1, 20], [30, 100], [5, 1000]] as const) {
    const { lower, upper } = proportionBounds(k, n, 0.99)
    t.ok(close(tail(k, n, lower), 0.01, 1e-6), `P(X >= ${k} | n=${n}, p=lower) = 1%`)
    t.ok(lower < k / n && upper > k / n, `${k}/${n} lies between its bounds`)
  }
  t.ok(proportionBounds(2, 25, 0.99).lower < 0.01, '2 errors in 25 do not prove more than 1% at 99%')
  t.ok(proportionBounds(20, 20, 0.99).lower > 0.7, '20 errors in 20 prove a high rate')
  t.same(proportionBounds(0, 20, 0.99).lower, 0)
  t.same(proportionBounds(20, 20, 0.99).upper, 1)
  t.same(proportionBounds(3, 10, 0.5), { lower: 0.3, upper: 0.3 }, 'confidence 0.5: as observed')
  t.same(proportionBounds(0, 0, 0.99), { lower: 0, upper: 1 })
  t.equal(differenceLowerBound(30, 100, 5, 1000, 0.5), 0.3 - 0.005)
  t.ok(differenceLowerBound(30, 100, 5, 1000, 0.99) > 0.15)
  t.ok(differenceLowerBound(1, 20, 5, 1000, 0.99) < 0.005, '1 in 20 is not evidence of an increase of half a point')
})

t.test('every code the product emits is registered, and every registered code is emitted somewhere', async (t) => {
  const files = (await readdir('src', { recursive: true })).filter((f) => f.endsWith('.ts') && !f.endsWith('errors.ts'))
  const emitted = new Set<string>()
  for (const f of files) for (const m of (await readFile(join('src', f), 'utf8')).matchAll(/'(CPX_[A-Z_]+)'/g)) emitted.add(m[1]!)
  const registered = Object.keys(ERROR_CODES)
  t.same([...emitted].filter((c) => !registered.includes(c)), [], 'no code is emitted without a registry entry (one status, a message)')
  t.same(registered.filter((c) => !emitted.has(c)), [], 'no registered code is only documented: each is emitted by some module')
})

t.test('the error registry matches the README table', async (t) => {
  const readme = await readFile('README.md', 'utf8')
  const documented = [...readme.matchAll(/^\| `(CPX_ERR_[A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])])
  const registry = Object.entries(ERROR_CODES).map(([code, e]) => [code, e.status])
  t.same(documented, registry, 'README "Errors" lists every code, in order, with its status')
  for (const code of RETIRED_CODES) t.notOk(code in ERROR_CODES, `retired ${code} is not reused`)
  t.equal(messageOf('CPX_ERR_UPSTREAM_TIMEOUT', { side: 'canary', timeout: '30s' }), 'the canary upstream did not respond within 30s')
  t.equal(messageOf('CPX_ERR_UPSTREAM_CONNECT', { side: 'stable' }), 'could not connect to the stable upstream: {cause}', 'unknown placeholders stay visible')
  const e = new CanaryProxyError('CPX_ERR_ADMIN_CONFLICT', { detail: 'nope' })
  t.same([e.code, e.status, e.message], ['CPX_ERR_ADMIN_CONFLICT', 409, 'nope'])
})
