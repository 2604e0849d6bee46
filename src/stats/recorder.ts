/**
 * WindowRecorder: one backend's outcomes since the control plane last took
 * them, written by the hot path. The control plane drains it into its sliding
 * window every slot (and before each evaluation); across a process boundary
 * (workers, replicas) it is taken as a WindowDelta: plain data, the histogram
 * in hdr-histogram-js's own compressed encoding.
 *
 *     hot path -> recorder.record*()          (counts += 1, histogram.recordValue)
 *     control  -> window.drain(recorder)       (in process: add + reset, ~100 us)
 *              -> recorder.takeDelta()         (other processes: encode + reset, ~140 us)
 *                 window.addDelta(delta)       (decode + add)
 *
 * Merging the deltas of several recorders gives the figures of one recorder
 * that saw all their traffic: counts add, and HDR histograms add exactly.
 */
import { decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js'
import { ensureWebAssembly, HIGHEST_TRACKABLE_US, newLatencyHistogram } from './latency-histogram.js'

/** One recorder's outcomes over an interval, serialisable as JSON. */
export interface WindowDelta {
  readonly requests: number
  readonly errors: number
  /** The latencies (microseconds), encodeIntoCompressedBase64; '' when none. */
  readonly latency: string
}

export const EMPTY_DELTA: WindowDelta = { requests: 0, errors: 0, latency: '' }

export class WindowRecorder {
  requests = 0
  errors = 0
  readonly latency: Histogram = newLatencyHistogram()

  /** An upstream response (any status); `isError` for 5xx. */
  recordResponse(isError: boolean, latencyUs: number): void {
    this.requests++
    if (isError) this.errors++
    this.latency.recordValue(latencyUs < 1 ? 1 : latencyUs > HIGHEST_TRACKABLE_US ? HIGHEST_TRACKABLE_US : latencyUs)
  }

  /** No response at all (connect failure, reset, timeout): an error with no latency. */
  recordFailure(): void {
    this.requests++
    this.errors++
  }

  get empty(): boolean {
    return this.requests === 0
  }

  /** What was recorded since the last take, as plain data; the recorder starts again from nothing. */
  takeDelta(): WindowDelta {
    if (this.requests === 0) return EMPTY_DELTA
    const delta = { requests: this.requests, errors: this.errors, latency: this.latency.totalCount === 0 ? '' : encodeIntoCompressedBase64(this.latency) }
    this.clear()
    return delta
  }

  clear(): void {
    this.requests = 0
    this.errors = 0
    if (this.latency.totalCount > 0) this.latency.reset()
  }

  /** Releases the histogram's WebAssembly memory; the recorder must not be used after. */
  dispose(): void {
    this.latency.destroy()
  }
}

/** Runs `use` with the delta's histogram decoded (null when it has none), then releases it. */
export function withDecodedLatency<T>(delta: WindowDelta, use: (latency: Histogram | null) => T): T {
  if (delta.latency === '') return use(null)
  ensureWebAssembly()
  const histogram = decodeFromCompressedBase64(delta.latency, 32, true)
  try {
    return use(histogram)
  } finally {
    histogram.destroy()
  }
}

/**
 * Where a retired backend's results go: requests still in flight to it finish
 * later, and must neither reach the figures of the backend that replaced it nor
 * record into a histogram whose memory was released. Cleared, never read.
 */
export const RETIRED_RECORDER = new WindowRecorder()
