/** `npm run bench`: starts every candidate in its own pinned process, runs the interleaved load and the microbench, and writes bench/RESULTS.md. */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { runDecisionBench } from './decision.js'
import { runReplicasBench } from './replicas.js'
import { runWorkersBench, WORKERS_HEADING } from './workers.js'
import { Children, cpuSeconds, rssBytes, tasksetAvailable, type Handle } from './lib/children.js'
import { cpuBusySeconds, loadAverage, machine } from './lib/machine.js'
import { stickyBucket } from '../src/routing/sticky-bucket.js'
import { BODY_BYTES, PATH, requestList, STICKY_HEADER } from './lib/payload.js'
import { renderResults, type CandidateId, type CandidateInfo, type LatencyRun, type MemoryPoint, type Plan, type Report, type ThroughputRun } from './lib/report.js'
import type { ClosedResult, OpenResult } from './load/load-generator.js'
import type { LoopStats } from './lib/loop-stats.js'
import type { MicroResult } from './micro/record-cost.js'
import { findNginx, freePort, nginxArgs, type NginxBinary } from './servers/nginx.js'

/*
 * Usage: npm run bench [-- flags]      (build, then node dist/bench/run.js)
 *
 *   --quick            short trial: 3 s runs, 2 rounds, 1 latency round; writes bench/RESULTS.quick.md
 *   --out FILE         write the results elsewhere
 *   --proxy-cpu N      CPU list the proxies are pinned to (default 0)
 *   --load-cpus LIST   CPU list for the upstream and the load generator (default 1)
 *   --skip-nginx       leave nginx out even when it is installed
 *   --skip-decision    leave out the decision bench (bench/decision.ts)
 *   --skip-replicas    leave out the replicas bench (bench/replicas.ts; alone: npm run bench:replicas)
 *   --skip-workers     leave out the workers bench (bench/workers.ts, listen.workers 1 against 2)
 *
 * Order: start the upstream, the load generator and every candidate (each its
 * own process), warm up, interleaved throughput rounds, fixed-rate latency
 * rounds, stop the servers, microbench, decision bench, replicas bench, write the file.
 */
const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    'proxy-cpu': { type: 'string', default: '0' },
    'load-cpus': { type: 'string', default: '1' },
    'skip-nginx': { type: 'boolean', default: false },
    'skip-decision': { type: 'boolean', default: false },
    'skip-replicas': { type: 'boolean', default: false },
    'skip-workers': { type: 'boolean', default: false },
  },
})
const quick = flags.quick === true
const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const outFile = flags.out ?? join(repoRoot, 'bench', quick ? 'RESULTS.quick.md' : 'RESULTS.md')
const proxyCpus = flags['proxy-cpu'] ?? '0'
const loadCpus = flags['load-cpus'] ?? '1'

// Full: ~4.5 min for these benchmarks on a 2-CPU machine, leaving room for the decision bench in `npm run bench`'s ~10 min.
const plan: Plan = quick
  ? { connections: 50, warmupS: 1, runWarmupS: 0.5, durationS: 3, rounds: 2, rate: 2000, latencyWarmupS: 1, latencyDurationS: 3, latencyRounds: 1, latencyConnections: 50 }
  : { connections: 50, warmupS: 3, runWarmupS: 1, durationS: 8, rounds: 3, rate: 2000, latencyWarmupS: 1, latencyDurationS: 6, latencyRounds: 5, latencyConnections: 50 }

const log = (line: string): void => void process.stdout.write(`${line}\n`)
// Progress output piped into `head` must not stop the run (EPIPE).
process.stdout.on('error', () => {})

interface Candidate extends CandidateInfo {
  readonly url: string
  /** The proxy process, or null for `direct`. */
  readonly handle: Handle | null
}

async function main(): Promise<void> {
  const started = performance.now()
  const taskset = tasksetAvailable()
  const children = new Children(taskset)
  const dir = mkdtempSync(join(tmpdir(), 'canary-proxy-bench-'))
  // nginx drops its worker to an unprivileged user when started as root; it must still reach its temp paths.
  chmodSync(dir, 0o755)
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`\n${sig}: stopping every child process`)
      void children.stopAll(1_000).finally(() => process.exit(130))
    })
  }

  const pin = (cpus: string): { cpus: string | null } => ({ cpus: taskset ? cpus : null })
  const nginxBin = flags['skip-nginx'] === true ? null : findNginx()
  const nginx = nginxBin?.version ?? null
  const report: Report = {
    quick,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    date: new Date().toISOString(),
    machine: machine(),
    nginx,
    nginxNote: flags['skip-nginx'] === true ? 'skipped (--skip-nginx)' : nginx === null ? 'not installed: candidate skipped' : null,
    taskset,
    proxyCpus,
    loadCpus,
    loadAverageStart: loadAverage(),
    loadAverageEnd: '',
    plan,
    candidates: [],
    throughput: [],
    latency: [],
    memory: [],
    micro: null,
    canaryStatus: null,
    expectedStickyShare: expectedStickyShare(5),
    decision: '',
    replicas: '',
    proxyBenchS: 0,
    elapsedS: 0,
  }
  log(`canary-proxy bench${quick ? ' (quick trial)' : ''}: ${report.machine.cpuModel}, ${report.machine.cores} CPUs, Node ${report.machine.node}, nginx ${nginx ?? 'absent'}, taskset ${taskset ? 'yes' : 'no'}`)
  const busy = loadavg()[0] ?? 0
  if (busy > report.machine.cores / 2) log(`warning: load average ${busy.toFixed(1)} on ${report.machine.cores} CPUs: other work is running and the figures will be noisy (RESULTS.md shows how much)`)

  try {
    const upstream = await children.node('upstream', 'servers/upstream.js', [], pin(loadCpus))
    const stableUrl = String(upstream.ready?.stableUrl)
    const canaryUrl = String(upstream.ready?.canaryUrl)
    const load = await children.node('load generator', 'load/load-generator.js', [], pin(loadCpus))

    const candidates: Candidate[] = []
    candidates.push({ id: 'direct', label: 'direct to upstream', url: stableUrl, handle: null })
    const fastifyProxy = await children.node('fastify proxy', 'servers/fastify-proxy.js', [stableUrl], pin(proxyCpus))
    candidates.push({ id: 'fastify', label: 'fastify + @fastify/http-proxy', url: String(fastifyProxy.ready?.url), handle: fastifyProxy })
    const undiciProxy = await children.node('undici proxy', 'servers/undici-proxy.js', [stableUrl], pin(proxyCpus))
    candidates.push({ id: 'undici', label: 'node:http + undici Pool.stream', url: String(undiciProxy.ready?.url), handle: undiciProxy })
    const canary = await children.node('canary-proxy', 'servers/canary-proxy.js', [stableUrl, canaryUrl, dir], pin(proxyCpus))
    const adminUrl = String(canary.ready?.adminUrl)
    await setWeight(adminUrl, 5)
    candidates.push({ id: 'canary', label: 'canary-proxy (weight 5, sticky)', url: String(canary.ready?.url), handle: canary })
    if (nginxBin !== null) {
      const started = await startNginx(children, nginxBin, dir, stableUrl, canaryUrl, pin(proxyCpus))
      if (typeof started === 'string') report.nginxNote = `failed to start, skipped: ${started}`
      else candidates.push({ id: 'nginx', label: `nginx ${nginx} (1 worker, 95/5)`, url: started.url, handle: started.handle })
    }
    for (const c of candidates) await checkCandidate(c)
    report.candidates = candidates.map(({ id, label }) => ({ id, label }))

    const memory = async (at: string): Promise<MemoryPoint> => {
      const m = await canary.call<NodeJS.MemoryUsage>('memory')
      return { at, rssBytes: rssBytes(canary.pid) ?? m.rss, heapUsedBytes: m.heapUsed }
    }
    report.memory.push(await memory('started, weight set, no traffic yet'))

    const singleCpu = (list: string): number | null => (/^\d+$/.test(list) && taskset ? Number(list) : null)
    const proxyCore = singleCpu(proxyCpus)
    const loadCore = singleCpu(loadCpus)
    const sample = (c: Candidate): Sample => ({
      t: performance.now(),
      proxy: c.handle === null ? null : cpuSeconds(c.handle.pid),
      loadSide: sum(cpuSeconds(upstream.pid), cpuSeconds(load.pid)),
      core: proxyCore === null ? null : cpuBusySeconds(proxyCore),
      loadCore: loadCore === null ? null : cpuBusySeconds(loadCore),
    })

    log(`\nwarm-up: ${plan.warmupS}s per candidate`)
    for (const c of candidates) await load.call<ClosedResult>('closed', { url: c.url, connections: plan.connections, durationS: plan.warmupS })

    log(`\nthroughput: ${plan.rounds} interleaved rounds x ${candidates.length} candidates x ${plan.durationS}s, ${plan.connections} connections`)
    for (let round = 1; round <= plan.rounds; round++) {
      for (const c of candidates) {
        if (plan.runWarmupS > 0) await load.call<ClosedResult>('closed', { url: c.url, connections: plan.connections, durationS: plan.runWarmupS })
        const countsBefore = await upstream.call<SideCounts>('counts')
        const before = sample(c)
        const r = await load.call<ClosedResult>('closed', { url: c.url, connections: plan.connections, durationS: plan.durationS })
        const after = sample(c)
        const countsAfter = await upstream.call<SideCounts>('counts')
        const run = throughputRun(c.id, round, r, before, after, countsBefore, countsAfter)
        report.throughput.push(run)
        log(`  round ${round} ${c.id.padEnd(8)} ${Math.round(run.rps).toString().padStart(7)} req/s  proxy cpu ${fmtPct(run.proxyCpuPct)}  load-side cpu ${fmtPct(run.loadSideCpuPct)}  errors ${run.errors}`)
      }
    }
    report.memory.push(await memory(`after the throughput runs (${plan.rounds} × ${plan.durationS}s)`))

    log(`\nlatency: open loop at ${plan.rate} req/s, ${plan.latencyRounds} round(s) x ${plan.latencyDurationS}s`)
    for (let round = 1; round <= plan.latencyRounds; round++) {
      for (const c of candidates) {
        const params = { url: c.url, rate: plan.rate, connections: plan.latencyConnections }
        await load.call<OpenResult>('open', { ...params, durationS: plan.latencyWarmupS })
        const own = c.id === 'direct' || c.id === 'nginx' || c.handle === null ? null : c.handle
        if (own !== null) await own.call<LoopStats>('loopStats')
        const before = sample(c)
        const r = await load.call<OpenResult>('open', { ...params, durationS: plan.latencyDurationS })
        const after = sample(c)
        const loop = own === null ? null : await own.call<LoopStats>('loopStats')
        const elapsed = (after.t - before.t) / 1000
        const otherPct = after.core === null || before.core === null ? null : (Math.max(0, after.core - before.core - ((after.proxy ?? 0) - (before.proxy ?? 0))) / elapsed) * 100
        const run: LatencyRun = { candidate: c.id, round, ...r, loop, proxyCoreOtherPct: otherPct }
        report.latency.push(run)
        log(`  round ${round} ${c.id.padEnd(8)} p50 ${r.p50Ms.toFixed(3)}ms  p99 ${r.p99Ms.toFixed(3)}ms  rate ${Math.round(r.achievedRate)}/s  errors ${r.errors + r.non2xx}`)
      }
    }
    report.memory.push(await memory('after the latency runs'))
    report.canaryStatus = await canaryStatus(adminUrl)
    await children.stopAll()

    log('\nmicrobench: per-request record cost')
    const micro = await children.node('microbench', 'micro/record-cost.js', [], pin(proxyCpus))
    report.micro = await micro.call<MicroResult>('run', { quick })
    await children.stop(micro)
    for (const c of report.micro.cases) log(`  ${c.name.padEnd(48)} ${median(c.nsPerOp).toFixed(1)} ns/op`)
  } finally {
    await children.stopAll()
  }

  report.proxyBenchS = (performance.now() - started) / 1000
  if (flags['skip-decision'] === true) {
    report.decision = '## Decision speed\n\nSkipped in this run (`--skip-decision`).\n'
  } else {
    log('\ndecision bench (bench/decision.ts)')
    try {
      report.decision = await runDecisionBench({ quick })
    } catch (error) {
      report.decision = `## Decision speed\n\nThe decision bench failed: \`${(error as Error).message}\`\n`
      log(`  failed: ${(error as Error).stack ?? String(error)}`)
    }
  }

  if (flags['skip-replicas'] === true) {
    report.replicas = '## Replicas sharing one rollout (issue 11)\n\nSkipped in this run (`--skip-replicas`).\n'
  } else {
    log('\nreplicas bench (bench/replicas.ts)')
    try {
      report.replicas = await runReplicasBench({ quick, log })
    } catch (error) {
      report.replicas = `## Replicas sharing one rollout (issue 11)\n\nThe replicas bench failed: \`${(error as Error).message.split('\n')[0] ?? ''}\`\n`
      log(`  failed: ${(error as Error).stack ?? String(error)}`)
    }
  }

  report.loadAverageEnd = loadAverage()
  report.elapsedS = (performance.now() - started) / 1000
  // Its own section after the others, timed and stamped by itself (bench/workers.ts; `npm run bench:workers` runs it alone).
  let workers = `${WORKERS_HEADING}\n\nSkipped in this run (\`--skip-workers\`).\n`
  if (flags['skip-workers'] !== true) {
    log('\nworkers bench (bench/workers.ts)')
    try {
      workers = await runWorkersBench({ quick, log })
    } catch (error) {
      workers = `${WORKERS_HEADING}\n\nThe workers bench failed: \`${(error as Error).message.split('\n')[0]}\`\n`
      log(`  failed: ${(error as Error).stack ?? String(error)}`)
    }
  }
  writeFileSync(outFile, `${renderResults(report).trimEnd()}\n\n${workers.trimEnd()}\n`)
  log(`\nwrote ${outFile} in ${Math.round(report.elapsedS)}s`)
}

interface Sample {
  readonly t: number
  readonly proxy: number | null
  readonly loadSide: number | null
  readonly core: number | null
  readonly loadCore: number | null
}

interface SideCounts {
  readonly stable: number
  readonly canary: number
}

function throughputRun(candidate: CandidateId, round: number, r: ClosedResult, before: Sample, after: Sample, c0: SideCounts, c1: SideCounts): ThroughputRun {
  const elapsed = (after.t - before.t) / 1000
  const delta = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : b - a)
  const proxyCpu = delta(before.proxy, after.proxy)
  const loadSide = delta(before.loadSide, after.loadSide)
  const core = delta(before.core, after.core)
  const loadCore = delta(before.loadCore, after.loadCore)
  const stable = c1.stable - c0.stable
  const canary = c1.canary - c0.canary
  return {
    candidate,
    round,
    rps: r.rps,
    requests: r.requests,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    errors: r.errors + r.timeouts + r.non2xx,
    proxyCpuPct: proxyCpu === null ? null : (proxyCpu / elapsed) * 100,
    cpuUsPerRequest: proxyCpu === null || r.requests === 0 ? null : (proxyCpu * 1e6) / r.requests,
    loadSideCpuPct: loadSide === null ? null : (loadSide / elapsed) * 100,
    proxyCoreOtherPct: core === null ? null : (Math.max(0, core - (proxyCpu ?? 0)) / elapsed) * 100,
    loadCoreOtherPct: loadCore === null ? null : (Math.max(0, loadCore - (loadSide ?? 0)) / elapsed) * 100,
    canaryShare: stable + canary === 0 ? null : canary / (stable + canary),
  }
}

function sum(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : a + b
}

function fmtPct(n: number | null): string {
  return n === null ? 'n/a' : `${Math.round(n)}%`
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s[s.length >> 1] ?? Number.NaN
}

/** Share of the workload's user ids whose sticky bucket falls under the canary threshold at `weight` percent. */
function expectedStickyShare(weight: number): number {
  const list = requestList()
  return list.filter((r) => stickyBucket(r.headers[STICKY_HEADER] ?? '') < weight * 100).length / list.length
}

/** Sets the canary weight through the admin API, as an operator would. */
async function setWeight(adminUrl: string, weight: number): Promise<void> {
  const res = await fetch(`${adminUrl}/api/v1/weight`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ weight }) })
  const body = (await res.json()) as { weight?: number; phase?: string }
  if (res.status !== 200 || body.weight !== weight) throw new Error(`PUT /api/v1/weight answered ${res.status}: ${JSON.stringify(body)}`)
}

async function canaryStatus(adminUrl: string): Promise<{ weight: number; phase: string }> {
  const res = await fetch(`${adminUrl}/api/v1/status`)
  const body = (await res.json()) as { weight: number; phase: string }
  return { weight: body.weight, phase: body.phase }
}

/** One request through each candidate before any load: a wrong answer stops the run instead of producing a figure. */
async function checkCandidate(c: Candidate): Promise<void> {
  const res = await fetch(`${c.url}${PATH}`, { headers: { [STICKY_HEADER]: 'user-1' } })
  const body = await res.arrayBuffer()
  if (res.status !== 200 || body.byteLength !== BODY_BYTES) throw new Error(`${c.id} at ${c.url} answered ${res.status} with ${body.byteLength} bytes; expected 200 with ${BODY_BYTES}`)
}

/** nginx under its keeper process; a failure to start is reported and the candidate skipped, not the run stopped. */
async function startNginx(children: Children, nginx: NginxBinary, dir: string, stableUrl: string, canaryUrl: string, options: { cpus: string | null }): Promise<{ url: string; handle: Handle } | string> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  try {
    const handle = await children.node('nginx', 'servers/nginx-keeper.js', [url, nginx.bin, ...nginxArgs(dir, port, stableUrl, canaryUrl)], options)
    return { url, handle }
  } catch (error) {
    return (error as Error).message.trim().split('\n').slice(0, 4).join(' / ')
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
    process.exit(1)
  },
)
