/**
 * EarlyEvaluation: a canary error asks for a look before the next tick, at
 * most one pending and at least `gapMs` after the previous look, so a burst of
 * errors costs one evaluation (each drains and merges both windows).
 */
import type { Clock, Timer } from '../core/clock.js'

export class EarlyEvaluation {
  readonly #clock: Clock
  readonly #gapMs: number
  readonly #run: () => void
  #pending: Timer | null = null
  #lastAt = Number.NEGATIVE_INFINITY

  constructor(clock: Clock, gapMs: number, run: () => void) {
    this.#clock = clock
    this.#gapMs = gapMs
    this.#run = run
  }

  /** An evaluation ran at `now` (on the tick or early). */
  ran(now: number): void {
    this.#lastAt = now
  }

  request(): void {
    if (this.#pending !== null) return
    const wait = Math.max(0, this.#lastAt + this.#gapMs - this.#clock.now())
    this.#pending = this.#clock.after(wait, () => {
      this.#pending = null
      this.#run()
    })
  }

  cancel(): void {
    this.#pending?.cancel()
    this.#pending = null
  }
}
