/** Header rules at the proxy boundary: hop-by-hop removal (RFC 9110 §7.6.1) and X-Forwarded-* on the way in. */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http'

/**
 * Request headers never forwarded. Besides RFC 9110's hop-by-hop set, undici
 * refuses `keep-alive`, `upgrade`, `transfer-encoding` and `expect` outright
 * (a curl upload sends `Expect: 100-continue`; Node has already answered the
 * 100 itself), so forwarding them would turn a good request into a proxy 500.
 */
const REQUEST_HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'http2-settings',
] as const

const RESPONSE_HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'trailer', 'transfer-encoding', 'upgrade'])

/**
 * Rewrites the request's own header object for forwarding, in place: it is
 * ours, and copying it per request would cost an allocation. Removed headers
 * are set to undefined (undici skips them), which avoids `delete` turning the
 * object into a slow dictionary. Node has already joined repeated headers.
 */
export function prepareRequestHeaders(req: IncomingMessage, upstreamHost: string | null, trustForwarded: boolean): IncomingHttpHeaders {
  const headers = req.headers
  const connection = headers.connection
  if (connection !== undefined) removeNominated(headers, connection)
  for (let i = 0; i < REQUEST_HOP_BY_HOP.length; i++) {
    const name = REQUEST_HOP_BY_HOP[i]!
    if (headers[name] !== undefined) headers[name] = undefined
  }
  // Names with '_' are dropped, as NGINX does by default and Envoy advises at
  // the edge: llhttp accepts `Transfer_Encoding: chunked` as an ordinary
  // header, and an upstream that folds '_' into '-' (CGI-style variables)
  // would read it as framing, or `X_Forwarded_For` as our own header.
  // for-in over the parser's object walks its enum cache: no allocation.
  for (const name in headers) {
    if (name.indexOf('_') !== -1 && headers[name] !== undefined) headers[name] = undefined
  }
  // X-Forwarded-For is appended (its last address is ours to vouch for).
  // Proto and Host are single values a framework reads as the scheme and
  // host: set from this hop, as Envoy does, unless the peer is a trusted
  // proxy (a TLS load balancer in front), whose values are passed on; a
  // client could otherwise claim https. `Forwarded` only from trusted peers.
  const host = headers.host
  const peer = clientAddress(req)
  const xff = headers['x-forwarded-for']
  headers['x-forwarded-for'] = xff === undefined ? peer : `${xff}, ${peer}`
  if (!trustForwarded || headers['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = 'http'
  if (host !== undefined && (!trustForwarded || headers['x-forwarded-host'] === undefined)) headers['x-forwarded-host'] = host
  if (!trustForwarded && headers.forwarded !== undefined) headers.forwarded = undefined
  if (upstreamHost !== null) headers.host = upstreamHost
  return headers
}

/**
 * The upstream's response headers without the hop-by-hop ones, as a fresh
 * object. Copying is cheaper than editing undici's object: `delete` turns it
 * into a slow dictionary that writeHead then walks (measured ~680 ns per
 * response against ~100 ns for a copy, bench/RESULTS.md), and a Node or nginx
 * upstream sends Connection and Keep-Alive on every keep-alive response.
 */
export function prepareResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const connection = headers.connection
  const nominated = typeof connection === 'string' ? nominatedNames(connection) : null
  const out: OutgoingHttpHeaders = {}
  for (const name in headers) {
    if (RESPONSE_HOP_BY_HOP.has(name) || (nominated !== null && nominated.includes(name))) continue
    out[name] = headers[name]
  }
  return out
}

/** Header names a Connection value nominates as hop-by-hop; null for the usual bare keep-alive/close. */
function nominatedNames(connection: string): string[] | null {
  const lower = connection.toLowerCase()
  if (lower === 'keep-alive' || lower === 'close') return null
  return lower.split(',').map((token) => token.trim())
}

function removeNominated(headers: Record<string, unknown>, connection: string): void {
  const names = nominatedNames(connection)
  if (names === null) return
  for (const name of names) {
    // A client must not be able to strip the headers the proxy itself sets.
    if (name === '' || name.startsWith('x-forwarded-') || name === 'host') continue
    if (headers[name] !== undefined) headers[name] = undefined
  }
}

/** The peer's address without the IPv4-mapped prefix a dual-stack listener adds. */
export function clientAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? ''
  return address.startsWith('::ffff:') ? address.slice(7) : address
}
