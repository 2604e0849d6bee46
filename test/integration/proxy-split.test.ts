/** Weighted split: which upstream actually receives each request, at several weights, under overrides and across a weight change. */
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { admin, startApp, type Running } from '../helpers/app.js'
import { sample, scrape } from '../helpers/raw-http.js'
import { startUpstream, type TestUpstream } from '../helpers/upstreams.js'

interface Pair {
  readonly stable: TestUpstream
  readonly canary: TestUpstream
  readonly running: Running
}

async function pair(t: Test, routing: Record<string, unknown> = {}, random?: () => number): Promise<Pair> {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const running = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, routing, rollout: { autoStart: false } }, random === undefined ? {} : { random })
  return { stable, canary, running }
}

async function setWeight(t: Test, adminUrl: string, weight: number): Promise<void> {
  const res = await admin(adminUrl, 'PUT', '/api/v1/weight', { weight })
  t.equal(res.status, 200, `weight set to ${weight}`)
  t.equal(res.json.weight, weight)
}

/** Sends n GETs, `concurrency` at a time; every one must get the upstream's 200. */
async function send(proxyUrl: string, n: number, headers: Record<string, string> = {}, concurrency = 16): Promise<{ failures: number }> {
  let next = 0
  let failures = 0
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++
      const res = await request(`${proxyUrl}/split`, { headers })
      if (res.statusCode !== 200) failures++
      await res.body.dump()
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { failures }
}

t.test('split accuracy at several weights (counted at the upstreams)', async (t) => {
  const { stable, canary, running } = await pair(t)
  // Binomial tolerance: with n independent picks at probability p the canary
  // count has sd sqrt(n p (1-p)); 5 sd makes a false failure ~1 in 1.7 million.
  // At 0 and 100 any single misrouted request fails, so fewer are needed there.
  for (const [weight, n] of [
    [0, 400],
    [5, 1_000],
    [50, 1_000],
    [100, 400],
    [0.5, 1_000],
  ] as const) {
    await setWeight(t, running.adminUrl, weight)
    const s0 = stable.received.length
    const c0 = canary.received.length
    const { failures } = await send(running.proxyUrl, n)
    t.equal(failures, 0, `weight ${weight}: every request answered 200`)
    const toCanary = canary.received.length - c0
    const toStable = stable.received.length - s0
    t.equal(toCanary + toStable, n, `weight ${weight}: every request reached exactly one upstream`)
    const p = weight / 100
    if (p === 0) t.equal(toCanary, 0, 'weight 0: nothing reaches canary')
    else if (p === 1) t.equal(toStable, 0, 'weight 100: nothing reaches stable')
    else {
      const sd = Math.sqrt(n * p * (1 - p))
      const tolerance = 5 * sd
      t.ok(Math.abs(toCanary - n * p) <= tolerance, `weight ${weight}: ${toCanary}/${n} to canary, expected ${n * p} ± ${tolerance.toFixed(1)} (5 sd)`)
    }
  }
})

t.test('the threshold has 0.01% granularity (deterministic random at the boundary)', async (t) => {
  // pick-side sends a request to canary when random() * 10000 < weight * 100;
  // a draw just below weight/100 must go to canary, one just above to stable.
  let draw = 0
  const { stable, canary, running } = await pair(t, {}, () => draw)
  for (const weight of [0.01, 0.5, 5, 33.33, 99.99]) {
    await setWeight(t, running.adminUrl, weight)
    for (const [value, expected] of [
      [weight / 100 - 1e-7, 'canary'],
      [weight / 100 + 1e-7, 'stable'],
    ] as const) {
      draw = value
      const s0 = stable.received.length
      const c0 = canary.received.length
      const res = await request(`${running.proxyUrl}/`)
      const body = (await res.body.json()) as { upstream: string }
      t.equal(body.upstream, expected, `weight ${weight}, draw ${value}: ${expected}`)
      t.equal(stable.received.length - s0 + canary.received.length - c0, 1)
    }
  }
  // The extremes never consult the random source in a way that leaks a request.
  await setWeight(t, running.adminUrl, 0)
  draw = 0
  t.equal(((await (await request(`${running.proxyUrl}/`)).body.json()) as { upstream: string }).upstream, 'stable', 'weight 0, draw 0: stable')
  await setWeight(t, running.adminUrl, 100)
  draw = 0.9999999
  t.equal(((await (await request(`${running.proxyUrl}/`)).body.json()) as { upstream: string }).upstream, 'canary', 'weight 100, draw ~1: canary')
})

t.test('override header x-canary: always / never', async (t) => {
  const { stable, canary, running } = await pair(t)
  const { proxyUrl, adminUrl } = running

  // Idle, weight 0, canary known but not started: only "always" reaches it.
  const status = await admin(adminUrl, 'GET', '/api/v1/status')
  t.equal(status.json.weight, 0)
  await send(proxyUrl, 50)
  t.equal(canary.received.length, 0, 'weight 0: no canary traffic')
  await send(proxyUrl, 20, { 'x-canary': 'always' })
  t.equal(canary.received.length, 20, 'weight 0 + always: canary')
  t.equal(stable.received.length, 50)
  await send(proxyUrl, 10, { 'x-canary': 'never' })
  t.equal(stable.received.length, 60, 'never: stable')

  await setWeight(t, adminUrl, 100)
  await send(proxyUrl, 20, { 'x-canary': 'never' })
  t.equal(stable.received.length, 80, 'weight 100 + never: stable')
  t.equal(canary.received.length, 20)
  await send(proxyUrl, 20)
  t.equal(canary.received.length, 40, 'weight 100: canary')
  t.equal(stable.received.length, 80)
  // Any other value is no override: the weight decides.
  await send(proxyUrl, 5, { 'x-canary': 'sometimes' })
  t.equal(canary.received.length, 45)

  // After an abort the failed canary stays reachable with "always" for debugging; normal traffic is not sent there.
  const aborted = await admin(adminUrl, 'POST', '/api/v1/rollout/abort', {})
  t.equal(aborted.status, 200)
  t.equal(aborted.json.phase, 'aborted')
  t.equal(aborted.json.weight, 0)
  await send(proxyUrl, 30)
  t.equal(canary.received.length, 45, 'aborted: no normal traffic to canary')
  await send(proxyUrl, 3, { 'x-canary': 'always' })
  t.equal(canary.received.length, 48, 'aborted + always: canary')
})

t.test('override header name from config (any case), and override off', async (t) => {
  await t.test('custom name', async (t) => {
    const { canary, running } = await pair(t, { overrideHeader: 'X-Route-To' })
    await send(running.proxyUrl, 3, { 'x-route-to': 'always' })
    t.equal(canary.received.length, 3, 'configured X-Route-To, sent lower-case')
    await send(running.proxyUrl, 3, { 'x-canary': 'always' })
    t.equal(canary.received.length, 3, 'the default name is not an override any more')
  })
  await t.test('disabled with ""', async (t) => {
    const { canary, running } = await pair(t, { overrideHeader: '' })
    await send(running.proxyUrl, 3, { 'x-canary': 'always' })
    t.equal(canary.received.length, 0, 'override off: weight 0 sends nothing to canary')
  })
  await t.test('no canary configured: always goes to stable', async (t) => {
    const stable = await startUpstream(t, 'stable')
    const { proxyUrl } = await startApp(t, { upstreams: { stable: stable.url }, rollout: { autoStart: false } })
    const res = await request(`${proxyUrl}/`, { headers: { 'x-canary': 'always' } })
    t.equal(res.statusCode, 200)
    t.equal(((await res.body.json()) as { upstream: string }).upstream, 'stable')
  })
})

t.test('changing the weight while requests are in flight neither drops nor misroutes them', async (t) => {
  const { stable, canary, running } = await pair(t)
  const { proxyUrl, adminUrl } = running
  stable.behave({ delayMs: 400 })
  await setWeight(t, adminUrl, 0)

  // Slow GETs, plus one upload whose body is still arriving when the weight changes.
  const slow = Array.from({ length: 8 }, () => request(`${proxyUrl}/slow`).then(async (res) => ({ status: res.statusCode, body: (await res.body.json()) as { upstream: string } })))
  let finishUpload: () => void = () => undefined
  const uploadDone = new Promise<void>((resolve) => (finishUpload = resolve))
  async function* uploadBody(): AsyncGenerator<Buffer> {
    yield Buffer.alloc(1000, 1)
    await uploadDone
    yield Buffer.alloc(1000, 2)
  }
  const upload = request(`${proxyUrl}/upload`, { method: 'POST', body: Readable.from(uploadBody()) }).then(async (res) => ({ status: res.statusCode, body: (await res.body.json()) as { upstream: string; bodyBytes: number } }))

  // Wait until all eight GETs have reached stable (the upload reaches it only when its body ends).
  for (let i = 0; i < 200 && stable.received.length < 8; i++) await new Promise((r) => setTimeout(r, 10))
  t.equal(stable.received.length, 8, 'the slow requests are at stable')
  await setWeight(t, adminUrl, 100)
  const after = await Promise.all(Array.from({ length: 8 }, () => request(`${proxyUrl}/new`).then(async (res) => ((await res.body.json()) as { upstream: string }).upstream)))
  finishUpload()

  const before = await Promise.all(slow)
  t.same(
    before.map((r) => `${r.status} ${r.body.upstream}`),
    Array.from({ length: 8 }, () => '200 stable'),
    'requests started at weight 0 complete on stable',
  )
  const up = await upload
  t.equal(up.status, 200)
  t.equal(up.body.upstream, 'stable', 'an upload in progress stays on the side chosen when it started')
  t.equal(up.body.bodyBytes, 2000)
  t.same(after, Array.from({ length: 8 }, () => 'canary'), 'new requests after the switch go to canary')
  t.equal(canary.received.length, 8)

  const metrics = await scrape(adminUrl)
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'stable', status_class: '2xx' }), 9)
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'canary', status_class: '2xx' }), 8)
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'stable', status_class: 'error' }), 0)
  t.equal(sample(metrics, 'canary_proxy_client_aborts_total', { upstream: 'stable' }), 0)
})
