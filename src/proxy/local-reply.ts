/** The one mapping from a failed exchange to the reply the proxy generates itself (status, x-canary-proxy-error, short body). */
import { STATUS_CODES, type ServerResponse } from 'node:http'
import { formatDuration } from '../core/duration.js'
import { messageOf, statusOf, type ErrorCode } from '../core/errors.js'
import type { SideName } from '../routing/snapshot.js'

export const PROXY_ERROR_HEADER = 'x-canary-proxy-error'

export interface Failure {
  readonly code: ErrorCode
  /** True when the failure is the upstream's (counted as status_class="error" for that side). */
  readonly upstreamFault: boolean
  readonly message: string
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT'])
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED'])
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
const INTERNAL_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_HTTP_TOKEN', 'ERR_INVALID_CHAR'])

const CAUSES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  UND_ERR_SOCKET: 'connection closed',
}

/**
 * Classifies an undici error by its `code` (never instanceof: the undici that
 * threw may not be ours). Unknown codes are treated as the upstream's fault,
 * because the exchange with it is what failed.
 */
export function classifyFailure(error: unknown, side: SideName, responseTimeoutMs: number): Failure {
  const e = error as { code?: unknown; name?: unknown; message?: unknown; cause?: { code?: unknown } }
  let code = typeof e.code === 'string' ? e.code : ''
  if (code === '' && typeof e.cause?.code === 'string') code = e.cause.code
  // undici 7's HTTPParserError arrives without a code (client-h1 looks the
  // llhttp error number up in a name->number map), so a response that is not
  // HTTP at all would pass for a reset; its name is the stable mark left.
  if (code === '' && e.name === 'HTTPParserError') code = 'HPE_INVALID_RESPONSE'
  const cause = `${CAUSES[code] ?? (typeof e.message === 'string' ? e.message : 'unknown error')}${code === '' ? '' : ` (${code})`}`
  if (TIMEOUT_CODES.has(code)) {
    return { code: 'CPX_ERR_UPSTREAM_TIMEOUT', upstreamFault: true, message: messageOf('CPX_ERR_UPSTREAM_TIMEOUT', { side, timeout: formatDuration(responseTimeoutMs) }) }
  }
  if (CONNECT_CODES.has(code)) return failure('CPX_ERR_UPSTREAM_CONNECT', true, side, cause)
  if (RESET_CODES.has(code)) return failure('CPX_ERR_UPSTREAM_RESET', true, side, cause)
  if (code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
    return failure('CPX_ERR_UPSTREAM_BAD_RESPONSE', true, side, cause)
  }
  if (INTERNAL_CODES.has(code)) return failure('CPX_ERR_INTERNAL', false, side, cause)
  return failure('CPX_ERR_UPSTREAM_RESET', true, side, cause)
}

function failure(code: ErrorCode, upstreamFault: boolean, side: SideName, cause: string): Failure {
  return { code, upstreamFault, message: messageOf(code, { side, cause }) }
}

/** Writes a generated reply, if the response has not started; otherwise cuts the response short. */
export function sendLocalReply(res: ServerResponse, code: ErrorCode, message: string): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const body = `canary-proxy: ${message}\n`
  const status = statusOf(code)
  try {
    // An explicit reason phrase: one set earlier on this response (and refused) must not be reused.
    res.writeHead(status, STATUS_CODES[status] ?? 'Error', {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      [PROXY_ERROR_HEADER]: code,
    })
    res.end(body)
  } catch {
    res.destroy()
  }
}
