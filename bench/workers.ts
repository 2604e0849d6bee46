/** `npm run bench:workers` (and a section of `npm run bench`): the built CLI with listen.workers 1 against 2, CPU per request at a fixed rate, closed-loop throughput, and who used the cores. */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Children, childPids, cpuSeconds } from './lib/children.js'
import { fixed, int, median, percent, spread, table } from './lib/figures.js'
import { cpuBusySeconds, loadAverage, machine } from './lib/machine.js'
import { BODY_BYTES, PATH, STICKY_HEADER } from './lib/payload.js'
import { spliceSection } from './lib/sections.js'
import type { ClosedResult, OpenResult } from './load/load-generator.js'

/*
 * Usage: npm run bench:workers [-- flags]      (build, then node dist/bench/workers.js)
 *
 *   --quick      2 rounds of 3 s each; writes bench/RESULTS.workers.quick.md
 *   --out FILE   write the section alone to FILE
 *
 * Without --out (and without --quick), the "## Workers on one host" section of
 * bench/RESULTS.md is replaced by this run's (or appended when there is none).
 *
 * Nothing is pinned: two workers need both cores, so the proxy, the upstream
 * and the load generator share them, and the section says how much each used.
 */

export interface WorkersBenchOptions {
  readonly quick: boolean
  readonly log?: (line: string) => void
}

export const WORKERS_HEADING = '## Workers on one host (issue 11)'

const CLI = fileURLToPath(new URL('../src/main.js', import.meta.url))
/** The issue's target: 2 workers' CPU per request within 10% of 1 worker's. */
const TARGET_RATIO = 1.1

interface Plan {
  readonly rate: number
  readonly openConnections: number
  readonly openWarmupS: number
  readonly openDurationS: number
  /**
   * The fixed-rate rounds in run order (ABBA, so a drift of the machine falls on each alike): 1 and 2 workers
   * at `rate`, and `half`, 1 worker at rate / 2 (what each of the 2 workers sees: the control for the batching effect).
   */
  readonly openOrder: readonly Setup[]
  readonly closedConnections: number
  readonly closedWarmupS: number
  readonly closedDurationS: number
  readonly closedOrder: readonly Workers[]
  readonly warmupS: number
}

type Workers = 1 | 2
type Setup = Workers | 'half'

// Full: ~2.5 min (12 fixed-rate rounds of 1 + 6 s, 6 closed-loop rounds of 1 + 6 s, start-up and warm-up).
const PLANS: Record<'full' | 'quick', Plan> = {
  full: {
    rate: 2500,
    openConnections: 50,
    openWarmupS: 1,
    openDurationS: 6,
    openOrder: [1, 2, 'half', 'half', 2, 1, 1, 2, 'half', 'half', 2, 1],
    closedConnections: 50,
    closedWarmupS: 1,
    closedDurationS: 6,
    closedOrder: [1, 2, 2, 1, 1, 2],
    warmupS: 3,
  },
  quick: { rate: 2500, openConnections: 50, openWarmupS: 0.5, openDurationS: 3, openOrder: [1, 2, 'half', 'half', 2, 1], closedConnections: 50, closedWarmupS: 0.5, closedDurationS: 3, closedOrder: [1, 2], warmupS: 1 },
}

/** One running `canary-proxy serve`: the primary's PID, and its workers' when listen.workers > 1. */
interface Proxy {
  readonly workers: Workers
  readonly pid: number
  readonly workerPids: readonly number[]
  readonly proxyUrl: string
  readonly adminUrl: string
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

interface Sample {
  readonly t: number
  /** The proxy's whole process tree: the primary and its workers. */
  readonly tree: number
  /** The primary alone (its workers subtracted). */
  readonly primary: number
  readonly load: number
  readonly upstream: number
  /** Busy time of every CPU of the machine. */
  readonly busy: number
  /** Context switches of the proxy's event-loop threads (primary and workers): how often they slept and woke. */
  readonly switches: number
  readonly served: number
  readonly canary: number
}

interface Run {
  readonly setup: Setup
  readonly kind: 'open' | 'closed'
  readonly elapsedS: number
  /** Requests the upstream answered during the run (every one went through the proxy). */
  readonly served: number
  readonly canary: number
  readonly rps: number
  readonly treeS: number
  readonly primaryS: number
  readonly loadS: number
  readonly upstreamS: number
  readonly otherS: number
  readonly switches: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly errors: number
}

interface SideCounts {
  readonly stable: number
  readonly canary: number
}

const usPerReq = (r: Run): number => (r.served === 0 ? Number.NaN : (r.treeS * 1e6) / r.served)
const corePct = (seconds: number, r: Run): number => (seconds / r.elapsedS) * 100

export async function runWorkersBench(options: WorkersBenchOptions): Promise<string> {
  const log = options.log ?? ((line: string) => void process.stdout.write(`${line}\n`))
  const plan = options.quick ? PLANS.quick : PLANS.full
  const started = performance.now()
  const loadStart = loadAverage()
  const m = machine()
  if (cpuSeconds(process.pid) === null || cpuBusySeconds(0) === null) throw new Error('the workers bench reads CPU time from /proc (Linux only)')
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`)

  const children = new Children(false)
  const unpinned = { cpus: null }
  const dir = mkdtempSync(join(tmpdir(), 'canary-proxy-bench-workers-'))
  const proxies: Proxy[] = []
  const killNow = (): void => {
    for (const p of proxies) if (p.child.exitCode === null && p.child.signalCode === null) kill(p.pid, 'SIGTERM')
  }
  process.on('exit', killNow)
  const runs: Run[] = []
  const stops: string[] = []
  let status: { weight: number; phase: string }[] = []
  let yaml = ''
  try {
    const upstream = await children.node('upstream', 'servers/upstream.js', [], unpinned)
    const load = await children.node('load generator', 'load/load-generator.js', [], unpinned)
    const stableUrl = String(upstream.ready?.stableUrl)
    const canaryUrl = String(upstream.ready?.canaryUrl)
    const byWorkers = new Map<Workers, Proxy>()
    for (const workers of [1, 2] as const) {
      const text = configText(workers, stableUrl, canaryUrl, dir)
      if (workers === 1) yaml = text
      const file = join(dir, `workers-${workers}.yaml`)
      writeFileSync(file, text)
      const proxy = await startProxy(workers, file)
      proxies.push(proxy)
      byWorkers.set(workers, proxy)
      await checkProxy(proxy)
      log(`  listen.workers ${workers}: primary ${proxy.pid}${proxy.workerPids.length > 0 ? `, workers ${proxy.workerPids.join(' ')}` : ''}, ${proxy.proxyUrl}`)
    }
    const proxyOf = (w: Workers): Proxy => byWorkers.get(w)!

    const sample = async (p: Proxy): Promise<Sample> => {
      const counts = await upstream.call<SideCounts>('counts')
      const tree = cpuSeconds(p.pid) ?? Number.NaN
      const workers = childPids(p.pid)
      const own = tree - workers.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0)
      const switches = [p.pid, ...workers].reduce((sum, pid) => sum + contextSwitches(pid), 0)
      let busy = 0
      for (let cpu = 0; cpu < m.cores; cpu++) busy += cpuBusySeconds(cpu) ?? 0
      return { t: performance.now(), tree, primary: own, load: cpuSeconds(load.pid) ?? Number.NaN, upstream: cpuSeconds(upstream.pid) ?? Number.NaN, busy, switches, served: counts.stable + counts.canary, canary: counts.canary }
    }
    const measure = async (p: Proxy, setup: Setup, kind: Run['kind'], go: () => Promise<{ p50Ms: number; p99Ms: number; errors: number; rps: number | null }>): Promise<Run> => {
      const a = await sample(p)
      const r = await go()
      const b = await sample(p)
      const elapsedS = (b.t - a.t) / 1000
      const treeS = b.tree - a.tree
      const loadS = b.load - a.load
      const upstreamS = b.upstream - a.upstream
      const served = b.served - a.served
      return {
        setup,
        kind,
        elapsedS,
        served,
        canary: b.canary - a.canary,
        rps: r.rps ?? served / elapsedS,
        treeS,
        primaryS: b.primary - a.primary,
        loadS,
        upstreamS,
        otherS: Math.max(0, b.busy - a.busy - treeS - loadS - upstreamS),
        switches: b.switches - a.switches,
        p50Ms: r.p50Ms,
        p99Ms: r.p99Ms,
        errors: r.errors,
      }
    }

    log(`\nworkers warm-up: ${plan.warmupS}s closed loop each`)
    for (const w of [1, 2] as const) await load.call<ClosedResult>('closed', { url: proxyOf(w).proxyUrl, connections: plan.closedConnections, durationS: plan.warmupS })

    log(`\nworkers, fixed rate: ${plan.rate} req/s, ${plan.openOrder.length} rounds x ${plan.openDurationS}s (order ${plan.openOrder.join(' ')})`)
    for (const setup of plan.openOrder) {
      const p = proxyOf(setup === 'half' ? 1 : setup)
      const params = { url: p.proxyUrl, rate: setup === 'half' ? plan.rate / 2 : plan.rate, connections: plan.openConnections }
      await load.call<OpenResult>('open', { ...params, durationS: plan.openWarmupS })
      const run = await measure(p, setup, 'open', async () => {
        const r = await load.call<OpenResult>('open', { ...params, durationS: plan.openDurationS })
        return { p50Ms: r.p50Ms, p99Ms: r.p99Ms, errors: r.errors + r.non2xx, rps: null }
      })
      runs.push(run)
      log(`  ${setupName(setup, plan)}: ${fixed(usPerReq(run), 1)} µs/req (primary ${fixed((run.primaryS * 1e6) / run.served, 1)}), ${fixed(run.switches / run.served, 2)} switches/req, ${int(run.served)} served, proxy ${percent(corePct(run.treeS, run))}, load gen ${percent(corePct(run.loadS, run))}, upstream ${percent(corePct(run.upstreamS, run))}, other ${percent(corePct(run.otherS, run))}, errors ${run.errors}`)
    }

    log(`\nworkers, closed loop: ${plan.closedConnections} connections, ${plan.closedOrder.length} rounds x ${plan.closedDurationS}s (order ${plan.closedOrder.join(' ')})`)
    for (const w of plan.closedOrder) {
      const p = proxyOf(w)
      await load.call<ClosedResult>('closed', { url: p.proxyUrl, connections: plan.closedConnections, durationS: plan.closedWarmupS })
      const run = await measure(p, w, 'closed', async () => {
        const r = await load.call<ClosedResult>('closed', { url: p.proxyUrl, connections: plan.closedConnections, durationS: plan.closedDurationS })
        return { p50Ms: r.p50Ms, p99Ms: r.p99Ms, errors: r.errors + r.timeouts + r.non2xx, rps: r.rps }
      })
      runs.push(run)
      log(`  ${w} worker(s): ${int(run.rps)} req/s, ${fixed(usPerReq(run), 1)} µs/req, proxy ${percent(corePct(run.treeS, run))} (primary ${percent(corePct(run.primaryS, run))}), load gen ${percent(corePct(run.loadS, run))}, upstream ${percent(corePct(run.upstreamS, run))}, other ${percent(corePct(run.otherS, run))}, errors ${run.errors}`)
    }
    status = await Promise.all([proxyOf(1), proxyOf(2)].map((p) => rolloutStatus(p.adminUrl)))
  } finally {
    for (const p of proxies) stops.push(await stopProxy(p))
    await children.stopAll()
    process.off('exit', killNow)
    rmSync(dir, { recursive: true, force: true })
  }
  for (const s of stops) log(`  ${s}`)

  const elapsedS = (performance.now() - started) / 1000
  return render({ plan, runs, stops, status, yaml: yaml.replace(/"http:\/\/127\.0\.0\.1:\d+"/g, '"<loopback upstream>"').replaceAll(dir, '<tmp>'), elapsedS, loadStart, loadEnd: loadAverage(), quick: options.quick, cores: m.cores, cpu: m.cpuModel, node: m.node })
}

/** The same config for both, but listen.workers: a canary at a fixed 50% (a step far longer than the bench), analysis on with its defaults. */
function configText(workers: Workers, stableUrl: string, canaryUrl: string, dir: string): string {
  return [
    `listen: { host: 127.0.0.1, port: 0, drainTimeout: 2s, workers: ${workers} }`,
    'admin: { host: 127.0.0.1, port: 0 }',
    `upstreams: { stable: "${stableUrl}", canary: "${canaryUrl}" }`,
    `routing: { stickyHeader: ${STICKY_HEADER} }`,
    'rollout: { steps: [50, 100], stepDuration: 1h, progressDeadline: 2h, autoStart: true }',
    `state: { file: "${dir}/state-${workers}.json" }`,
    `audit: { file: "${dir}/audit-${workers}.jsonl" }`,
    // info: the listening line (URLs, worker PIDs); nothing is logged per request.
    'log: { level: info }',
    '',
  ].join('\n')
}

/** `node dist/src/main.js serve --config FILE`, as users run it; resolves once it logs that it listens. */
async function startProxy(workers: Workers, file: string): Promise<Proxy> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CANARY_PROXY_')))
  const child = spawn(process.execPath, [CLI, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env })
  if (child.pid === undefined) throw new Error(`could not spawn ${CLI}`)
  let out = ''
  const keep = (chunk: Buffer): void => void (out = (out + chunk.toString()).slice(-16_384))
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })))
  const line = await new Promise<Record<string, unknown>>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`listen.workers ${workers}: serve did not listen within 30 s\n${out}`)), 30_000)
    const look = (): void => {
      for (const l of out.split('\n')) {
        if (!l.includes('canary-proxy listening on')) continue
        clearTimeout(timer)
        child.stdout.off('data', look)
        res(JSON.parse(l) as Record<string, unknown>)
        return
      }
    }
    child.stdout.on('data', look)
    void exited.then(({ code }) => {
      clearTimeout(timer)
      rej(new Error(`listen.workers ${workers}: serve exited (code ${String(code)}) before it listened\n${out}`))
    })
  })
  const workerPids = Array.isArray(line.pids) ? (line.pids as number[]) : []
  if (workers > 1 && workerPids.length !== workers) throw new Error(`listen.workers ${workers}: the listening line names ${workerPids.length} worker PIDs`)
  return { workers, pid: child.pid, workerPids, proxyUrl: String(line.proxy), adminUrl: String(line.admin), child, output: () => out, exited }
}

/** SIGTERM to the primary (which drains its workers), by PID; then check that none of its workers is left. */
async function stopProxy(p: Proxy): Promise<string> {
  const wait = (ms: number): Promise<boolean> =>
    new Promise((res) => {
      const timer = setTimeout(() => res(false), ms)
      void p.exited.then(() => {
        clearTimeout(timer)
        res(true)
      })
    })
  if (p.child.exitCode === null && p.child.signalCode === null) kill(p.pid, 'SIGTERM')
  let how = 'exited'
  if (!(await wait(15_000))) {
    kill(p.pid, 'SIGKILL')
    await p.exited
    how = 'did not exit within 15 s of SIGTERM: killed'
  }
  const { code, signal } = await p.exited
  // A worker drains when its primary goes; give it the drain timeout before calling it left behind.
  const deadline = performance.now() + 5_000
  let left = p.workerPids.filter(alive)
  while (left.length > 0 && performance.now() < deadline) {
    await new Promise((res) => setTimeout(res, 100))
    left = left.filter(alive)
  }
  for (const pid of left) kill(pid, 'SIGKILL')
  return `listen.workers ${p.workers}: SIGTERM, primary ${how} (${signal ?? `code ${String(code)}`}); ${left.length === 0 ? `${p.workerPids.length === 0 ? 'no workers' : 'no worker left running'}` : `workers ${left.join(' ')} were left running: killed`}`
}

/** Voluntary and involuntary context switches of a process's main thread (its event loop), from /proc; 0 where unreadable. */
function contextSwitches(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0)
    return field('voluntary_ctxt_switches') + field('nonvoluntary_ctxt_switches')
  } catch {
    return 0
  }
}

function setupName(setup: Setup, plan: Plan): string {
  return setup === 'half' ? `1 worker at ${int(plan.rate / 2)} req/s` : `${setup} worker${setup === 1 ? '' : 's'} at ${int(plan.rate)} req/s`
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig)
  } catch {
    // already gone
  }
}

/** One request before any load: a wrong answer stops the run instead of producing a figure. */
async function checkProxy(p: Proxy): Promise<void> {
  const res = await fetch(`${p.proxyUrl}${PATH}`, { headers: { [STICKY_HEADER]: 'user-1' } })
  const body = await res.arrayBuffer()
  if (res.status !== 200 || body.byteLength !== BODY_BYTES) throw new Error(`listen.workers ${p.workers} at ${p.proxyUrl} answered ${res.status} with ${body.byteLength} bytes; expected 200 with ${BODY_BYTES}`)
}

async function rolloutStatus(adminUrl: string): Promise<{ weight: number; phase: string }> {
  const body = (await (await fetch(`${adminUrl}/api/v1/status`)).json()) as { weight: number; phase: string }
  return { weight: body.weight, phase: body.phase }
}

interface Rendered {
  readonly plan: Plan
  readonly runs: readonly Run[]
  readonly stops: readonly string[]
  readonly status: readonly { weight: number; phase: string }[]
  readonly yaml: string
  readonly elapsedS: number
  readonly loadStart: string
  readonly loadEnd: string
  readonly quick: boolean
  readonly cores: number
  readonly cpu: string
  readonly node: string
}

function render(r: Rendered): string {
  const p = r.plan
  const out: string[] = [WORKERS_HEADING, '']
  out.push(`Measured by bench/workers.ts in ${Math.round(r.elapsedS)} s; load average (1/5/15 min) at start ${r.loadStart}, at end ${r.loadEnd}. ${r.cores} CPUs (${r.cpu}), Node ${r.node}.`, '')
  if (r.quick) out.push('> **Quick trial run** (`--quick`): short runs, fewer rounds. The figures show the harness works; they are not the benchmark.', '')
  const order = (list: readonly Setup[]): string => list.map((s) => (s === 'half' ? '½' : String(s))).join(' ')
  out.push(
    `- **What runs**: the built CLI, \`node dist/src/main.js serve --config <tmp yaml>\`, twice and side by side (the idle one waits on its sockets): \`listen.workers: 1\` (one process: proxy and control plane) and \`listen.workers: 2\` (a primary that owns the control plane and two node:cluster workers that proxy and send their window deltas over IPC). The config is otherwise the same (below): stable and canary both real, canary at a fixed 50% (\`steps: [50, 100]\`, a 1 h step), sticky on \`${STICKY_HEADER}\`, analysis on with its defaults, every metric, log level info (nothing logged per request). The upstream and the load generator are bench/servers/upstream.ts and bench/load/load-generator.ts, each its own process; loopback only.`,
    `- **No pinning**: two workers need both cores, so the proxy, the upstream and the load generator share the ${r.cores} CPUs; the tables say how much of a core each used (100% = one core; the machine has ${r.cores * 100}%). *Rest of the machine* is every CPU's busy time (\`/proc/stat\`) not used by those three: other processes on this shared machine, a noise indicator.`,
    `- **CPU per request**: user + system time (\`/proc/<pid>/stat\`) of the proxy's whole process tree (the primary and every worker, found through \`/proc/<primary>/task/<primary>/children\`) across the run, divided by the requests the upstream answered in it. *Of which the primary*: the primary's own time alone (connection hand-off to the workers, the deltas' IPC, the analysis, the controller), summed over the rounds; in the 1-worker case it is the one process. *Switches/req*: context switches of the proxy's event-loop threads (\`/proc/<pid>/status\`, voluntary + involuntary, every process of the tree) per request: how often a loop went to sleep and woke up again.`,
    `- **Fixed rate (open loop)**: the load generator's scheduled client (undici Pool, ${p.openConnections} keep-alive connections at most), ${p.openOrder.length} rounds of ${p.openDurationS} s, each after ${p.openWarmupS} s unmeasured at the same rate, in the order ${order(p.openOrder)} (ABBA, so a drift of the machine weighs on each alike): 1 and 2 workers at ${int(p.rate)} req/s, and as a control (½) 1 worker at ${int(p.rate / 2)} req/s, the rate each of the 2 workers sees. Every rate is well below the setup's ceiling, so CPU per request compares costs, not saturation.`,
    `- **Throughput (closed loop)**: autocannon, ${p.closedConnections} keep-alive connections, pipelining 1, ${p.closedOrder.length} rounds of ${p.closedDurationS} s, each after ${p.closedWarmupS} s unmeasured, in the order ${order(p.closedOrder)}. One ${p.warmupS} s closed-loop warm-up per setup before everything.`,
    '',
  )

  const open = (s: Setup): Run[] => r.runs.filter((x) => x.kind === 'open' && x.setup === s)
  const closed = (w: Workers): Run[] => r.runs.filter((x) => x.kind === 'closed' && x.setup === w)
  const med = (runs: readonly Run[], f: (x: Run) => number): number => median(runs.map(f))
  const cpuCell = (runs: readonly Run[], f: (x: Run) => number): string => percent(med(runs, (x) => corePct(f(x), x)))
  const us = (n: number): string => fixed(n, 1)
  const total = (runs: readonly Run[], f: (x: Run) => number): number => {
    const served = runs.reduce((s, x) => s + x.served, 0)
    return served === 0 ? Number.NaN : runs.reduce((s, x) => s + f(x), 0) / served
  }
  const primaryUs = (runs: readonly Run[]): number => total(runs, (x) => x.primaryS * 1e6)

  out.push(`### CPU per request at a fixed rate (open loop)`, '')
  out.push(
    table(
      ['setup', 'µs/req by round (run order)', 'median µs/req', 'spread', 'of which the primary', 'switches/req', 'served req/s', 'p50 / p99 ms', 'proxy CPU', 'load generator CPU', 'upstream CPU', 'rest of the machine', 'errors'],
      ([1, 2, 'half'] as const).map((s) => {
        const runs = open(s)
        return [
          setupName(s, p) + (s === 'half' ? ' (control)' : ''),
          runs.map((x) => us(usPerReq(x))).join(' · '),
          `**${us(med(runs, usPerReq))}**`,
          spread(runs.map(usPerReq), us),
          s === 2 ? `${us(primaryUs(runs))} µs/req` : '(one process)',
          fixed(total(runs, (x) => x.switches), 2),
          int(med(runs, (x) => x.served / x.elapsedS)),
          `${fixed(med(runs, (x) => x.p50Ms), 2)} / ${fixed(med(runs, (x) => x.p99Ms), 2)}`,
          cpuCell(runs, (x) => x.treeS),
          cpuCell(runs, (x) => x.loadS),
          cpuCell(runs, (x) => x.upstreamS),
          cpuCell(runs, (x) => x.otherS),
          String(runs.reduce((n, x) => n + x.errors, 0)),
        ]
      }),
      'llrrrrrrrrrrr',
    ),
    '',
  )
  const one = med(open(1), usPerReq)
  const two = med(open(2), usPerReq)
  const half = med(open('half'), usPerReq)
  const ratio = two / one
  const twos = open(2)
  const primary = primaryUs(twos)
  // A line through the two 1-worker points, CPU per request against switches per request, read at the 2 workers' switches.
  const wakeups = (): string => {
    const [s1, sh, s2] = [open(1), open('half'), open(2)].map((runs) => total(runs, (x) => x.switches))
    const slope = (half - one) / (sh! - s1!)
    if (!(Math.abs(sh! - s1!) >= 0.1) || !(slope > 0)) return ''
    const predicted = one + slope * (s2! - s1!)
    return ` A loop that handles fewer requests per wake-up pays its per-wake-up cost on fewer of them: through the two 1-worker points CPU per request grows ${us(slope)} µs per context switch per request, and at the 2 workers' ${fixed(s2!, 2)} switches/req that line gives ${us(predicted)} µs/req, against ${us(two)} measured.`
  }
  const signed = (x: number): string => `${x >= 1 ? '+' : ''}${fixed((x - 1) * 100, 1)}%`
  out.push(
    `**2 workers / 1 worker at ${int(p.rate)} req/s, by median CPU per request: ${fixed(ratio, 2)}× (${signed(ratio)}; target ≤ ${fixed(TARGET_RATIO, 2)}×): ${ratio <= TARGET_RATIO ? 'met' : 'missed'}.** ` +
      `What the split itself costs: the primary's own time is ${us(primary)} µs per request (${percent((primary / two) * 100, 1)} of the 2-worker tree's ${us(two)}; ${percent(med(twos, (x) => corePct(x.primaryS, x)), 1)} of a core), and that holds the hand-off, the deltas' IPC and the control plane's own ticks, which the 1-worker process also runs. ` +
      `The control, 1 worker at ${int(p.rate / 2)} req/s, costs ${us(half)} µs/req: against it the 2 workers (each at that rate) are at ${fixed(two / half, 2)}× (${signed(two / half)}).` +
      wakeups(),
    '',
  )

  out.push(`### Throughput (closed loop, ${p.closedConnections} connections)`, '')
  const rps1 = med(closed(1), (x) => x.rps)
  out.push(
    table(
      ['workers', 'req/s by round (run order)', 'median req/s', '× 1 worker', 'proxy CPU', 'of which the primary', 'CPU µs/req', 'load generator CPU', 'upstream CPU', 'rest of the machine', 'p99 ms', 'errors'],
      ([1, 2] as const).map((w) => {
        const runs = closed(w)
        const rps = med(runs, (x) => x.rps)
        return [
          String(w),
          runs.map((x) => int(x.rps)).join(' · '),
          `**${int(rps)}**`,
          `${fixed(rps / rps1, 2)}×`,
          cpuCell(runs, (x) => x.treeS),
          w === 1 ? '(one process)' : cpuCell(runs, (x) => x.primaryS),
          us(med(runs, usPerReq)),
          cpuCell(runs, (x) => x.loadS),
          cpuCell(runs, (x) => x.upstreamS),
          cpuCell(runs, (x) => x.otherS),
          fixed(med(runs, (x) => x.p99Ms), 2),
          String(runs.reduce((n, x) => n + x.errors, 0)),
        ]
      }),
      'llrrrrrrrrrr',
    ),
    '',
  )
  const c1 = closed(1)
  const c2 = closed(2)
  const loadSide = (runs: readonly Run[]): string => cpuCell(runs, (x) => x.loadS + x.upstreamS)
  out.push(
    `The load generator and the upstream share the ${r.cores} cores with the proxy: with 1 worker they used ${loadSide(c1)} of a core between them (load generator ${cpuCell(c1, (x) => x.loadS)}, upstream ${cpuCell(c1, (x) => x.upstreamS)}), with 2 workers ${loadSide(c2)} (load generator ${cpuCell(c2, (x) => x.loadS)}, upstream ${cpuCell(c2, (x) => x.upstreamS)}), of the machine's ${r.cores * 100}%; the proxy got ${cpuCell(c1, (x) => x.treeS)} and ${cpuCell(c2, (x) => x.treeS)}, and the rest of the machine (other processes) took ${cpuCell(c1, (x) => x.otherS)} and ${cpuCell(c2, (x) => x.otherS)}. ` +
      `So req/s here is what the machine gave the three together at the time, the proxy's ceiling only when the rest of the machine is near 0%; in these runs, 2 workers / 1 worker by CPU per request is ${fixed(med(c2, usPerReq) / med(c1, usPerReq), 2)}×.`,
    '',
  )

  const shares = r.runs.map((x) => (x.served === 0 ? Number.NaN : x.canary / x.served))
  out.push(
    `Checks: every run's observed canary share ${spread(shares, (n) => percent(n * 100, 1))} (sticky buckets of the 1,000 user ids at weight 50); rollout status at the end ${r.status.map((s, i) => `${i + 1} worker${i === 0 ? '' : 's'}: weight ${s.weight}, ${s.phase}`).join('; ')}; ${r.stops.join('; ')}.`,
    '',
  )
  out.push("Config (`listen.workers: 2` for the other; the URLs and paths are the run's own):", '', '```yaml', r.yaml.trimEnd(), '```', '')
  return out.join('\n')
}

async function main(): Promise<void> {
  const { values: flags } = parseArgs({ options: { quick: { type: 'boolean', default: false }, out: { type: 'string' } } })
  const quick = flags.quick === true
  const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
  process.stdout.on('error', () => {})
  const section = await runWorkersBench({ quick })
  const stamp = `Generated by \`npm run bench:workers${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\` on ${new Date().toISOString()}. Do not edit by hand: run the command again.\n\n`
  const body = section.replace(/^(## [^\n]*\n\n)/, `$1${stamp}`)
  const out = flags.out ?? (quick ? join(repoRoot, 'bench', 'RESULTS.workers.quick.md') : null)
  if (out !== null) {
    writeFileSync(out, body)
    process.stdout.write(`wrote ${out}\n`)
  } else {
    const file = join(repoRoot, 'bench', 'RESULTS.md')
    spliceSection(file, /^## Workers on one host/m, body)
    process.stdout.write(`wrote the workers section of ${file}\n`)
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130))
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`workers bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
      process.exit(1)
    },
  )
}
