/**
 * runWorker: one worker process of listen.workers. It proxies on the
 * primary's shared socket by the routing tables the primary sends, and sends
 * back what its hot path measured: window deltas every pushMs (at once after
 * a canary error), its metrics when /metrics is scraped. No control plane, no
 * state, no admin port: those are the primary's.
 */
import cluster from 'node:cluster'
import type { Logger } from 'pino'
import { systemClock, type Timer } from '../core/clock.js'
import { systemRandom } from '../core/random.js'
import { buildDataPlane, dataPlaneCounters, upstreamPools } from '../data-plane.js'
import { createLogger } from '../log.js'
import { Backends } from '../proxy/backends.js'
import { createDataPlaneRegistry } from '../stats/metrics.js'
import { guardProcess } from '../cli/process-guard.js'
import { isToWorker, type FromWorker, type ToWorker } from './protocol.js'

/** The controller's own least gap between two early looks (src/rollout/controller.ts). */
const CANARY_ERROR_GAP_MS = 20
/** How often a worker sends its counters unasked (a scrape asks too); about a millisecond of work each time. */
const COUNTER_SNAPSHOT_MS = 1_000

/** Runs until the primary asks for a drain or goes away; resolves with the exit code. */
export async function runWorker(): Promise<number> {
  const send = (message: FromWorker): void => {
    if (process.connected) process.send?.(message)
  }
  const init = await new Promise<Extract<ToWorker, { t: 'cpx:init' }> | null>((resolve) => {
    const onMessage = (message: unknown): void => {
      if (!isToWorker(message) || message.t !== 'cpx:init') return
      process.off('message', onMessage)
      resolve(message)
    }
    process.on('message', onMessage)
    process.once('disconnect', () => resolve(null))
    send({ t: 'cpx:hello' })
  })
  if (init === null) return 1
  const { parseConfigText } = await import('../config/load.js')
  const parsed = parseConfigText(init.configText)
  if (!parsed.ok) {
    send({ t: 'cpx:fatal', message: `the config no longer parses: ${parsed.error.map((i) => `${i.path}: ${i.message}`).join('; ')}` })
    return 1
  }
  const config = parsed.value
  const clock = systemClock
  // The primary's id for this worker (Node removes NODE_UNIQUE_ID from the environment once the worker is set up).
  const log: Logger = createLogger(init.settings.logLevel).child({ worker: cluster.worker?.id ?? 0 })
  const faults = dataPlaneCounters(config, clock)
  const pools = upstreamPools(config, faults, log)
  const backends = new Backends(pools, init.table, config.metrics.bucketsSeconds)
  backends.apply(init.table)
  const plane = buildDataPlane({ config, backends, faults, clock, random: systemRandom, log })
  let uncaught = 0
  const unguard = guardProcess((error, origin) => {
    uncaught++
    log.error({ err: error, origin }, `${origin}: an error escaped every handler; the worker keeps serving (canary_proxy_uncaught_errors_total). This is a bug: please report it`)
  })
  const registry = createDataPlaneRegistry({
    sides: [backends.sides.stable, backends.sides.canary],
    override: [backends.override.stable, backends.override.canary],
    connectionsDropped: () => plane.clientCounters.connectionsDropped,
    internalErrors: () => faults.internalErrors,
    bodyTimeouts: () => faults.bodyTimeouts,
    uncaughtErrors: () => uncaught,
  })

  let version = init.table.version
  const push = (canaryError: boolean): void => {
    const deltas = backends.takeDeltas()
    send({ t: 'cpx:deltas', version, deltas, served: { stable: backends.sides.stable.outcomes, canary: backends.sides.canary.outcomes }, canaryError })
  }
  // A canary error goes to the primary with the deltas that hold it, so its early look sees it; a burst of
  // errors sends one message per CANARY_ERROR_GAP_MS at most (the controller looks no more often than that).
  let lastErrorPush = -Infinity
  let errorPush: Timer | null = null
  backends.canaryErrors.listen(() => {
    if (errorPush !== null) return
    const wait = lastErrorPush + CANARY_ERROR_GAP_MS - clock.now()
    const run = (): void => {
      errorPush = null
      lastErrorPush = clock.now()
      push(true)
    }
    if (wait <= 0) run()
    else errorPush = clock.after(wait, run)
  })
  let pushMs = init.settings.pushMs
  let timer: Timer = clock.every(pushMs, () => push(false))
  // The primary keeps each worker's last counters, so a worker killed outright loses at most this much of them from /metrics.
  const snapshots = clock.every(COUNTER_SNAPSHOT_MS, () => void registry.getMetricsAsJSON().then((metrics) => send({ t: 'cpx:metrics', id: 0, metrics })))

  let draining: Promise<void> | null = null
  const drained = new Promise<void>((resolve) => {
    const drain = (why: string): void => {
      draining ??= (async () => {
        log.debug(`${why}: draining`)
        await plane.drain()
        timer.cancel()
        snapshots.cancel()
        errorPush?.cancel()
        push(false)
        // Upstream requests still running finish (or fail) before the pools go.
        await pools.close()
        backends.dispose()
        resolve()
      })()
    }
    process.on('message', (message: unknown) => {
      if (!isToWorker(message)) return
      switch (message.t) {
        case 'cpx:table':
          version = message.table.version
          backends.apply(message.table)
          break
        case 'cpx:settings':
          log.level = message.settings.logLevel
          if (message.settings.pushMs !== pushMs) {
            pushMs = message.settings.pushMs
            timer.cancel()
            timer = clock.every(pushMs, () => push(false))
          }
          break
        case 'cpx:metrics':
          void registry.getMetricsAsJSON().then((metrics) => send({ t: 'cpx:metrics', id: message.id, metrics }))
          break
        case 'cpx:drain':
          drain('the primary asked')
          break
        case 'cpx:init':
          break
      }
    })
    // The primary gone (killed): nobody routes tables or reads deltas any more; finish what is in flight and go.
    process.once('disconnect', () => drain('the primary went away'))
  })
  // SIGTERM and SIGINT reach the whole process group (a terminal's Ctrl-C): the primary coordinates the drain.
  const ignore = (signal: NodeJS.Signals): void => log.debug(`${signal}: left to the primary, which drains every worker`)
  process.on('SIGTERM', ignore)
  process.on('SIGINT', ignore)

  try {
    const url = await plane.listen()
    send({ t: 'cpx:listening', url })
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { address?: string; port?: number }
    send({ t: 'cpx:fatal', message: e.message, ...(e.code === undefined ? {} : { code: e.code }), ...(e.address === undefined ? {} : { address: e.address }), ...(e.port === undefined ? {} : { port: e.port }) })
    timer.cancel()
    snapshots.cancel()
    await pools.close()
    unguard()
    return 1
  }
  await drained
  unguard()
  process.off('SIGTERM', ignore)
  process.off('SIGINT', ignore)
  return 0
}
