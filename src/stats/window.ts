/** SlidingWindow: one side's requests, errors and latency over the last `analysis.window`, as a ring of time slots. */
import type { Histogram } from 'hdr-histogram-js'
import type { WindowView } from '../analysis/check.js'
import { countAbove, HIGHEST_TRACKABLE_US, newLatencyHistogram } from './latency-histogram.js'
import { withDecodedLatency, type WindowDelta, type WindowRecorder } from './recorder.js'

/**
 * The ring (slotCount slots of slotMs each; slot k covers [k*slotMs, (k+1)*slotMs)):
 *
 *     closed = sum of every slot but the current one      current <- recorders are drained here
 *     [ s0 ][ s1 ][ s2 ] ... [ sN-1 ]                     (the hot path writes into a WindowRecorder)
 *
 * advance(now) closes the current slot into `closed`, and the slot that falls
 * out of the window is subtracted from `closed` and reused. A read is then
 * closed + current: two histogram adds, however many slots there are.
 * Invariant: closed == sum(slots) - current, counts and latencies alike.
 * Memory is fixed at construction: (slotCount + 2) histograms, released by dispose().
 */
export class SlidingWindow {
  readonly windowMs: number
  readonly slotMs: number
  readonly slotCount: number
  readonly #slots: Slot[]
  #current: Slot
  #currentIndex = 0
  #currentSlotNo: number
  readonly #closed = new Slot()
  readonly #merged: Histogram = newLatencyHistogram()

  constructor(windowMs: number, now: number, slotCount = defaultSlotCount(windowMs)) {
    this.windowMs = windowMs
    this.slotCount = slotCount
    this.slotMs = Math.max(1, Math.ceil(windowMs / slotCount))
    this.#slots = Array.from({ length: slotCount }, () => new Slot())
    this.#current = this.#slots[0] as Slot
    this.#currentSlotNo = Math.floor(now / this.slotMs)
  }

  /** What a recorder took since it was last drained, into the current slot; the recorder starts again from nothing. */
  drain(recorder: WindowRecorder): void {
    if (recorder.empty) return
    const slot = this.#current
    slot.requests += recorder.requests
    slot.errors += recorder.errors
    if (recorder.latency.totalCount > 0) slot.latency.add(recorder.latency)
    recorder.clear()
  }

  /**
   * A recorder's delta from another process (a worker, a replica), into the
   * current slot, or into slot number `slotNo` (floor(time / slotMs)) when it
   * is still in the window: a replica's delta arrives a slot or so after it
   * was measured, and lands where it belongs so it expires on time. A slot
   * already out of the window is dropped (false); a slot ahead counts as the
   * current one.
   */
  addDelta(delta: WindowDelta, slotNo?: number): boolean {
    if (delta.requests === 0) return true
    const back = slotNo === undefined ? 0 : this.#currentSlotNo - slotNo
    if (back >= this.slotCount) return false
    const slot = back <= 0 ? this.#current : (this.#slots[(this.#currentIndex - back + this.slotCount) % this.slotCount] as Slot)
    const closed = back <= 0 ? null : this.#closed
    slot.requests += delta.requests
    slot.errors += delta.errors
    if (closed !== null) {
      closed.requests += delta.requests
      closed.errors += delta.errors
    }
    withDecodedLatency(delta, (latency) => {
      if (latency === null || latency.totalCount === 0) return
      slot.latency.add(latency)
      closed?.latency.add(latency)
    })
    return true
  }

  /** The number of the current slot (floor(now / slotMs) at the last advance or reset). */
  get currentSlotNo(): number {
    return this.#currentSlotNo
  }

  /** One upstream response straight into the current slot (tests and simulations; the proxy records through a WindowRecorder). */
  recordResponse(isError: boolean, latencyUs: number): void {
    const slot = this.#current
    slot.requests++
    if (isError) slot.errors++
    slot.latency.recordValue(latencyUs < 1 ? 1 : latencyUs > HIGHEST_TRACKABLE_US ? HIGHEST_TRACKABLE_US : latencyUs)
  }

  /** No response at all, straight into the current slot (tests and simulations). */
  recordFailure(): void {
    const slot = this.#current
    slot.requests++
    slot.errors++
  }

  /** Moves the ring forward to `now`; cheap when nothing expired. */
  advance(now: number): void {
    const slotNo = Math.floor(now / this.slotMs)
    const steps = slotNo - this.#currentSlotNo
    if (steps <= 0) return
    this.#currentSlotNo = slotNo
    if (steps >= this.slotCount) {
      // Everything closed has expired. The current slot holds what was
      // recorded since the last advance; nothing was recorded while nobody
      // advanced unless the loop ran, so it is the newest data: keep it.
      for (const slot of this.#slots) if (slot !== this.#current) slot.reset()
      this.#closed.reset()
      return
    }
    for (let s = 0; s < steps; s++) {
      this.#closed.add(this.#current)
      this.#currentIndex = (this.#currentIndex + 1) % this.slotCount
      const expiring = this.#slots[this.#currentIndex] as Slot
      this.#closed.subtract(expiring)
      expiring.reset()
      this.#current = expiring
    }
  }

  /** Figures over the window ending at `now`. The histogram is shared scratch: valid until the next read. */
  read(now: number): WindowFigures {
    this.advance(now)
    const merged = this.#merged
    merged.reset()
    if (this.#closed.latency.totalCount > 0) merged.add(this.#closed.latency)
    if (this.#current.latency.totalCount > 0) merged.add(this.#current.latency)
    const requests = this.#closed.requests + this.#current.requests
    const errors = this.#closed.errors + this.#current.errors
    return { requests, errors, errorRate: requests === 0 ? 0 : errors / requests, latency: merged }
  }

  /**
   * The window ending at `now` as the checks read it: counts and latency
   * queries, answered from the merged histogram and the slots as they are now.
   * Valid until the window is next read, drained or advanced (the gate reads
   * it synchronously, in one evaluation).
   */
  view(now: number): WindowView {
    const f = this.read(now)
    const latency = f.latency
    return {
      requests: f.requests,
      errors: f.errors,
      latencyCount: latency.totalCount,
      slotMs: this.slotMs,
      quantileUs: (q) => (latency.totalCount === 0 ? null : latency.getValueAtPercentile(q * 100)),
      countAbove: (us) => countAbove(latency, us),
      slowestSlot: (us) => this.slowestSlot(us),
    }
  }

  /**
   * The slot with the most responses slower than `us`, as of the last
   * read(now): how many were slower there, and how many it measured. Slots whose
   * slowest response is within `us` cost one field read.
   */
  slowestSlot(us: number): SlotCount {
    let above = 0
    let count = 0
    for (const slot of this.#slots) {
      const h = slot.latency
      if (h.totalCount === 0 || h.maxValue <= us) continue
      const n = countAbove(h, us)
      if (n > above) {
        above = n
        count = h.totalCount
      }
    }
    return { above, count }
  }

  /** The slot `now` falls in (slots are numbered from the epoch). */
  slotNumber(now: number): number {
    return Math.floor(now / this.slotMs)
  }

  /**
   * The current slot's latencies as the latency tally reads them: how many
   * were measured, and how many were slower than a bound. Valid until the
   * window next advances.
   */
  currentSample(): { readonly count: number; above(us: number): number } {
    const h = this.#current.latency
    return { count: h.totalCount, above: (us) => (h.totalCount === 0 || h.maxValue <= us ? 0 : countAbove(h, us)) }
  }

  /** Forgets everything: a new rollout starts with empty figures. */
  reset(now: number): void {
    for (const slot of this.#slots) slot.reset()
    this.#closed.reset()
    this.#currentSlotNo = Math.floor(now / this.slotMs)
  }

  /** Releases the histograms' WebAssembly memory; the window must not be used after. */
  dispose(): void {
    for (const slot of this.#slots) slot.latency.destroy()
    this.#closed.latency.destroy()
    this.#merged.destroy()
  }
}

export interface WindowFigures {
  readonly requests: number
  readonly errors: number
  readonly errorRate: number
  /** Latency of the upstream responses in the window, in microseconds. */
  readonly latency: Histogram
}

export interface SlotCount {
  /** Responses slower than the bound in that slot. */
  readonly above: number
  /** Responses with a latency in that slot. */
  readonly count: number
}

/** About 30 slots: expiry within 1/30 of the window, slots no shorter than 50ms. */
function defaultSlotCount(windowMs: number): number {
  return Math.max(1, Math.min(30, Math.floor(windowMs / 50)))
}

class Slot {
  requests = 0
  errors = 0
  readonly latency: Histogram = newLatencyHistogram()

  add(other: Slot): void {
    this.requests += other.requests
    this.errors += other.errors
    if (other.latency.totalCount > 0) this.latency.add(other.latency)
  }

  subtract(other: Slot): void {
    this.requests -= other.requests
    this.errors -= other.errors
    if (other.latency.totalCount > 0) this.latency.subtract(other.latency)
  }

  reset(): void {
    this.requests = 0
    this.errors = 0
    if (this.latency.totalCount > 0) this.latency.reset()
  }
}
