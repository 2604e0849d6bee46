/** Bench child: microbenchmarks of what the hot path pays per request to record and route, beside the libraries' raw costs. */
import { Histogram as PromHistogram, Registry } from 'prom-client'
import type { IncomingHttpHeaders } from 'node:http'
import { monotonicMicros } from '../../src/core/clock.js'
import { prepareResponseHeaders } from '../../src/proxy/headers.js'
import { pickSide } from '../../src/routing/pick-side.js'
import { compileSnapshot, type UpstreamTarget } from '../../src/routing/snapshot.js'
import { newLatencyHistogram } from '../../src/stats/latency-histogram.js'
import { newOverrideStats } from '../../src/stats/override-stats.js'
import { BackendStats, ErrorSignal } from '../../src/stats/backend-stats.js'
import { DURATION_BUCKETS_SECONDS, SideStats } from '../../src/stats/side-stats.js'
import type { Dispatcher } from 'undici'
import { serveCalls } from '../lib/ipc.js'
import { STICKY_HEADER, USER_IDS } from '../lib/payload.js'
import { mulberry32 } from '../lib/random.js'
import { measure, type Case, type MicroCase } from './measure.js'
import { periodicCases } from './periodic-work.js'

export interface MicroParams {
  readonly quick: boolean
}

export interface MicroResult {
  readonly opsPerRun: number
  readonly runs: number
  /** Per-request operations (ns/op). */
  readonly cases: MicroCase[]
  readonly periodicOpsPerRun: number
  /** Once-a-second operations on the event loop (reported in µs/op). */
  readonly periodic: MicroCase[]
  /** Printed so the loops' results are used (no dead-code elimination). */
  readonly checksum: number
}

const INPUTS = 4096
const MASK = INPUTS - 1

const rand = mulberry32(42)
/**
 * Latencies as the hot path produces them: the difference of two
 * monotonicMicros() readings (performance.now() * 1000), so fractional; spread
 * log-uniformly over 200us..20ms, which crosses several duration buckets.
 */
const latencyUs = Float64Array.from({ length: INPUTS }, () => 200 * Math.pow(100, rand()) + rand())
const latencyUsInt = Float64Array.from(latencyUs, (v) => Math.round(v))
const latencySeconds = Float64Array.from(latencyUs, (v) => v / 1e6)

const fakeDispatcher = {} as Dispatcher
const target = (side: 'stable' | 'canary'): UpstreamTarget => ({
  side,
  url: `http://127.0.0.1/${side}`,
  host: '127.0.0.1',
  basePath: '',
  dispatcher: fakeDispatcher,
  stats: new BackendStats(new SideStats(side), null),
})
const stableTarget = target('stable')
const canaryTarget = target('canary')
/** As the bench config compiles it: weight 5, sticky header on, the default override header (absent from requests). */
const snapshot = compileSnapshot(
  {
    stable: stableTarget,
    canary: canaryTarget,
    weight: 5,
    overrideHeader: 'x-canary',
    overrideFrom: ['127.0.0.0/8', '::1/128'],
    overrideStats: newOverrideStats(),
    stickyHeader: STICKY_HEADER,
    stickyCookie: null,
    responseTimeoutMs: 30_000,
    preserveHost: true,
    trustForwarded: false,
  },
  1,
)
/** The client socket as pickSide reads it (only when an override header is present). */
const peer = { remoteAddress: '127.0.0.1' }
/** Header objects shaped like Node's parsed ones for the bench's requests. */
const headerSets: IncomingHttpHeaders[] = Array.from({ length: INPUTS }, (_, i) => ({
  host: '127.0.0.1:8080',
  'user-agent': 'autocannon',
  [STICKY_HEADER]: `user-${i % USER_IDS}`,
}))
const random = (): number => rand()
/** Response headers as undici parses them from the bench upstream (a Node server: it adds Date, Connection and Keep-Alive). */
const upstreamHeaders = { 'content-type': 'application/json', 'content-length': '1024', date: 'Sun, 30 Nov 2026 12:00:00 GMT', connection: 'keep-alive', 'keep-alive': 'timeout=65' }
/** Where fresh header objects go, so they escape as undici's do (no allocation elided). */
const sink: object[] = new Array(1024).fill(null)

/**
 * A holder whose field has been written twice. V8 constant-folds loads
 * through a field written only once from an object the optimized code holds
 * as a constant (a closure variable here): a histogram reached that way has
 * its own fields folded away too, which makes recordValue ~2.3x cheaper than
 * in the proxy, where the histogram is read from SlidingWindow's current slot
 * (a field the ring rewrites). The "as the proxy holds it" rows use this.
 */
function mutableField<T>(make: () => T): { value: T } {
  const holder = { value: make() }
  holder.value = make()
  return holder
}

function cases(): Case[] {
  // As the proxy holds them: a side's counters plus the backend's window recorder, written through the target.
  const sideStats = new BackendStats(new SideStats('canary'), new ErrorSignal())
  const sideStatsInt = new BackendStats(new SideStats('canary'), new ErrorSignal())
  const hdrConstant = newLatencyHistogram()
  const hdrField = mutableField(newLatencyHistogram)
  const promChild = (): ReturnType<PromHistogram['labels']> =>
    new PromHistogram({
      name: 'bench_request_duration_seconds',
      help: 'bench',
      labelNames: ['upstream', 'status_class'],
      buckets: [...DURATION_BUCKETS_SECONDS],
      registers: [new Registry()],
    }).labels('canary', '2xx')
  const promConstant = promChild()
  const promField = mutableField(promChild)
  return [
    {
      name: 'loop baseline',
      note: 'the harness alone: read one input, add it up (included in every row below)',
      run(n) {
        let sum = 0
        for (let i = 0; i < n; i++) sum += latencyUs[i & MASK]!
        return sum
      },
    },
    {
      name: 'BackendStats.recordResponse (fractional µs)',
      note: 'src/stats/side-stats.ts, exactly as the hot path calls it (latency = difference of two monotonicMicros() readings)',
      run(n) {
        for (let i = 0; i < n; i++) sideStats.recordResponse(200, latencyUs[i & MASK]!)
        return sideStats.side.durationCount
      },
    },
    {
      name: 'BackendStats.recordResponse (integer µs)',
      note: 'the same call with latencies rounded to whole microseconds',
      run(n) {
        for (let i = 0; i < n; i++) sideStatsInt.recordResponse(200, latencyUsInt[i & MASK]!)
        return sideStatsInt.side.durationCount
      },
    },
    {
      name: 'hdr-histogram-js recordValue, as the proxy holds it',
      note: 'raw library call on newLatencyHistogram() (32-bit, no autoResize, 1µs..1h, 3 digits), integer µs, histogram read from a mutable field',
      run(n) {
        const h = hdrField.value
        for (let i = 0; i < n; i++) h.recordValue(latencyUsInt[i & MASK]!)
        return h.totalCount
      },
    },
    {
      name: 'hdr-histogram-js recordValue, constant histogram',
      note: 'the same call on a histogram V8 can treat as a constant: the usual microbenchmark shape, optimistic for the proxy',
      run(n) {
        for (let i = 0; i < n; i++) hdrConstant.recordValue(latencyUsInt[i & MASK]!)
        return hdrConstant.totalCount
      },
    },
    {
      name: 'prom-client Histogram observe, as a proxy would hold it',
      note: "labelNames [upstream, status_class], the same 14 buckets, child from labels('canary','2xx') kept in a mutable field",
      run(n) {
        const child = promField.value
        for (let i = 0; i < n; i++) child.observe(latencySeconds[i & MASK]!)
        return n
      },
    },
    {
      name: 'prom-client Histogram observe, constant child',
      note: 'the same call on a child V8 can treat as a constant',
      run(n) {
        for (let i = 0; i < n; i++) promConstant.observe(latencySeconds[i & MASK]!)
        return n
      },
    },
    {
      name: 'pickSide (sticky header, weight 5)',
      note: 'src/routing/pick-side.ts: override header checked (absent), x-user-id hashed into a bucket',
      run(n) {
        let onCanary = 0
        for (let i = 0; i < n; i++) if (pickSide(snapshot, headerSets[i & MASK]!, random, peer) === canaryTarget) onCanary++
        return onCanary
      },
    },
    {
      name: 'header object copy (baseline for the next row)',
      note: "Object.assign({}, headers): a fresh object per response, as undici's parser makes one",
      run(n) {
        for (let i = 0; i < n; i++) sink[i & 1023] = Object.assign({}, upstreamHeaders)
        return n
      },
    },
    {
      name: 'prepareResponseHeaders (with Connection, Keep-Alive)',
      note: 'src/proxy/headers.ts on that fresh object: removes the hop-by-hop headers a Node or nginx upstream sends on every keep-alive response',
      run(n) {
        for (let i = 0; i < n; i++) sink[i & 1023] = prepareResponseHeaders(Object.assign({}, upstreamHeaders))
        return n
      },
    },
    {
      name: 'monotonicMicros()',
      note: 'src/core/clock.ts (performance.now() * 1000); the hot path reads it twice per request',
      run(n) {
        let sum = 0
        for (let i = 0; i < n; i++) sum += monotonicMicros()
        return sum
      },
    },
  ]
}

function run(params: MicroParams): MicroResult {
  const opsPerRun = params.quick ? 300_000 : 1_000_000
  const periodicOpsPerRun = params.quick ? 100 : 200
  const runs = params.quick ? 3 : 9
  const hot = measure(cases(), opsPerRun, opsPerRun, runs)
  const periodic = measure(periodicCases(), periodicOpsPerRun, periodicOpsPerRun, runs)
  return { opsPerRun, runs, cases: hot.cases, periodicOpsPerRun, periodic: periodic.cases, checksum: (hot.checksum + periodic.checksum) % 1e9 }
}

serveCalls({ run })
process.on('SIGTERM', () => process.exit(0))
