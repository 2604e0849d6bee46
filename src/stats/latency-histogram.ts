/** The HDR histogram shape every latency figure uses, and the few reads the gate needs from one. */
import { build, initWebAssemblySync, type Histogram } from 'hdr-histogram-js'

/**
 * Microseconds, 3 significant digits (0.1% error: 500ms reads as 500.0±0.5ms),
 * range 1us..1h, 32-bit counts, no auto-resize: the counts array (~94 KB) is
 * allocated once and recording never allocates. Values above the range are
 * clamped by the caller: a 2 h response is reported as 1 h, not dropped.
 *
 * hdr-histogram-js's WebAssembly build, not its JS one: recordValue is the hot
 * path's biggest cost, and measured on this machine kind (bench/RESULTS.md,
 * same loop, histogram held in a mutable field as the window holds it) it is
 * 25 ns in WebAssembly against 144 ns in JS. The price: a WASM histogram must
 * be released with destroy() (SlidingWindow.dispose), and it does not expose
 * its counts array, so countAbove() searches by rank instead.
 */
export const HIGHEST_TRACKABLE_US = 3_600_000_000

let wasmReady = false

/** hdr-histogram-js's WebAssembly module, loaded once before the first histogram is built or decoded. */
export function ensureWebAssembly(): void {
  if (!wasmReady) {
    initWebAssemblySync()
    wasmReady = true
  }
}

export function newLatencyHistogram(): Histogram {
  ensureWebAssembly()
  return build({
    bitBucketSize: 32,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_TRACKABLE_US,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: true,
  })
}

/**
 * Number of recorded values above `us` (to the histogram's resolution): the
 * total less the largest rank whose value is still <= us, found by bisection
 * over ranks with getValueAtPercentile (log2(n) reads). The gate calls this
 * only when a latency bound is already breached.
 */
export function countAbove(histogram: Histogram, us: number): number {
  const n = histogram.totalCount
  if (n === 0 || histogram.maxValue <= us) return 0
  let lo = 0 // rank known to be <= us (rank 0: no value at all)
  let hi = n // ranks above hi are known to be > us
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (histogram.getValueAtPercentile((100 * mid) / n) <= us) lo = mid
    else hi = mid - 1
  }
  return n - lo
}
