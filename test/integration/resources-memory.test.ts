// Memory checks and custom Prometheus checks against real parts: the real
// proxy splitting real traffic at 50%, upstreams that are real child
// processes exporting their own process metrics (prom-client), a real
// Prometheus scraping them every second, and the probes on a real ProbeRunner
// (attached from outside until the controller runs probes itself).
import t from 'tap'
import type { Finding } from '../../src/analysis/finding.js'
import { formatBytes } from '../../src/core/bytes.js'
import { systemClock } from '../../src/core/clock.js'
import { buildExternalChecks } from '../../src/probes/external-checks.js'
import { ControlPlaneHttp } from '../../src/probes/http.js'
import { scrapeProcessMetrics, type ResourceSeries } from '../../src/probes/resources.js'
import { attachRunner, GateLoop, rolloutFrom } from '../helpers/probe-wiring.js'
import { startPrometheus } from '../helpers/prometheus-server.js'
import { externalConfig, proxyAt50, traffic, until } from '../helpers/resource-run.js'
import { startResourceUpstream, type ResourceUpstream } from '../helpers/resource-upstream.js'
import { closedPort } from '../helpers/upstreams.js'

/** Hash rounds per request: ~2 ms of CPU on this machine for the healthy side. */
const WORK = 500
const MiB = 1024 * 1024

async function rssOf(upstream: ResourceUpstream): Promise<number> {
  const http = new ControlPlaneHttp()
  try {
    const reading = await scrapeProcessMetrics(http, `${upstream.url}/metrics`, AbortSignal.timeout(5000))
    if (reading.rssBytes === null) throw new Error(reading.error ?? 'no rss')
    return reading.rssBytes
  } finally {
    await http.close()
  }
}

const failures = (findings: readonly Finding[]): Finding[] => findings.filter((f) => f.verdict === 'fail')

t.test('a canary that allocates 5 MiB/s fails maxMemory, the growth check and a Prometheus check; empty, NaN and unreachable queries only hold', async (t) => {
  const start = Date.now()
  const [stable, canary] = await Promise.all([startResourceUpstream(t, { work: WORK }), startResourceUpstream(t, { work: WORK, leakMiBPerSecond: 5 })])
  const prometheus = await startPrometheus(t, [stable.host, canary.host])
  const running = await proxyAt50(t, stable, canary)
  // The limit sits 40 MiB above what a healthy upstream uses here: the leak crosses it in ~8 s.
  const maxMemory = Math.ceil(((await rssOf(stable)) + 40 * MiB) / MiB) * MiB
  const config = externalConfig(running, {
    resources: { interval: '1s', timeout: '800ms', maxMemory: String(maxMemory), maxMemoryGrowthPerMinute: '60Mi', growthWindow: '8s', consecutive: 3 },
    prometheus: { url: prometheus.url },
    checks: [
      { name: 'canary-rss', query: 'max(process_resident_memory_bytes{instance="{{canary_host}}"})', max: maxMemory, interval: '1s', consecutive: 2 },
      { name: 'empty', query: 'process_resident_memory_bytes{instance="nowhere.test:1"}', max: 1, interval: '1s' },
      { name: 'nan', query: 'vector(0) / 0', max: 1, interval: '1s' },
      { name: 'stable-cpu', query: 'sum(rate(process_cpu_seconds_total{instance="{{stable_host}}"}[5s]))', max: 100, interval: '1s' },
    ],
  })
  const deadConfig = externalConfig(running, { prometheus: { url: `http://127.0.0.1:${await closedPort()}`, timeout: '500ms' }, checks: [{ name: 'down', query: 'up', min: 1, interval: '1s' }] })
  const external = buildExternalChecks(config, { clock: systemClock })
  const dead = buildExternalChecks(deadConfig, { clock: systemClock })
  const runner = attachRunner(running.app, [...external.probes, ...dead.probes])
  const checks = [...external.checks, ...dead.checks]
  const loop = new GateLoop(checks, runner, rolloutFrom(running.app), 250)
  const load = traffic(t, running.proxyUrl)
  runner.start()
  t.teardown(async () => {
    loop.stop()
    await runner.stop()
    await external.close()
    await dead.close()
  })

  const ids = ['resources.maxMemory', 'resources.maxMemoryGrowthPerMinute', 'checks.canary-rss']
  const t0 = Date.now()
  await until(() => ids.every((id) => loop.first(id, 'fail') !== undefined), 40_000)
  if (process.env.DEBUG_PROBES) console.error('fails after', Date.now() - t0, 'started at', t0 - start)
  await load.stop()

  const memory = loop.first('resources.maxMemory', 'fail')
  t.ok(memory, 'maxMemory failed')
  t.match(memory?.reason, new RegExp(`^canary instance http://${canary.host}/metrics resident memory .* > max ${formatBytes(maxMemory)} in 3 consecutive samples \\(`), memory?.reason ?? '')
  t.equal(memory?.threshold, maxMemory)
  t.ok((memory?.observed ?? 0) > maxMemory, 'observed is the value over the limit')
  // Proven at the third sample over the limit, not later: what failed is the third sample after the crossing.
  const rssSeries = (runner.latest<ResourceSeries>('resources.canary')?.value?.samples ?? []).map((s) => s.instances[0]?.rssBytes ?? 0)
  const crossed = rssSeries.findIndex((v, i) => [v, rssSeries[i + 1], rssSeries[i + 2]].every((x) => x !== undefined && x > maxMemory))
  t.ok(crossed > 0 && rssSeries[crossed - 1]! <= maxMemory, 'the series holds the crossing and a sample under the limit before it')
  t.equal(memory?.observed, rssSeries[crossed + 2], 'failed at the third sample in a row over the limit')
  const growth = loop.first('resources.maxMemoryGrowthPerMinute', 'fail')
  t.ok(growth, 'the growth check failed')
  t.match(growth?.reason, /memory grows [\d.]+ MiB\/min \(99\.9% bounds .* > max 60 MiB\/min/, growth?.reason ?? '')
  t.ok((growth?.observed ?? 0) > 150 * MiB && (growth?.observed ?? 0) < 600 * MiB, `the slope is near the 300 MiB/min allocated (${formatBytes(growth?.observed ?? 0)}/min)`)
  const rss = loop.first('checks.canary-rss', 'fail')
  t.ok(rss, 'the Prometheus check failed')
  t.match(rss?.reason, new RegExp(`^checks\\.canary-rss: \\d+ > max ${maxMemory} in 2 consecutive results .* of max\\(process_resident_memory_bytes\\{instance="${canary.host.replace(/\./g, '\\.')}"\\}\\)`), rss?.reason ?? '')

  for (const id of ['checks.empty', 'checks.nan', 'checks.down']) {
    t.same(failures(loop.of(id)), [], `${id} never failed`)
    t.ok(loop.of(id).length > 0, `${id} was evaluated`)
  }
  t.match(loop.of('checks.empty').at(-1)?.reason, /no data \(the query returned no series\)/)
  t.match(loop.of('checks.nan').at(-1)?.reason, /no data \(the value is NaN\)/)
  t.match(loop.of('checks.down').at(-1)?.reason, /Prometheus unreachable: connection refused/)
  t.equal(loop.first('checks.stable-cpu', 'pass')?.verdict, 'pass', 'a query on the stable host passes within its bounds')
  t.ok(load.sent() > 0)
})

