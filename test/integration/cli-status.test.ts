/**
 * What `status` and `events` print against a running app: times relative to
 * now, the checks of the last decision, "no canary" after success,
 * `events --limit`. `status --watch` and colour: cli-watch.test.ts.
 */
import t from 'tap'
import { request } from 'undici'
import { admin } from '../helpers/app.js'
import { clientSetup, until } from '../helpers/cli.js'

/** Steps that stay put during a test, and a gate that gives figures after a few requests. */
const GATE = { analysis: { interval: '100ms', minRequests: 5, maxErrorRate: 0.05, maxP99: '2s' } }

async function traffic(proxyUrl: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await request(`${proxyUrl}/t${i}`)
    await res.body.dump()
  }
}

interface StatusDoc {
  phase: string
  weight: number
  lastDecision: { verdict: string; findings: { check: string }[] } | null
}

async function statusOf(adminUrl: string): Promise<StatusDoc> {
  return (await admin(adminUrl, 'GET', '/api/v1/status')).json as unknown as StatusDoc
}

t.test('status: the next step relative to now, the checks of the last decision, no canary after success', async (t) => {
  const s = await clientSetup(t, GATE)
  const started = await s.cli(['start'])
  t.equal(started.code, 0, started.stderr)
  t.match(started.stdout, /^phase\s+progressing\s+weight 10%\s+step 1\/3 \(10%\)\s+next step in (9m \d+s|10m)$/m, 'the time to the next step, relative')
  t.notMatch(started.stdout, /\d{4}-\d\d-\d\dT\d\d:\d\d/, 'no absolute UTC times')

  // Paused at 100%: every request reaches the canary, and the gate keeps judging it.
  t.equal((await admin(s.app.adminUrl, 'PUT', '/api/v1/weight', { weight: 100 })).status, 200)
  await traffic(s.app.proxyUrl, 20)
  await until('a decision with the error-rate check', async () => {
    const d = (await statusOf(s.app.adminUrl)).lastDecision
    return d?.verdict === 'pass' && d.findings.some((f) => f.check === 'maxErrorRate') ? true : undefined
  })
  const paused = await s.cli(['status'])
  t.equal(paused.code, 0, paused.stderr)
  t.match(paused.stdout, /^phase\s+paused\s+weight 100%\s+step \d\/3 \(\d+%\)\s+resume continues$/m)
  t.match(paused.stdout, /^decision\s+pass (just now|\d+s ago): canary error rate 0\.0%/m, 'when it was decided, relative')
  t.match(paused.stdout, /^checks\s+pass\s+maxErrorRate\s+0\.0%\s+max 5\.0%\s+n \d+$/m, 'each check: verdict, observed, threshold, n')
  t.match(paused.stdout, /^\s+pass\s+maxP99\s+[\d.]+ms\s+max 2000ms\s+n \d+$/m)
  t.notMatch(paused.stdout, /\d{4}-\d\d-\d\dT\d\d:\d\d/, 'no absolute UTC times')

  const promoted = await s.cli(['promote'])
  t.equal(promoted.code, 0, promoted.stderr)
  t.match(promoted.stdout, /^phase\s+succeeded\s+weight 0%/m)
  t.match(promoted.stdout, new RegExp(`^stable\\s+${s.canary.url}\\s`, 'm'), 'the canary is the stable')
  t.match(promoted.stdout, new RegExp(`^canary\\s+none \\(${s.canary.url} promoted: now stable\\)$`, 'm'), 'a clear word for no canary')
})

t.test('events --limit N: the last N, newest last, with times relative to now', async (t) => {
  const s = await clientSetup(t)
  // The history is made through the admin API; what is tested is how the CLI shows it.
  const calls: [('PUT' | 'POST'), string, Record<string, unknown>][] = [
    ['POST', '/api/v1/rollout/start', {}],
    ['PUT', '/api/v1/weight', { weight: 20 }],
    ['PUT', '/api/v1/weight', { weight: 30 }],
    ['POST', '/api/v1/rollout/abort', { reason: 'enough' }],
  ]
  for (const [method, path, body] of calls) t.equal((await admin(s.app.adminUrl, method, path, body)).status, 200, `${method} ${path}`)
  const [all, two, twoJson] = await Promise.all([s.cli(['events', '--json']), s.cli(['events', '--limit', '2']), s.cli(['events', '--limit', '2', '--json'])])
  const every = (JSON.parse(all.stdout) as { events: unknown[] }).events
  t.ok(every.length >= 4, `all the events (${every.length})`)
  t.equal(two.code, 0, two.stderr)
  const heads = two.stdout.split('\n').filter((l) => /^\s+(just now|\d+\S* ago)\s+\S/.test(l))
  t.equal(heads.length, 2, `two events\n${two.stdout}`)
  t.match(heads[0], /set-weight\s+paused 20% -> paused 30%/)
  t.match(heads[1], /abort\s+paused 30% -> aborted 0%\s+enough$/)
  t.notMatch(two.stdout, /\d{4}-\d\d-\d\dT\d\d:\d\d/, 'no absolute UTC times')
  t.same((JSON.parse(twoJson.stdout) as { events: unknown[] }).events, every.slice(-2), '--json: the same last two')
})
