/** Bench child side: the proxy's own event-loop delay and GC pauses over a run, to tell its own stalls from the machine's. */
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'

export interface LoopStats {
  /** Event-loop delay (perf_hooks, 1 ms resolution): how late timers ran, whatever held the loop (own work, GC, or the CPU taken away). */
  readonly loopDelayP99Ms: number
  readonly loopDelayMaxMs: number
  /** Garbage-collection pauses of this process: count, total and longest, in ms. */
  readonly gcCount: number
  readonly gcTotalMs: number
  readonly gcMaxMs: number
}

/** A `loopStats` call handler: each call returns the figures since the previous call and starts over. */
export function loopStatsHandler(): () => LoopStats {
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  let gcCount = 0
  let gcTotalMs = 0
  let gcMaxMs = 0
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcCount++
      gcTotalMs += entry.duration
      if (entry.duration > gcMaxMs) gcMaxMs = entry.duration
    }
  }).observe({ entryTypes: ['gc'] })
  return () => {
    const stats: LoopStats = { loopDelayP99Ms: delay.percentile(99) / 1e6, loopDelayMaxMs: delay.max / 1e6, gcCount, gcTotalMs, gcMaxMs }
    delay.reset()
    gcCount = 0
    gcTotalMs = 0
    gcMaxMs = 0
    return stats
  }
}
