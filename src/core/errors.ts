/** The error code registry: every code the product emits, with its HTTP status and message template. */

/**
 * One entry per code. A code is never reused after removal: retired codes move
 * to RETIRED_CODES. README.md's "Errors" table lists the same codes and a test
 * keeps the two in step. Templates name their parameters as {name}.
 */
export const ERROR_CODES = {
  // Data plane: replies the proxy generates itself carry `x-canary-proxy-error: <code>`.
  CPX_ERR_UPSTREAM_CONNECT: { status: 502, message: 'could not connect to the {side} upstream: {cause}' },
  CPX_ERR_UPSTREAM_RESET: { status: 502, message: 'the {side} upstream closed the connection before responding: {cause}' },
  CPX_ERR_UPSTREAM_BAD_RESPONSE: { status: 502, message: 'the {side} upstream sent an invalid response: {cause}' },
  CPX_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'the {side} upstream did not respond within {timeout}' },
  CPX_ERR_BAD_REQUEST_TARGET: { status: 400, message: 'request target must be origin-form (/path) or absolute-form (http://host/path)' },
  CPX_ERR_BAD_HOST: { status: 400, message: 'the Host header must be present once, as host or host:port (RFC 9112 §3.2)' },
  CPX_ERR_INTERNAL: { status: 500, message: 'internal proxy error: {cause}' },
  CPX_ERR_CLIENT_BODY_TIMEOUT: { status: 408, message: 'the request body stalled: no data from the client for {timeout}' },
  // Never sent (nobody is left to read it): the reason an exchange is aborted when its client went away; NGINX's 499.
  CPX_ERR_CLIENT_ABORT: { status: 499, message: 'the client closed the connection before the response ended' },
  CPX_ERR_BAD_REQUEST: { status: 400, message: 'malformed request: {cause}' },
  CPX_ERR_REQUEST_TIMEOUT: { status: 408, message: 'the request did not arrive in time (listen.headersTimeout, listen.requestTimeout)' },
  CPX_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request header section too large: {detail}' },
  CPX_ERR_EXPECTATION_FAILED: { status: 417, message: 'unsupported Expect; only 100-continue is understood' },
  CPX_ERR_UNSUPPORTED_TRANSFER_CODING: { status: 501, message: 'unsupported Transfer-Encoding; only chunked is understood (RFC 9112 §6.1)' },
  // Admin plane.
  CPX_ERR_ADMIN_BAD_INPUT: { status: 400, message: '{detail}' },
  CPX_ERR_ADMIN_UNAUTHORIZED: { status: 401, message: 'missing bearer token: send Authorization: Bearer <token>' },
  CPX_ERR_ADMIN_FORBIDDEN: { status: 403, message: 'the bearer token is not valid' },
  CPX_ERR_ADMIN_NOT_FOUND: { status: 404, message: 'no such admin endpoint: {method} {url}' },
  CPX_ERR_ADMIN_METHOD_NOT_ALLOWED: { status: 405, message: '{method} is not allowed here; use {use}' },
  CPX_ERR_ADMIN_CONFLICT: { status: 409, message: '{detail}' },
  CPX_ERR_ADMIN_UNAVAILABLE: { status: 503, message: '{detail}' },
  CPX_ERR_ADMIN_CROSS_SITE: { status: 403, message: 'refused a cross-site request to the admin API: {detail}' },
  CPX_ERR_ADMIN_PAYLOAD_TOO_LARGE: { status: 413, message: 'body: larger than {limit}' },
  // Start-up and control plane (not HTTP replies; status is the nearest HTTP meaning).
  CPX_ERR_CONFIG_INVALID: { status: 400, message: 'invalid configuration' },
  CPX_ERR_LISTEN: { status: 500, message: 'cannot listen on {address}: {cause}' },
} as const

/** Codes that existed once and must never be given a new meaning. */
export const RETIRED_CODES: readonly string[] = []

export type ErrorCode = keyof typeof ERROR_CODES

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code)
}

export function statusOf(code: ErrorCode): number {
  return ERROR_CODES[code].status
}

/** Fills a code's template; unknown placeholders are left visible rather than guessed. */
export function messageOf(code: ErrorCode, params: Readonly<Record<string, string>> = {}): string {
  return ERROR_CODES[code].message.replace(/\{(\w+)\}/g, (whole, name: string) => params[name] ?? whole)
}

/** An error that carries a registry code; classify by `code`, never by instanceof. */
export class CanaryProxyError extends Error {
  readonly code: ErrorCode
  readonly status: number

  constructor(code: ErrorCode, params: Readonly<Record<string, string>> = {}) {
    super(messageOf(code, params))
    this.name = 'CanaryProxyError'
    this.code = code
    this.status = statusOf(code)
  }
}
