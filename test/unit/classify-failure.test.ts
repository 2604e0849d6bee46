/** classifyFailure's table: whose fault each failure is (the side's, or the proxy's own), by `code` alone. */
import t from 'tap'
import { classifyFailure } from '../../src/proxy/local-reply.js'
import { CONNECT_PHASE } from '../../src/proxy/upstreams.js'

const err = (code: string | undefined, extra: Record<string | symbol, unknown> = {}): Error => Object.assign(new Error(`failed: ${code ?? 'no code'}`), code === undefined ? {} : { code }, extra)

t.test('each failure goes to the right code, and only the upstream\'s are charged to the side', async (t) => {
  const cases: [string, Error, string, boolean][] = [
    ['connection refused', err('ECONNREFUSED'), 'CPX_ERR_UPSTREAM_CONNECT', true],
    ['connect timeout', err('UND_ERR_CONNECT_TIMEOUT'), 'CPX_ERR_UPSTREAM_CONNECT', true],
    ['a TLS failure while connecting', err('ERR_TLS_CERT_ALTNAME_INVALID', { [CONNECT_PHASE]: true }), 'CPX_ERR_UPSTREAM_CONNECT', true],
    ['an expired certificate while connecting', err('CERT_HAS_EXPIRED', { [CONNECT_PHASE]: true }), 'CPX_ERR_UPSTREAM_CONNECT', true],
    ['a reset', err('ECONNRESET'), 'CPX_ERR_UPSTREAM_RESET', true],
    ['other side closed', err('UND_ERR_SOCKET'), 'CPX_ERR_UPSTREAM_RESET', true],
    ['undici: bytes that answer no request', Object.assign(new Error('bad response'), { code: 'UND_ERR_SOCKET' }), 'CPX_ERR_UPSTREAM_BAD_RESPONSE', true],
    ['not HTTP', Object.assign(new Error('Expected HTTP/'), { name: 'HTTPParserError' }), 'CPX_ERR_UPSTREAM_BAD_RESPONSE', true],
    ['response headers over the limit', err('UND_ERR_HEADERS_OVERFLOW'), 'CPX_ERR_UPSTREAM_BAD_RESPONSE', true],
    ['no headers in time', err('UND_ERR_HEADERS_TIMEOUT'), 'CPX_ERR_UPSTREAM_TIMEOUT', true],
    ['an unknown errno', err('EWHATEVER'), 'CPX_ERR_UPSTREAM_RESET', true],
    ['the proxy out of descriptors', err('EMFILE', { [CONNECT_PHASE]: true }), 'CPX_ERR_INTERNAL', false],
    ['the host out of descriptors', err('ENFILE', { [CONNECT_PHASE]: true }), 'CPX_ERR_INTERNAL', false],
    ['no local port left', err('EADDRNOTAVAIL', { [CONNECT_PHASE]: true }), 'CPX_ERR_INTERNAL', false],
    ['out of memory', err('ENOMEM'), 'CPX_ERR_INTERNAL', false],
    ['a pool the proxy closed', err('UND_ERR_CLOSED'), 'CPX_ERR_INTERNAL', false],
    ['a request undici refused', err('UND_ERR_INVALID_ARG'), 'CPX_ERR_INTERNAL', false],
    ["Node's API misuse", err('ERR_INVALID_ARG_TYPE'), 'CPX_ERR_INTERNAL', false],
    ['a throw in our own code', new TypeError("Cannot read properties of null (reading 'destroyed')"), 'CPX_ERR_INTERNAL', false],
  ]
  for (const [what, error, code, upstreamFault] of cases) {
    const failure = classifyFailure(error, 'canary', 30_000)
    t.same([failure.code, failure.upstreamFault], [code, upstreamFault], what)
  }
})

t.test('messages name the side and the cause', async (t) => {
  t.equal(classifyFailure(err('ECONNRESET'), 'canary', 30_000).message, 'the canary upstream closed the connection before responding: connection reset (ECONNRESET)')
  t.equal(classifyFailure(err('EMFILE'), 'stable', 30_000).message, 'internal proxy error: too many open files in the proxy process (EMFILE)')
  t.equal(classifyFailure(err('UND_ERR_HEADERS_TIMEOUT'), 'stable', 2_500).message, 'the stable upstream did not respond within 2.5s')
})
