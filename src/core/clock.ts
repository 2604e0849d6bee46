/** The only module that reads real time: a Clock for control-plane logic and a monotonic reader for the hot path. */
import { performance } from 'node:perf_hooks'

export interface Timer {
  cancel(): void
}

/**
 * Wall-clock time and scheduling for the control plane (rollout steps, analysis
 * ticks, window rotation). Tests pass a fake one so rollout logic runs in
 * milliseconds and deterministically.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
  /** Calls fn every ms milliseconds until cancelled. */
  every(ms: number, fn: () => void): Timer
  /** Calls fn once after ms milliseconds unless cancelled. */
  after(ms: number, fn: () => void): Timer
}

export const systemClock: Clock = {
  now: () => Date.now(),
  every(ms, fn) {
    const handle = setInterval(fn, ms)
    // Control-plane timers never keep the process alive on their own: the
    // listeners do, and shutdown must not wait for the next tick.
    handle.unref()
    return { cancel: () => clearInterval(handle) }
  },
  after(ms, fn) {
    const handle = setTimeout(fn, ms)
    handle.unref()
    return { cancel: () => clearTimeout(handle) }
  },
}

/**
 * Monotonic microseconds for measuring one exchange on the hot path. This is a
 * measurement, not logic, so it is not injected: performance.now() is the
 * cheapest monotonic source Node has (no BigInt, unlike process.hrtime.bigint).
 */
export function monotonicMicros(): number {
  return performance.now() * 1000
}
