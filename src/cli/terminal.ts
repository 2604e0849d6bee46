/** The terminal side of the CLI: where lines go, whether they are coloured, how wide they may be, and times said relative to now. */
import picocolors from 'picocolors'
import prettyMs from 'pretty-ms'

/** Colour functions (bold, red, …), identity functions when colour is off. */
export type Colors = ReturnType<typeof picocolors.createColors>

export interface Io {
  out(line: string): void
  err(line: string): void
  /** Colours for stdout: no-ops unless stdout is a terminal that takes them (and NO_COLOR is not set). */
  readonly style: Colors
  /** stdout is a terminal: `status --watch` redraws in place instead of appending. */
  readonly tty: boolean
  /** Clears the terminal (stdout) before a redraw; only called when `tty`. */
  clear(): void
}

/** The widest line the CLI prints (the demo, status, help): readable in a split terminal or a CI log. */
export const WIDTH = 100

type Env = Readonly<Record<string, string | undefined>>

/**
 * Colour on a terminal, none in a pipe or a file; NO_COLOR (non-empty, as
 * https://no-color.org says) turns it off, FORCE_COLOR (not 0) on; TERM=dumb
 * and a terminal without colours (hasColors) get none.
 */
export function useColour(stream: { isTTY?: boolean; hasColors?: (count: number, env: Env) => boolean }, env: Env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true
  if (stream.isTTY !== true || env.TERM === 'dumb') return false
  // Node's own test counts an empty NO_COLOR as set; the rule above has decided it already.
  return stream.hasColors?.(16, { ...env, NO_COLOR: undefined }) ?? true
}

export function colours(enabled: boolean): Colors {
  return picocolors.createColors(enabled)
}

/** Colours that are all no-ops. */
export const PLAIN: Colors = picocolors.createColors(false)

/** "8s", "2m 5s", "1h 4m". */
export function span(ms: number): string {
  return ms < 1_000 ? '<1s' : prettyMs(ms, { secondsDecimalDigits: 0, unitCount: 2 })
}

/** "3s ago" for a time in the past ("just now" within a second). */
export function ago(iso: string, now: number): string {
  const ms = now - Date.parse(iso)
  return ms < 1_000 ? 'just now' : `${span(ms)} ago`
}

/** "in 8s" for a time to come; a time just past reads "now". */
export function fromNow(iso: string, now: number): string {
  const ms = Date.parse(iso) - now
  return ms <= 0 ? 'now' : `in ${span(ms)}`
}

/**
 * Word-wraps plain text to `width` columns, keeping the spaces between words
 * as they are (columns stay aligned); lines after the first start with
 * `indent`. A word longer than a line stays whole.
 */
export function wrap(text: string, width: number, indent = ''): string[] {
  const lines: string[] = []
  let line = ''
  for (const match of text.matchAll(/(\s*)(\S+)/g)) {
    const [, gap = '', word = ''] = match
    const prefix = lines.length === 0 ? '' : indent
    if (line !== '' && prefix.length + line.length + gap.length + word.length > width) {
      lines.push(`${prefix}${line}`)
      line = word
    } else {
      line = `${line}${line === '' && lines.length > 0 ? '' : gap}${word}`
    }
  }
  if (line !== '' || lines.length === 0) lines.push(`${lines.length === 0 ? '' : indent}${line}`)
  return lines
}

/** Cuts plain text to `width` columns, ending in "..." (ASCII: CI logs and old terminals). */
export function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 3))}...`
}
