/** How figures read in findings, decisions, the CLI and the demo: one formatter per kind of figure. */

/** A ratio as a percentage: 0.121 -> "12.1%", small ones with two decimals (0.0005 -> "0.05%"). */
export function pct(ratio: number): string {
  const value = ratio * 100
  return `${value !== 0 && value < 0.1 ? value.toFixed(2) : value.toFixed(1)}%`
}

/** A difference of ratios in percentage points: 0.0571 -> "5.71 points". */
export function points(ratio: number): string {
  return `${(ratio * 100).toFixed(2)} points`
}

/** Microseconds as milliseconds with about three significant digits: "2.35ms", "23.5ms", "235ms". */
export function ms(us: number): string {
  const value = us / 1000
  return `${value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : Math.round(value)}ms`
}

/** A whole count with thousands separators: 12345 -> "12,345" (as toLocaleString('en-US') writes it; that call costs microseconds, and checks run at every look). */
export function count(n: number): string {
  const digits = String(Math.abs(Math.round(n)))
  let out = ''
  for (let i = 0; i < digits.length; i++) {
    if (i > 0 && (digits.length - i) % 3 === 0) out += ','
    out += digits[i]
  }
  return n < 0 && out !== '0' ? `-${out}` : out
}

/** A slot or step length: whole seconds as "2s", else milliseconds. */
export function span(msValue: number): string {
  return msValue % 1000 === 0 ? `${msValue / 1000}s` : `${msValue}ms`
}
