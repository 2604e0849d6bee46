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

const RESPONSE_HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'trailer', 'transfer-encoding', 'upgrade'] as const

/**
 * Rewrites the request's own header object for forwarding, in place: it is
 * ours, and copying it per request would cost an allocation. Removed headers
 * are set to undefined (undici skips them), which avoids `delete` turning the
 * object into a slow dictionary. Node has already joined repeated headers.
 */
export function prepareRequestHeaders(req: IncomingMessage, upstreamHost: string | null): IncomingHttpHeaders {
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
  const host = headers.host
  const peer = clientAddress(req)
  const xff = headers['x-forwarded-for']
  headers['x-forwarded-for'] = xff === undefined ? peer : `${xff}, ${peer}`
  const proto = headers['x-forwarded-proto']
  headers['x-forwarded-proto'] = proto === undefined ? 'http' : `${proto}, http`
  if (host !== undefined) {
    const fh = headers['x-forwarded-host']
    headers['x-forwarded-host'] = fh === undefined ? host : `${fh}, ${host}`
  }
  if (upstreamHost !== null) headers.host = upstreamHost
  return headers
}

/** Drops hop-by-hop headers from an upstream response header object, in place. */
export function prepareResponseHeaders(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const connection = headers.connection
  if (typeof connection === 'string') removeNominated(headers, connection, true)
  for (let i = 0; i < RESPONSE_HOP_BY_HOP.length; i++) {
    const name = RESPONSE_HOP_BY_HOP[i]!
    // undici's parsed header object is ours to edit; Node's writeHead refuses undefined values.
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete
    if (headers[name] !== undefined) delete headers[name]
  }
  return headers
}

function removeNominated(headers: Record<string, unknown>, connection: string, hard = false): void {
  // Only "keep-alive"/"close" in the common case: nothing else to remove.
  const lower = connection.toLowerCase()
  if (lower === 'keep-alive' || lower === 'close') return
  for (const token of lower.split(',')) {
    const name = token.trim()
    // A client must not be able to strip the headers the proxy itself sets.
    if (name === '' || name.startsWith('x-forwarded-') || name === 'host') continue
    if (headers[name] !== undefined) {
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- see prepareResponseHeaders
      if (hard) delete headers[name]
      else headers[name] = undefined
    }
  }
}

/** The peer's address without the IPv4-mapped prefix a dual-stack listener adds. */
export function clientAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? ''
  return address.startsWith('::ffff:') ? address.slice(7) : address
}
