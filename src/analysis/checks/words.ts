/** Figures in words for the findings: percentages, points, milliseconds, counts. */

export function pct(ratio: number): string {
  const value = ratio * 100
  return `${value !== 0 && value < 0.1 ? value.toFixed(2) : value.toFixed(1)}%`
}

export function points(ratio: number): string {
  return `${(ratio * 100).toFixed(2)} points`
}

export function ms(us: number): string {
  const value = us / 1000
  return `${value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : Math.round(value)}ms`
}

/** 12,345 (as toLocaleString('en-US') writes it; that call costs microseconds, and checks run at every look). */
export function count(n: number): string {
  const digits = String(Math.abs(Math.round(n)))
  let out = ''
  for (let i = 0; i < digits.length; i++) {
    if (i > 0 && (digits.length - i) % 3 === 0) out += ','
    out += digits[i]
  }
  return n < 0 && out !== '0' ? `-${out}` : out
}

/** "requests" / "request". */
export function plural(n: number, word: string): string {
  return `${count(n)} ${word}${n === 1 ? '' : 's'}`
}
