/**
 * Issue 7's red-team corpus as tests: every upstream failure kind x method x
 * body shape, with the fault striking after the request body has fully
 * arrived (defect 1 killed the proxy there). For each cell: the proxy stays
 * up, the client gets the right status and x-canary-proxy-error, exactly one
 * outcome is charged to the side that failed (canary here; stable untouched),
 * and the next request on the same side works.
 */
import { Readable } from 'node:stream'
import t from 'tap'
import { Agent, request } from 'undici'
import { admin, startApp } from '../helpers/app.js'
import { FAULT_KINDS, startFaultyUpstream, type FaultKind } from '../helpers/faulty-upstream.js'
import { authority, RawConnection, sample, scrape } from '../helpers/raw-http.js'
import { startRawServer, startUpstream } from '../helpers/upstreams.js'

type Method = 'GET' | 'HEAD' | 'DELETE' | 'POST' | 'PUT'
type BodyShape = 'none' | 'content-length' | 'chunked' | 'large'

/** The shapes each method is sent with: GET and HEAD without a body, DELETE with or without, POST and PUT with every framing. */
const CELLS: readonly { method: Method; body: BodyShape }[] = [
  { method: 'GET', body: 'none' },
  { method: 'HEAD', body: 'none' },
  { method: 'DELETE', body: 'none' },
  { method: 'DELETE', body: 'content-length' },
  { method: 'POST', body: 'none' },
  { method: 'POST', body: 'content-length' },
  { method: 'POST', body: 'chunked' },
  { method: 'POST', body: 'large' },
  { method: 'PUT', body: 'content-length' },
  { method: 'PUT', body: 'chunked' },
  { method: 'PUT', body: 'large' },
]

const LARGE_CHUNK = Buffer.alloc(64 * 1024, 0x6c)
const LARGE_CHUNKS = 16

function body(shape: BodyShape): { body: string | Readable | null; bytes: number } {
  switch (shape) {
    case 'none':
      return { body: null, bytes: 0 }
    case 'content-length':
      return { body: 'c'.repeat(2048), bytes: 2048 }
    case 'chunked':
      return { body: Readable.from([Buffer.from('first '), Buffer.from('second '), Buffer.from('third')]), bytes: 18 }
    case 'large':
      // 1 MiB streamed as it is produced: undici sends a stream without a length chunked.
      return {
        body: Readable.from(
          (function* () {
            for (let i = 0; i < LARGE_CHUNKS; i++) yield LARGE_CHUNK
          })(),
        ),
        bytes: LARGE_CHUNKS * LARGE_CHUNK.length,
      }
  }
}

type Outcome = '2xx' | '3xx' | 'error'
interface Expected {
  readonly status: number
  readonly code: string | undefined
  readonly outcome: Outcome
  /** The status and headers arrive, then the body is cut short. */
  readonly cut: boolean
}

function expected(kind: FaultKind, method: Method): Expected {
  const error = (status: number, code: string): Expected => ({ status, code, outcome: 'error', cut: false })
  switch (kind) {
    case 'reset-before-headers':
    case 'close-before-headers':
      return error(502, 'CPX_ERR_UPSTREAM_RESET')
    case 'not-http':
    case 'header-too-large':
    case 'too-many-headers':
      return error(502, 'CPX_ERR_UPSTREAM_BAD_RESPONSE')
    case 'headers-timeout':
      return error(504, 'CPX_ERR_UPSTREAM_TIMEOUT')
    case 'reset-mid-body':
      // A HEAD response ends with its head: the reset comes after a complete response.
      return method === 'HEAD' ? { status: 200, code: undefined, outcome: '2xx', cut: false } : { status: 200, code: undefined, outcome: 'error', cut: true }
    case 'continue-then-200':
      return { status: 200, code: undefined, outcome: '2xx', cut: false }
    case '304-with-content-length':
      return { status: 304, code: undefined, outcome: '3xx', cut: false }
  }
}

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'error'] as const

/** Every side's counters of one kind, flattened: `canary.2xx`, `stable.error`, `canary.aborts`, … */
async function counters(adminUrl: string): Promise<Record<string, number>> {
  const text = await scrape(adminUrl)
  const out: Record<string, number> = {}
  for (const side of ['stable', 'canary']) {
    for (const cls of CLASSES) out[`${side}.${cls}`] = sample(text, 'canary_proxy_requests_total', { upstream: side, status_class: cls }) ?? 0
    out[`${side}.aborts`] = sample(text, 'canary_proxy_client_aborts_total', { upstream: side }) ?? 0
  }
  out.internal = sample(text, 'canary_proxy_internal_errors_total') ?? 0
  return out
}

function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [key, value] of Object.entries(after)) if (value !== before[key]) out[key] = value - (before[key] ?? 0)
  return out
}

for (const kind of FAULT_KINDS) {
  t.test(kind, async (t) => {
    const faulty = await startFaultyUpstream(t, kind)
    const stable = await startUpstream(t, 'stable')
    const { proxyUrl, adminUrl } = await startApp(t, {
      upstreams: { stable: stable.url, canary: faulty.url },
      routing: { responseTimeout: '250ms' },
      rollout: { autoStart: false },
    })
    // Everything to the faulty canary, by weight (the override header is not what is tested here).
    t.equal((await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 100 })).status, 200)
    const agent = new Agent()
    t.teardown(() => agent.close())

    /** Sends one cell's request and checks what the client and the upstream got. */
    const send = async (cell: (typeof CELLS)[number]): Promise<void> => {
      const want = expected(kind, cell.method)
      const sent = body(cell.body)
      const name = `${cell.method} with ${cell.body === 'none' ? 'no' : `a ${cell.body}`} body`
      const res = await request(`${proxyUrl}/fault/${cell.method}/${cell.body}`, { method: cell.method, body: sent.body, dispatcher: agent })
      t.equal(res.statusCode, want.status, `${name}: status`)
      t.equal(res.headers['x-canary-proxy-error'], want.code, `${name}: x-canary-proxy-error`)
      if (want.cut) {
        faulty.releaseMidBody()
        await t.rejects(res.body.text(), `${name}: the body ends early, not a short "complete" body`)
      } else {
        const text = await res.body.text()
        if (kind === 'continue-then-200' && cell.method !== 'HEAD') t.equal(text, 'ok', `${name}: the final response's body`)
        faulty.releaseMidBody()
      }
      t.equal(faulty.faulted.findLast((f) => f.url === `/fault/${cell.method}/${cell.body}`)?.bodyBytes, sent.bytes, `${name}: the upstream had the whole body when it failed`)
    }
    const next = async (): Promise<void> => {
      const res = await request(`${proxyUrl}/ok`, { dispatcher: agent })
      t.equal(res.statusCode, 200, 'the next request works')
      t.equal(await res.body.text(), 'ok')
    }

    if (kind === 'headers-timeout') {
      // undici times headers on its coarse timers (about a second whatever the value):
      // the cells run at once, and the outcomes are checked together.
      const before = await counters(adminUrl)
      await Promise.all(CELLS.map(send))
      t.same(delta(before, await counters(adminUrl)), { 'canary.error': CELLS.length }, `${CELLS.length} cells, ${CELLS.length} errors, on canary only`)
      await next()
      return
    }
    for (const cell of CELLS) {
      const want = expected(kind, cell.method)
      const before = await counters(adminUrl)
      await send(cell)
      t.same(delta(before, await counters(adminUrl)), { [`canary.${want.outcome}`]: 1 }, `${cell.method} ${cell.body}: one ${want.outcome} outcome, on canary only`)
      await next()
    }
  })
}

t.test('an upstream that fails while the client is still sending its body: 502, and the connection closes', async (t) => {
  const faulty = await startRawServer(t, (socket) => socket.once('data', () => socket.resetAndDestroy()))
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: faulty.url }, rollout: { autoStart: false } })
  const conn = await RawConnection.open(proxyUrl)
  t.teardown(() => conn.destroy())
  // 1,000 of 100,000 body bytes: the rest would never be a request.
  conn.write(`POST /upload HTTP/1.1\r\nHost: ${authority(proxyUrl)}\r\nContent-Length: 100000\r\n\r\n${'u'.repeat(1000)}`)
  const res = await conn.response()
  t.equal(res.status, 502)
  t.same(res.headers['x-canary-proxy-error'], ['CPX_ERR_UPSTREAM_RESET'])
  t.same(res.headers.connection, ['close'])
  t.ok(await conn.closed(), 'closed after the reply')
  const after = await counters(adminUrl)
  t.same([after['stable.error'], after['stable.aborts']], [1, 0], 'the upstream\'s error, once')
})
