/**
 * config/prometheus and config/grafana against the real thing: promtool checks
 * the rules (and runs their unit tests) and the scrape examples, and a real
 * Prometheus scrapes the real proxy through a rollback: the rollback alert
 * fires and every dashboard query evaluates.
 */
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { parse, stringify } from 'yaml'
import { startApp } from '../helpers/app.js'
import { REPO, until } from '../helpers/cli.js'
import { promtool, startPrometheus, type RunningPrometheus } from '../helpers/prometheus.js'
import { startUpstream } from '../helpers/upstreams.js'

const PROMETHEUS_DIR = join(REPO, 'config', 'prometheus')
const ALERTS = join(PROMETHEUS_DIR, 'alerts.yaml')
const DASHBOARD = join(REPO, 'config', 'grafana', 'canary-proxy.json')

type ScrapeConfig = Record<string, unknown> & { job_name: string }

async function scrapeConfigsOf(file: string): Promise<ScrapeConfig[]> {
  const doc = parse(await readFile(join(PROMETHEUS_DIR, file), 'utf8')) as { scrape_configs: ScrapeConfig[]; rule_files: string[] }
  return doc.scrape_configs
}

/**
 * The Kubernetes example's job with its discovery swapped for static targets
 * carrying the labels pod discovery gives (one target per container port):
 * Debian's Prometheus is built without Kubernetes discovery, and the
 * relabelling is what matters here. `others` are ports the job must drop.
 */
function asStatic(job: ScrapeConfig, name: string, adminAddress: string, others: readonly { address: string; container: string; port: string }[] = []): ScrapeConfig {
  const { kubernetes_sd_configs: _discovery, ...rest } = job
  const target = (address: string, container: string, port: string): Record<string, unknown> => ({
    targets: [address],
    labels: {
      __meta_kubernetes_pod_container_name: container,
      __meta_kubernetes_pod_container_port_name: port,
      __meta_kubernetes_pod_annotation_prometheus_io_scrape: 'true',
      __meta_kubernetes_pod_annotation_prometheus_io_path: '/metrics',
      __meta_kubernetes_namespace: 'shop',
      __meta_kubernetes_pod_name: 'canary-proxy-7d9c-x2x4q',
    },
  })
  return { ...rest, job_name: name, static_configs: [target(adminAddress, 'canary-proxy', 'admin'), ...others.map((o) => target(o.address, o.container, o.port))] }
}

t.test('promtool: the alert rules and their unit tests, the scrape examples', async (t) => {
  const rules = await promtool(['check', 'rules', ALERTS])
  t.equal(rules.code, 0, `promtool check rules: ${rules.stdout}${rules.stderr}`)
  t.match(rules.stdout, /SUCCESS: 7 rules found/)
  const tests = await promtool(['test', 'rules', 'alerts.test.yaml'], { cwd: PROMETHEUS_DIR })
  t.equal(tests.code, 0, `promtool test rules: ${tests.stdout}${tests.stderr}`)
  const config = await promtool(['check', 'config', 'prometheus.yml'], { cwd: PROMETHEUS_DIR })
  t.equal(config.code, 0, `promtool check config prometheus.yml: ${config.stdout}${config.stderr}`)

  // kubernetes.yml: everything but its discovery block, checked by promtool (see asStatic).
  const dir = await mkdtemp(join(tmpdir(), 'canary-proxy-promtool-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const k8s = parse(await readFile(join(PROMETHEUS_DIR, 'kubernetes.yml'), 'utf8')) as { scrape_configs: ScrapeConfig[] }
  t.same(
    k8s.scrape_configs.map((j) => Object.keys(j.kubernetes_sd_configs as object[])),
    [['0']],
    'one job, discovering pods',
  )
  t.same((k8s.scrape_configs[0]!.kubernetes_sd_configs as { role: string }[])[0], { role: 'pod' })
  await writeFile(join(dir, 'kubernetes.yml'), stringify({ ...k8s, scrape_configs: k8s.scrape_configs.map((j) => asStatic(j, j.job_name, '127.0.0.1:9901')) }))
  await copyFile(ALERTS, join(dir, 'alerts.yaml'))
  const k8sConfig = await promtool(['check', 'config', 'kubernetes.yml'], { cwd: dir })
  t.equal(k8sConfig.code, 0, `promtool check config kubernetes.yml: ${k8sConfig.stdout}${k8sConfig.stderr}`)
})

interface DashboardTarget {
  readonly expr: string
  readonly refId: string
}
interface DashboardPanel {
  readonly id: number
  readonly type: string
  readonly title: string
  readonly gridPos: { x: number; y: number; w: number; h: number }
  readonly datasource?: { type: string; uid: string }
  readonly targets?: DashboardTarget[]
}
interface Dashboard {
  readonly uid: string
  readonly title: string
  readonly schemaVersion: number
  readonly panels: DashboardPanel[]
  readonly templating: { list: { name: string; type: string; query: string | { query: string } }[] }
  readonly annotations: { list: { expr?: string; name: string }[] }
}

/** What Grafana puts in place of the dashboard's variables, for this test's Prometheus (500ms scrapes). */
function substitute(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5s').replaceAll('$__range', '5m').replaceAll('$__interval', '1s').replaceAll('$job', 'canary-proxy').replaceAll('$instance', '.+')
}

t.test('the Grafana dashboard: every panel in the grid, on the data source variable, with the operator\'s views', async (t) => {
  const d = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard
  t.equal(d.uid, 'canary-proxy')
  t.ok(d.schemaVersion >= 36, 'a schema current Grafana imports as is')
  t.same(d.panels.map((p) => p.id), [...new Set(d.panels.map((p) => p.id))], 'unique panel ids')
  for (const p of d.panels) {
    t.ok(p.gridPos.x >= 0 && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title}: within the 24-column grid`)
    if (p.type === 'row') continue
    t.same(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `${p.title}: on the data source variable`)
    t.ok((p.targets ?? []).length > 0 && (p.targets ?? []).every((q) => q.expr.includes('job=~"$job"') && q.expr.includes('instance=~"$instance"')), `${p.title}: queries filtered by $job and $instance`)
  }
  t.same(
    d.templating.list.map((v) => v.name),
    ['datasource', 'job', 'instance'],
  )
  const exprs = d.panels.flatMap((p) => (p.targets ?? []).map((q) => q.expr)).join('\n')
  for (const [view, pattern] of [
    ['weight over time', /canary_proxy_canary_weight/],
    ['per-side rate', /sum by \(upstream\) \(rate\(canary_proxy_requests_total/],
    ['error ratio from the counters', /status_class=~"5xx\|error"/],
    ['p99 from the histogram', /histogram_quantile\(0\.99, sum by \(upstream, le\) \(rate\(canary_proxy_request_duration_seconds_bucket/],
    ['phase', /canary_proxy_rollout_phase/],
    ['rollbacks', /canary_proxy_rollbacks_total/],
    ['check values vs thresholds', /canary_proxy_check_value.*\/.*canary_proxy_check_threshold/],
    ['verdicts', /canary_proxy_check_verdict/],
  ] as const) {
    t.match(exprs, pattern, `shows ${view}`)
  }
})

t.test('a real Prometheus scrapes the proxy through a rollback: the rollback alert fires, the dashboard queries evaluate', async (t) => {
  const stable = await startUpstream(t, 'stable', { delayMs: 2 })
  const canary = await startUpstream(t, 'canary', { delayMs: 2 })
  const { app, adminUrl, proxyUrl } = await startApp(t, {
    upstreams: { stable: stable.url, canary: canary.url },
    rollout: { steps: [20, 100], stepDuration: '5m', autoStart: true },
    // maxP99 far above anything a busy machine adds: only the errors decide here.
    analysis: { interval: '200ms', window: '10s', minRequests: 10, maxErrorRate: 0.05, maxP99: '30s' },
  })
  const admin = new URL(adminUrl)
  const adminAddress = admin.host
  const [staticJob] = await scrapeConfigsOf('prometheus.yml')
  const [podJob] = await scrapeConfigsOf('kubernetes.yml')
  const prometheus = await startPrometheus(t, {
    ruleFiles: [ALERTS],
    scrapeConfigs: [
      { ...staticJob!, static_configs: [{ targets: [adminAddress] }] },
      // The proxy's data port and another container's port are discovered too: only the admin port is kept.
      asStatic(podJob!, 'canary-proxy-pods', adminAddress, [
        { address: new URL(proxyUrl).host, container: 'canary-proxy', port: 'http' },
        { address: '127.0.0.1:1', container: 'app', port: 'admin' },
      ]),
    ],
  })

  // Steady traffic through the proxy until the test ends (bounded: it stops with the test).
  let running = true
  const traffic = (async () => {
    let n = 0
    while (running) {
      const res = await request(`${proxyUrl}/r${n++}`, { headers: { 'x-user-id': `u${n % 200}` } }).catch(() => null)
      await res?.body.dump()
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })()
  t.teardown(async () => {
    running = false
    await traffic
  })

  const one = async (expr: string): Promise<number | undefined> => {
    const r = await prometheus.query(expr)
    return r.length === 1 ? r[0]!.value : undefined
  }
  await until('Prometheus to see the rollout progressing, with canary traffic and no rollback', async () => {
    const progressing = await one('canary_proxy_rollout_phase{job="canary-proxy", phase="progressing"} == 1')
    const rollbacks = await one('canary_proxy_rollbacks_total{job="canary-proxy"}')
    const canaryRequests = await one('sum(canary_proxy_requests_total{job="canary-proxy", upstream="canary"})')
    return progressing === 1 && rollbacks === 0 && canaryRequests !== undefined && canaryRequests > 0 ? true : undefined
  }, 20_000, 100)
  t.equal(app.controller.state.phase, 'progressing')
  t.same((await prometheus.alerts()).filter((a) => a.labels.alertname === 'CanaryProxyRolledBack'), [], 'no rollback alert while healthy')

  // The pod job reached the admin port through the relabelling, and carries the pod's labels.
  const targets = await until('both scrape jobs to be up, and the other discovered ports dropped', async () => {
    const all = await prometheus.targets()
    return all.length === 2 && all.every((x) => x.health === 'up') ? all : undefined
  }, 10_000, 100)
  const pod = targets.find((x) => x.labels.job === 'canary-proxy-pods')
  t.equal(pod?.scrapeUrl, `http://${adminAddress}/metrics`, 'scraped on the admin port, at the annotated path')
  t.same([pod?.labels.namespace, pod?.labels.pod], ['shop', 'canary-proxy-7d9c-x2x4q'])

  // The canary breaks: rolled back by the proxy, then alerted by Prometheus.
  canary.behave({ status: 503, delayMs: 2 })
  await until('the proxy to roll the canary back', () => (app.controller.state.phase === 'rolled_back' ? true : undefined), 15_000, 20)
  const firing = await until('the rollback alert to fire', async () => {
    const alert = (await prometheus.alerts()).find((a) => a.labels.alertname === 'CanaryProxyRolledBack' && a.labels.job === 'canary-proxy' && a.state === 'firing')
    return alert
  }, 20_000, 100)
  t.equal(firing.labels.severity, 'warning')
  t.equal(firing.labels.instance, adminAddress)
  t.equal(firing.annotations.summary, `canary-proxy ${adminAddress} rolled the canary back`)
  const others = (await prometheus.alerts()).filter((a) => a.labels.alertname !== 'CanaryProxyRolledBack')
  t.same(others.map((a) => a.labels.alertname), [], 'nothing else is alerting (up, ready, state store, audit)')
  const groups = await prometheus.rules()
  const rules = groups.flatMap((g) => g.rules)
  t.equal(rules.length, 7)
  t.same(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError ?? r.health}`), [], 'every rule evaluates without error')

  await checkDashboardQueries(t, prometheus)
  t.equal(await one('canary_proxy_rollbacks_total{job="canary-proxy"}'), 1)
})

/** Every query of the dashboard evaluates on real data; the ones a rollback must fill return series. */
async function checkDashboardQueries(t: Test, prometheus: RunningPrometheus): Promise<void> {
  const d = JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard
  const mustHaveData = new Set([
    'Phase',
    'Canary weight',
    'Step',
    'Rollbacks in range',
    'Ready',
    'State store',
    'Canary weight over time',
    'Phase over time',
    'Requests per second',
    'Error ratio',
    'p99 latency (histogram)',
    'Window error ratio',
    'Window latency p99',
    'Checks: observed / threshold',
    'Checks of the last decision',
    'Upstreams',
  ])
  for (const p of d.panels) {
    for (const q of p.targets ?? []) {
      const expr = substitute(q.expr)
      let samples
      try {
        samples = await prometheus.query(expr)
      } catch (error) {
        t.fail(`${p.title} ${q.refId}: ${(error as Error).message}`)
        continue
      }
      if (mustHaveData.has(p.title) && q.refId === 'A') t.ok(samples.length > 0, `${p.title}: ${expr} has data`)
      else t.pass(`${p.title} ${q.refId}: evaluates`)
    }
  }
  const titled = (title: string): string => substitute(d.panels.find((p) => p.title === title)!.targets![0]!.expr)
  t.same((await prometheus.query(titled('Phase'))).map((s) => s.metric.phase), ['rolled_back'], 'the phase stat reads rolled_back')
  t.equal((await prometheus.query(titled('Step')))[0]?.value, 0, 'no step after the rollback (-1 + 1)')
  const errors = await prometheus.query(titled('Error ratio'))
  t.ok((errors.find((s) => s.metric.upstream === 'canary')?.value ?? 0) > 0, 'the canary error ratio shows the failure')
  const verdicts = await prometheus.query(substitute(d.panels.find((p) => p.title === 'Checks of the last decision')!.targets![2]!.expr))
  t.ok(verdicts.some((s) => s.metric.check === 'maxErrorRate' && s.metric.verdict === 'fail'), 'the checks table shows maxErrorRate failed')
  for (const annotation of d.annotations.list) {
    if (annotation.expr === undefined) continue
    await prometheus.query(substitute(annotation.expr))
    t.pass(`annotation ${annotation.name}: evaluates`)
  }
  // The variables' label_values(metric, label) queries: the metric has the label.
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue
    const query = typeof v.query === 'string' ? v.query : v.query.query
    const m = /^label_values\((.+), (\w+)\)$/.exec(query)
    t.ok(m !== null, `variable ${v.name}: label_values(metric, label)`)
    if (m === null) continue
    const samples = await prometheus.query(substitute(m[1]!))
    t.ok(samples.length > 0 && samples.every((s) => typeof s.metric[m[2]!] === 'string'), `variable ${v.name}: ${m[1]} has the ${m[2]} label`)
  }
}
