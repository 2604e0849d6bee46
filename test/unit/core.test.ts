import { readFile } from 'node:fs/promises'
import t from 'tap'
import { formatDuration, parseDuration } from '../../src/core/duration.js'
import { CanaryProxyError, ERROR_CODES, messageOf, RETIRED_CODES } from '../../src/core/errors.js'
import { differenceLowerBound, normalCdf, wilsonBounds, zForConfidence } from '../../src/rollout/confidence.js'

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
  t.equal(zForConfidence(0.5), 0)
  t.ok(Math.abs(zForConfidence(0.975) - 1.95996) < 1e-3)
  t.ok(Math.abs(zForConfidence(0.99) - 2.32635) < 1e-3)
  t.ok(Math.abs(normalCdf(0) - 0.5) < 1e-7)
  const w = wilsonBounds(0, 20, 1.96)
  t.equal(w.lower, 0)
  t.ok(w.upper > 0.1 && w.upper < 0.2, 'Wilson upper bound of 0/20 is ~16%')
  t.same(wilsonBounds(3, 10, 0), { lower: 0.3, upper: 0.3 })
  t.same(wilsonBounds(0, 0, 2), { lower: 0, upper: 1 })
  t.equal(differenceLowerBound(30, 100, 5, 1000, 0), 0.3 - 0.005)
  t.ok(differenceLowerBound(30, 100, 5, 1000, 2.33) > 0.1)
  t.ok(differenceLowerBound(1, 20, 5, 1000, 2.33) < 0.005, '1 in 20 is not evidence of an increase of half a point')
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
