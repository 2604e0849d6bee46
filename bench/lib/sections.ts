/** Replaces one `## ` section of bench/RESULTS.md (the one whose heading matches), or appends it: a bench run on its own rewrites only its part. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'

export function spliceSection(file: string, heading: RegExp, section: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : ''
  const start = text.search(heading)
  let next = -1
  if (start >= 0) {
    const rest = text.slice(start + 1).search(/^## /m)
    next = rest < 0 ? -1 : start + 1 + rest
  }
  const spliced = start < 0 ? `${text.trimEnd()}\n\n${section.trimEnd()}\n` : `${text.slice(0, start)}${section.trimEnd()}\n${next < 0 ? '' : `\n${text.slice(next)}`}`
  writeFileSync(file, spliced)
}
