/** Sizes as written in config ('512Mi', '1Gi', '300M', '1048576') <-> bytes, with Kubernetes' quantity suffixes. */

const UNIT_BYTES = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 } as const
export const BYTES_PATTERN = '^\\d+(?:\\.\\d+)?(?:Ki|Mi|Gi|Ti|K|M|G|T)?$'
const BYTES = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/

/** Parses a size; returns null when it is not one. Binary suffixes (Ki, Mi, Gi, Ti) are powers of 1024, decimal ones (K, M, G, T) of 1000. */
export function parseBytes(text: string): number | null {
  const m = BYTES.exec(text)
  if (m === null) return null
  return Math.round(Number(m[1]) * UNIT_BYTES[(m[2] ?? '') as keyof typeof UNIT_BYTES])
}

/** Bytes in the largest binary unit that keeps three significant figures: `1.02 GiB`, `512 MiB`, `900 B`. */
export function formatBytes(bytes: number): string {
  const sign = bytes < 0 ? '-' : ''
  let n = Math.abs(bytes)
  for (const unit of ['B', 'KiB', 'MiB', 'GiB']) {
    if (n < 1024 || unit === 'GiB') return `${sign}${unit === 'B' ? String(Math.round(n)) : n.toPrecision(3).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '')} ${unit}`
    n /= 1024
  }
  return `${sign}${n} GiB`
}
