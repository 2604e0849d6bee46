/** Microbench cases for the control-plane work that runs on the data plane's event loop every second: window rotation and window reads. */
import { WindowRecorder } from '../../src/stats/recorder.js'
import { summarize } from '../../src/stats/side-stats.js'
import { SlidingWindow } from '../../src/stats/window.js'
import type { Case } from './measure.js'
import { mulberry32 } from '../lib/random.js'

/** Values recorded into the current slot before each rotation: a few, so every slot holds data as under load. */
const PER_SLOT = 50

/**
 * A 30 s window (the default analysis.window: 30 slots of 1 s) filled the
 * way traffic fills it, latencies 200us..20ms plus one 2 s outlier per slot,
 * which stretches each slot's histogram the way a slow request does.
 */
function filledStats(): { window: SlidingWindow; step: () => number; now: () => number } {
  const rand = mulberry32(7)
  const window = new SlidingWindow(30_000, 0)
  const recorder = new WindowRecorder()
  let now = 0
  // As the control plane does every slot: the data plane's recorder is drained into the current slot, then the ring moves.
  const fill = (): void => {
    for (let i = 0; i < PER_SLOT - 1; i++) recorder.recordResponse(false, 200 * Math.pow(100, rand()))
    recorder.recordResponse(false, 2_000_000)
    window.drain(recorder)
  }
  for (let s = 0; s < window.slotCount; s++) {
    fill()
    now += window.slotMs
    window.advance(now)
  }
  return {
    window,
    now: () => now,
    step: () => {
      fill()
      now += window.slotMs
      window.advance(now)
      return window.slotCount
    },
  }
}

export function periodicCases(): Case[] {
  const rotating = filledStats()
  const reading = filledStats()
  return [
    {
      name: 'SlidingWindow drain + advance by one slot',
      note: `src/stats/window.ts, per side every slotMs (1 s by default): drain the backend's recorder into the current slot, close it, drop the oldest; includes recording ${PER_SLOT} values into the recorder first (~${PER_SLOT} × the record cost)`,
      run(n) {
        let sum = 0
        for (let i = 0; i < n; i++) sum += rotating.step()
        return sum
      },
    },
    {
      name: 'window read + summarize',
      note: 'src/stats/side-stats.ts summarize(window.read(now)): per side on each analysis tick while a rollout is under way, and on status/scrape reads (cached 50 ms)',
      run(n) {
        let sum = 0
        for (let i = 0; i < n; i++) sum += summarize(reading.window.read(reading.now())).p99Ms ?? 0
        return sum
      },
    },
  ]
}
