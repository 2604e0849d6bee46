/** Figures in words for the findings: the product's formatters (core/format.ts), and plurals. */
import { count } from '../../core/format.js'

export { count, ms, pct, points } from '../../core/format.js'

/** "requests" / "request". */
export function plural(n: number, word: string): string {
  return `${count(n)} ${word}${n === 1 ? '' : 's'}`
}
