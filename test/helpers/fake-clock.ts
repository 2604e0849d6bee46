/** FakeClock: a Clock that tests advance by hand, so rollout timing runs in milliseconds and deterministically. */
import type { Clock, Timer } from '../../src/core/clock.js'

interface Scheduled {
  at: number
  every: number | null
  fn: () => void
  cancelled: boolean
  seq: number
}

export class FakeClock implements Clock {
  #now: number
  #timers: Scheduled[] = []
  #seq = 0

  constructor(start = Date.UTC(2026, 10, 30, 12, 0, 0)) {
    this.#now = start
  }

  now(): number {
    return this.#now
  }

  every(ms: number, fn: () => void): Timer {
    return this.#schedule(this.#now + ms, ms, fn)
  }

  after(ms: number, fn: () => void): Timer {
    return this.#schedule(this.#now + ms, null, fn)
  }

  /** Moves time forward by ms, firing every timer that falls due, in time order. */
  advance(ms: number): void {
    const end = this.#now + ms
    for (;;) {
      const next = this.#timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (next === undefined) break
      this.#now = next.at
      if (next.every === null) next.cancelled = true
      else next.at += next.every
      next.fn()
    }
    this.#now = end
    this.#timers = this.#timers.filter((t) => !t.cancelled)
  }

  /** Sets the time without firing timers (for pure-module tests). */
  set(now: number): void {
    this.#now = now
  }

  get pendingTimers(): number {
    return this.#timers.filter((t) => !t.cancelled).length
  }

  #schedule(at: number, every: number | null, fn: () => void): Timer {
    const entry: Scheduled = { at, every, fn, cancelled: false, seq: this.#seq++ }
    this.#timers.push(entry)
    return { cancel: () => (entry.cancelled = true) }
  }
}
