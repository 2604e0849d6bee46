/** The one mapping from a failed exchange to the reply the proxy generates itself (status, x-canary-proxy-error, short body). */
import { STATUS_CODES, type ServerResponse } from 'node:http'
import { formatDuration } from '../core/duration.js'
import { messageOf, statusOf, type ErrorCode } from '../core/errors.js'
import type { SideName } from '../routing/snapshot.js'
import { CONNECT_PHASE } from './upstreams.js'

export const PROXY_ERROR_HEADER = 'x-canary-proxy-error'

export interface Failure {
  readonly code: ErrorCode
  /** True when the failure is the upstream's (counted as status_class="error" for that side). */
  readonly upstreamFault: boolean
  readonly message: string
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'])
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET'])
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
const BAD_RESPONSE_CODES = new Set(['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_EXCEEDED_MAX_SIZE', 'UND_ERR_HEADERS_OVERFLOW'])
/**
 * The proxy's own faults, whoever the request was for: the process or host
 * out of file descriptors, memory, buffers or local ports (issue 7, defect
 * 3: `connect EMFILE` rolled back a healthy canary), a pool the proxy itself
 * closed, a request undici refused to send. Node's own `ERR_*` codes are
 * API misuse, so ours too, except TLS ones (the upstream's certificate or
 * handshake).
 */
const INTERNAL_CODES = new Set([
  'EMFILE',
  'ENFILE',
  'ENOBUFS',
  'ENOMEM',
  'EADDRNOTAVAIL',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
])

const CAUSES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  UND_ERR_SOCKET: 'connection closed',
  UND_ERR_HEADERS_OVERFLOW: 'response headers too large',
  EMFILE: 'too many open files in the proxy process',
  ENFILE: 'too many open files on the proxy host',
  EADDRNOTAVAIL: 'no local address or port available',
}

/** An error's `code`, or its cause's; '' when neither has one. */
export function errorCode(error: unknown): string {
  const e = error as { code?: unknown; cause?: { code?: unknown } } | null
  if (typeof e?.code === 'string') return e.code
  return typeof e?.cause?.code === 'string' ? e.cause.code : ''
}

/**
 * Classifies an undici error by its `code` (never instanceof: the undici that
 * threw may not be ours). Unknown codes are treated as the upstream's fault,
 * because the exchange with it is what failed; an error with no code at all is
 * a throw in the proxy's own code, and so the proxy's fault.
 */
export function classifyFailure(error: unknown, side: SideName, responseTimeoutMs: number): Failure {
  const e = error as { name?: unknown; message?: unknown; [CONNECT_PHASE]?: true } | null
  let code = errorCode(error)
  // undici 7's HTTPParserError arrives without a code (client-h1 looks the
  // llhttp error number up in a name->number map), so a response that is not
  // HTTP at all would pass for a reset; its name is the stable mark left.
  if (code === '' && e?.name === 'HTTPParserError') code = 'HPE_INVALID_RESPONSE'
  const cause = `${CAUSES[code] ?? (typeof e?.message === 'string' ? e.message : 'unknown error')}${code === '' ? '' : ` (${code})`}`
  if (TIMEOUT_CODES.has(code)) {
    return { code: 'CPX_ERR_UPSTREAM_TIMEOUT', upstreamFault: true, message: messageOf('CPX_ERR_UPSTREAM_TIMEOUT', { side, timeout: formatDuration(responseTimeoutMs) }) }
  }
  if (code === '' || INTERNAL_CODES.has(code) || (code.startsWith('ERR_') && !code.startsWith('ERR_TLS_') && !code.startsWith('ERR_SSL_'))) {
    return failure('CPX_ERR_INTERNAL', false, side, cause)
  }
  // Anything else while the connection was being opened (refused, TLS, a reset handshake) is the upstream's.
  if (CONNECT_CODES.has(code) || e?.[CONNECT_PHASE] === true) return failure('CPX_ERR_UPSTREAM_CONNECT', true, side, cause)
  // undici's SocketError says "bad response" for bytes that are no answer to a request (a response while none is running, a 100 that could not be skipped).
  const badSocket = code === 'UND_ERR_SOCKET' && (e?.message === 'bad response' || e?.message === 'bad upgrade')
  if (RESET_CODES.has(code) && !badSocket) return failure('CPX_ERR_UPSTREAM_RESET', true, side, cause)
  if (badSocket || code.startsWith('HPE_') || BAD_RESPONSE_CODES.has(code)) return failure('CPX_ERR_UPSTREAM_BAD_RESPONSE', true, side, cause)
  return failure('CPX_ERR_UPSTREAM_RESET', true, side, cause)
}

function failure(code: ErrorCode, upstreamFault: boolean, side: SideName, cause: string): Failure {
  return { code, upstreamFault, message: messageOf(code, { side, cause }) }
}

/**
 * Writes a generated reply, if the response has not started; otherwise cuts
 * the response short. `close` ends the connection after it: the request body
 * is not all read, and the next bytes on it would not be a request.
 */
export function sendLocalReply(res: ServerResponse, code: ErrorCode, message: string, close = false): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = `canary-proxy: ${message}\n`
  const status = statusOf(code)
  try {
    // An explicit reason phrase: one set earlier on this response (and refused) must not be reused.
    const headers: Record<string, string | number> = {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      [PROXY_ERROR_HEADER]: code,
    }
    if (close) headers.connection = 'close'
    res.writeHead(status, STATUS_CODES[status] ?? 'Error', headers)
    res.end(body)
  } catch {
    res.destroy()
  }
}
