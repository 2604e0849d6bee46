/** Small statistics and number formatting for RESULTS.md: medians, spreads, ratios, and a markdown table. */

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export function min(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : Math.min(...values)
}

export function max(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : Math.max(...values)
}

/** Digits grouped with a thin comma: 10512 -> "10,512". */
export function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a'
}

export function fixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a'
}

export function ratio(n: number, base: number): string {
  return Number.isFinite(n) && Number.isFinite(base) && base > 0 ? `${(n / base).toFixed(2)}×` : 'n/a'
}

export function percent(n: number, digits = 0): string {
  return Number.isFinite(n) ? `${n.toFixed(digits)}%` : 'n/a'
}

export function mib(bytes: number | null): string {
  return bytes === null || !Number.isFinite(bytes) ? 'n/a' : `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

/** "min–max" of values formatted alike. */
export function spread(values: readonly number[], format: (n: number) => string): string {
  return values.length === 0 ? 'n/a' : `${format(min(values))}–${format(max(values))}`
}

/** A GitHub-flavoured markdown table; `align` is 'l' or 'r' per column. */
export function table(head: readonly string[], rows: readonly (readonly string[])[], align?: string): string {
  const a = align ?? 'l' + 'r'.repeat(head.length - 1)
  const rule = head.map((_, i) => (a[i] === 'r' ? '---:' : '---'))
  const line = (cells: readonly string[]): string => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`
  return [line(head), line(rule), ...rows.map(line)].join('\n')
}
