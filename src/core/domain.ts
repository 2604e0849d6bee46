/**
 * The rules every boundary shares (config file, admin API, state file, CLI): one
 * definition and one message each, so they cannot drift apart again.
 */
import { isIP } from 'node:net'

/** Weights are percent, 0..100, in steps of 0.01 (10,000 sticky buckets). */
export const WEIGHT_MIN = 0
export const WEIGHT_MAX = 100
export const WEIGHT_DECIMALS = 2

/**
 * Decimal places of a number as JSON writes it (its shortest round-trip form):
 * 33.33 has 2, 1e-7 has 7, 5.000000001 has 9. A tolerance-based test (ajv's
 * multipleOf, |n*100 - round(n*100)| < 1e-6) lets 5.000000001 pass as "two
 * decimals"; this does not.
 */
export function decimalsOf(n: number): number {
  if (!Number.isFinite(n)) return Number.POSITIVE_INFINITY
  const m = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(Math.abs(n)))
  if (m === null) return Number.POSITIVE_INFINITY
  return Math.max(0, (m[2] ?? '').length - Number(m[3] ?? 0))
}

export function hasAtMostTwoDecimals(n: number): boolean {
  return decimalsOf(n) <= WEIGHT_DECIMALS
}

/** The one message for a weight that is not one; null when it is. `positive`: a rollout step (0 is no step). */
export function weightProblem(value: unknown, options: { readonly positive?: boolean } = {}): string | null {
  if (typeof value !== 'number' || !Number.isFinite(value)) return `must be a number from 0 to 100${got(value)}`
  if (value < WEIGHT_MIN || value > WEIGHT_MAX || (options.positive === true && value === 0)) {
    return `must be a number ${options.positive === true ? 'above 0 and up to' : 'from 0 to'} 100${got(value)}`
  }
  if (!hasAtMostTwoDecimals(value)) return `must have at most two decimals (weights go in steps of 0.01)${got(value)}`
  return null
}

/**
 * An upstream URL as the proxy can use it: http(s), a host, a port other than
 * 0, no credentials, query or fragment, and nothing that the WHATWG parser
 * would silently repair (surrounding spaces, control characters such as NUL,
 * CR or LF, which it strips or percent-encodes into the path).
 */
export function upstreamUrlProblem(value: string): string | null {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return 'must be an http:// or https:// URL such as http://127.0.0.1:9001'
  }
  if (value.trim() !== value) return 'must not have spaces around it'
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here
  if (/[\u0000-\u0020\u007f]/.test(value)) return 'must not contain spaces or control characters (such as NUL, CR or LF)'
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must use http:// or https://, not ${url.protocol}//`
  if (url.hostname === '') return 'must name a host'
  if (url.username !== '' || url.password !== '') return 'must not contain a user name or password'
  if (url.search !== '' || url.hash !== '' || value.includes('?') || value.includes('#')) return 'must not contain a query or fragment'
  if (url.port === '0') return 'must not use port 0 (no upstream listens there)'
  return null
}

/**
 * A host as written in a listen address, a URL or a Host header (with or
 * without a port, an IPv6 address with or without brackets) names the loopback
 * interface. One rule for the admin bind check and the DNS-rebinding guard.
 */
export function isLoopbackHost(hostWithOptionalPort: string): boolean {
  let host = hostWithOptionalPort.trim().toLowerCase()
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    host = end === -1 ? host.slice(1) : host.slice(1, end)
  } else if (isIP(host) !== 6) {
    const colon = host.lastIndexOf(':')
    if (colon !== -1 && /^\d*$/.test(host.slice(colon + 1))) host = host.slice(0, colon)
  }
  if (host.endsWith('.')) host = host.slice(0, -1)
  if (host === 'localhost' || host.endsWith('.localhost')) return true
  if (isIP(host) === 4) return host.startsWith('127.')
  return host === '::1' || host === '0:0:0:0:0:0:0:1' || /^::ffff:127\.\d+\.\d+\.\d+$/.test(host)
}

function got(value: unknown): string {
  return value === undefined || (typeof value === 'object' && value !== null) ? '' : ` (got ${JSON.stringify(value)})`
}
