// CPU and memory checks on healthy and CPU-hungry canaries, against real parts: the real
// proxy splitting real traffic at 50%, upstreams that are real child
// processes exporting their own process metrics (prom-client), a real
// Prometheus scraping them every second, and the probes on a real ProbeRunner
// (attached from outside until the controller runs probes itself).
import t from 'tap'
import type { Finding } from '../../src/analysis/finding.js'
import { systemClock } from '../../src/core/clock.js'
import { buildExternalChecks } from '../../src/probes/external-checks.js'
import { attachRunner, GateLoop, rolloutFrom } from '../helpers/probe-wiring.js'
import { externalConfig, proxyAt50, traffic, until } from '../helpers/resource-run.js'
import { startResourceUpstream } from '../helpers/resource-upstream.js'

/** Hash rounds per request: ~2 ms of CPU on this machine for the healthy side. */
const WORK = 500

const failures = (findings: readonly Finding[]): Finding[] => findings.filter((f) => f.verdict === 'fail')

// Three times the hashing is about twice the CPU per request: each request also costs the HTTP exchange (~1 ms here).
t.test('a canary burning twice the CPU per request fails maxCpuPerRequestRatio; its memory checks do not fail', async (t) => {
  const [stable, canary] = await Promise.all([startResourceUpstream(t, { work: WORK }), startResourceUpstream(t, { work: 3 * WORK })])
  const running = await proxyAt50(t, stable, canary)
  const external = buildExternalChecks(externalConfig(running, { resources: { interval: '1s', timeout: '800ms', maxCpuPerRequestRatio: 1.5, maxMemoryRatio: 2, maxMemory: '1Gi' } }), { clock: systemClock })
  const runner = attachRunner(running.app, external.probes)
  const loop = new GateLoop(external.checks, runner, rolloutFrom(running.app), 250)
  const load = traffic(t, running.proxyUrl)
  runner.start()
  t.teardown(async () => {
    loop.stop()
    await runner.stop()
    await external.close()
  })
  await until(() => loop.first('resources.maxCpuPerRequestRatio', 'fail') !== undefined, 30_000)
  await load.stop()
  if (process.env.DEBUG_PROBES) for (const f of loop.of('resources.maxCpuPerRequestRatio').filter((_, i) => i % 4 === 0)) console.error(f.verdict, f.reason)
  const cpu = loop.first('resources.maxCpuPerRequestRatio', 'fail')
  t.ok(cpu, 'the CPU check failed')
  t.match(cpu?.reason, /^canary CPU [\d.]+ ms per request = [\d.]+x stable's [\d.]+ ms > max 1\.50x in 3 consecutive samples \(samples [\d.]+x, [\d.]+x, [\d.]+x over \d+(\.\d+)?s, \d+ canary requests\); [\d.]+ cores per instance above/, cpu?.reason ?? '')
  t.ok((cpu?.observed ?? 0) > 1.5 && (cpu?.observed ?? 0) < 4, `the ratio is over the limit and of the order of the work done (${cpu?.observed})`)
  t.same(failures([...loop.of('resources.maxMemory'), ...loop.of('resources.maxMemoryRatio')]), [], 'memory checks never failed')
  t.ok(loop.first('resources.maxMemory', 'pass'), 'maxMemory passed')
})

t.test('a healthy pair beside a noisy neighbour is never failed by a resource check, and passes', async (t) => {
  const [stable, canary] = await Promise.all([startResourceUpstream(t, { work: WORK }), startResourceUpstream(t, { work: WORK }), startResourceUpstream(t, { mode: 'noisy' })])
  const running = await proxyAt50(t, stable, canary)
  const external = buildExternalChecks(
    externalConfig(running, { resources: { interval: '1s', timeout: '800ms', maxCpuPerRequestRatio: 1.5, maxMemoryRatio: 1.5, maxMemory: '1Gi', maxMemoryGrowthPerMinute: '60Mi', growthWindow: '8s' } }),
    { clock: systemClock },
  )
  const runner = attachRunner(running.app, external.probes)
  const loop = new GateLoop(external.checks, runner, rolloutFrom(running.app), 250)
  const load = traffic(t, running.proxyUrl)
  runner.start()
  t.teardown(async () => {
    loop.stop()
    await runner.stop()
    await external.close()
  })
  // Long enough for every check to pass several times over (the growth check needs 8 s of samples).
  const ids = external.checks.map((c) => c.id)
  await until(() => ids.every((id) => loop.of(id).filter((f) => f.verdict === 'pass').length >= 12), 30_000)
  await load.stop()
  for (const id of ids) {
    if (process.env.DEBUG_PROBES) for (const f of failures(loop.of(id)).slice(0, 3)) console.error('FAIL', f.reason)
    t.same(failures(loop.of(id)), [], `${id} never failed`)
    t.ok(loop.first(id, 'pass'), `${id} passed`)
  }
})
