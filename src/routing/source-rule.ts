/** Trusted-source rules for the override header: CIDR lists compiled into a node:net BlockList, and the client address a request is judged by. */
import { BlockList, isIPv4, isIPv6 } from 'node:net'
import type { IncomingHttpHeaders } from 'node:http'

/** Who may steer with the override header when the config says nothing: this host only. */
export const DEFAULT_OVERRIDE_FROM: readonly string[] = ['127.0.0.0/8', '::1/128']

export interface SourceRule {
  readonly address: string
  readonly prefix: number
  readonly family: 'ipv4' | 'ipv6'
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128); null when it is neither. */
export function parseSourceRule(text: string): SourceRule | null {
  const slash = text.indexOf('/')
  const address = slash === -1 ? text : text.slice(0, slash)
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : null
  if (family === null) return null
  const max = family === 'ipv4' ? 32 : 128
  if (slash === -1) return { address, prefix: max, family }
  const digits = text.slice(slash + 1)
  if (!/^\d{1,3}$/.test(digits)) return null
  const prefix = Number(digits)
  return prefix <= max ? { address, prefix, family } : null
}

/** Compiled once per snapshot; entries are validated by the config loader, so one that does not parse is skipped here. */
export function compileSourceRules(rules: readonly string[]): BlockList {
  const list = new BlockList()
  for (const text of rules) {
    const rule = parseSourceRule(text)
    if (rule !== null) list.addSubnet(rule.address, rule.prefix, rule.family)
  }
  return list
}

/**
 * The client address a request is judged by: the peer, or with trustForwarded
 * the last X-Forwarded-For entry, the one the trusted load balancer appended
 * (Envoy's xff_num_trusted_hops = 1; entries before it are the client's own
 * claims). Without the header the peer is used, as NGINX's realip does.
 * Node joins repeated X-Forwarded-For lines with ", ", so the last entry is
 * the last line's. Some balancers append `address:port` or `[v6]:port`.
 */
export function sourceAddress(headers: IncomingHttpHeaders, peer: string | undefined, trustForwarded: boolean): string | undefined {
  if (trustForwarded) {
    const xff = headers['x-forwarded-for']
    if (typeof xff === 'string') {
      const last = xff.slice(xff.lastIndexOf(',') + 1).trim()
      if (last !== '') return bareAddress(last)
    }
  }
  return peer
}

export function sourceAllowed(rules: BlockList, address: string | undefined): boolean {
  if (address === undefined || address === '') return false
  // BlockList matches an IPv4-mapped IPv6 peer (::ffff:127.0.0.1) against IPv4 rules too.
  return rules.check(address, address.includes(':') ? 'ipv6' : 'ipv4')
}

function bareAddress(value: string): string {
  if (value.charCodeAt(0) === 0x5b) {
    const end = value.indexOf(']')
    return end === -1 ? value : value.slice(1, end)
  }
  const colon = value.indexOf(':')
  return colon !== -1 && colon === value.lastIndexOf(':') ? value.slice(0, colon) : value
}
