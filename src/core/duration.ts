/** Durations as written in config and on the command line ('250ms', '30s', '2m', '1h30m') <-> milliseconds. */

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y
export const DURATION_PATTERN = '^(?:\\d+(?:\\.\\d+)?(?:ms|s|m|h))+$'

/** Parses a duration string; returns null when it is not one. */
export function parseDuration(text: string): number | null {
  if (text.length === 0) return null
  PART.lastIndex = 0
  let total = 0
  while (PART.lastIndex < text.length) {
    const start = PART.lastIndex
    const match = PART.exec(text)
    if (match === null || match.index !== start) return null
    total += Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]
  }
  return Math.round(total)
}

/** Formats milliseconds in the largest unit that keeps it short and exact enough for a person. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${round(ms)}ms`
  if (ms < 60_000) return `${round(ms / 1000)}s`
  if (ms < 3_600_000) return `${round(ms / 60_000)}m`
  return `${round(ms / 3_600_000)}h`
}

function round(n: number): string {
  return String(Math.round(n * 100) / 100)
}
