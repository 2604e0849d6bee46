/** The HDR histogram shape every latency figure uses, and the few reads the gate needs from one. */
import { build, type Histogram } from 'hdr-histogram-js'

/**
 * Microseconds, 3 significant digits (0.1% error: 500ms reads as 500.0±0.5ms),
 * range 1us..1h, 32-bit counts, no auto-resize: the counts array (~94 KB) is
 * allocated once and recordValue never allocates. Values above the range are
 * clamped by the caller: a 2 h response is reported as 1 h, not dropped.
 */
export const HIGHEST_TRACKABLE_US = 3_600_000_000

export function newLatencyHistogram(): Histogram {
  return build({
    bitBucketSize: 32,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_TRACKABLE_US,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  })
}

/** Number of recorded values strictly above `us` (to the histogram's resolution). */
export function countAbove(histogram: Histogram, us: number): number {
  const h = histogram as unknown as JsHistogramInternals
  if (histogram.totalCount === 0) return 0
  const from = h.countsArrayIndex(Math.min(Math.max(1, Math.floor(us)), HIGHEST_TRACKABLE_US)) + 1
  let above = 0
  for (let i = from; i < h.countsArrayLength; i++) above += h.getCountAtIndex(i)
  return above
}

/** The parts of hdr-histogram-js's JsHistogram that its Histogram interface does not declare. */
interface JsHistogramInternals {
  countsArrayIndex(value: number): number
  getCountAtIndex(index: number): number
  readonly countsArrayLength: number
}
