/**
 * Request smuggling: the framing attacks of the research corpus, sent as raw
 * bytes. Each must be refused (400, or 431 for an oversized header block) with
 * the connection closed, reach neither upstream, and count as no side's error;
 * a well-formed request afterwards still goes through.
 */
import t from 'tap'
import { request } from 'undici'
import { startApp } from '../helpers/app.js'
import { RawConnection, sample, scrape } from '../helpers/raw-http.js'
import { startUpstream } from '../helpers/upstreams.js'

/** The request line and Host every case starts with; each case adds the headers and bytes that make it an attack. */
const HEAD = 'POST /submit HTTP/1.1\r\nHost: app.example\r\n'
/** A second request hidden in the body: if it ever reaches an upstream, the framing was misread. */
const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: app.example\r\n\r\n'

const cases: readonly { readonly name: string; readonly raw: string; readonly status?: number }[] = [
  { name: 'CL.TE: Content-Length then Transfer-Encoding: chunked', raw: `${HEAD}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}` },
  { name: 'TE.CL: Transfer-Encoding: chunked then Content-Length', raw: `${HEAD}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n${SMUGGLED}` },
  { name: 'two Content-Length headers with different values', raw: `${HEAD}Content-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}` },
  { name: 'two Content-Length headers with equal values', raw: `${HEAD}Content-Length: 2\r\nContent-Length: 2\r\n\r\nab` },
  { name: 'Content-Length as a list', raw: `${HEAD}Content-Length: 2, 2\r\n\r\nab` },
  { name: 'Content-Length with a sign', raw: `${HEAD}Content-Length: +2\r\n\r\nab` },
  { name: 'space before the colon of Content-Length', raw: `${HEAD}Content-Length : 2\r\n\r\nab` },
  { name: 'Transfer-Encoding with chunked not last', raw: `${HEAD}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n` },
  { name: 'Transfer-Encoding: xchunked', raw: `${HEAD}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n` },
  { name: 'two Transfer-Encoding lines', raw: `${HEAD}Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n` },
  { name: 'Transfer-Encoding folded onto the next line (obs-fold)', raw: `${HEAD}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n` },
  { name: 'obs-fold in any header', raw: `${HEAD}X-Foo: a\r\n b\r\nContent-Length: 0\r\n\r\n` },
  { name: 'chunk size that is not hex', raw: `${HEAD}Transfer-Encoding: chunked\r\n\r\nQ\r\nab\r\n0\r\n\r\n` },
  { name: 'chunk size that overflows', raw: `${HEAD}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nab\r\n0\r\n\r\n` },
  { name: 'chunk extension ended by a bare LF', raw: `${HEAD}Transfer-Encoding: chunked\r\n\r\n2;\nxx\r\n0\r\n\r\n` },
  { name: 'header lines ended by a bare LF', raw: 'GET /a HTTP/1.1\nHost: app.example\n\n' },
  { name: 'a NUL byte in a header value', raw: `${HEAD}X-Foo: a\u0000b\r\nContent-Length: 0\r\n\r\n` },
  { name: 'a lower-case method', raw: 'get /a HTTP/1.1\r\nHost: app.example\r\n\r\n' },
  { name: 'HTTP/1.2', raw: 'GET /a HTTP/1.2\r\nHost: app.example\r\n\r\n' },
  { name: 'a space in the target', raw: 'GET /a b HTTP/1.1\r\nHost: app.example\r\n\r\n' },
  { name: 'HTTP/1.1 without Host', raw: 'GET /a HTTP/1.1\r\n\r\n' },
  { name: 'a header block over 16 KiB', raw: `GET /a HTTP/1.1\r\nHost: app.example\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`, status: 431 },
]

t.test('smuggling and malformed framing: refused, connection closed, no upstream reached, no side charged', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false } })
  const errors = async (): Promise<number[]> => {
    const text = await scrape(adminUrl)
    return ['stable', 'canary'].map((upstream) => sample(text, 'canary_proxy_requests_total', { upstream, status_class: 'error' }) ?? 0)
  }
  const errorsBefore = await errors()

  for (const c of cases) {
    const conn = await RawConnection.open(proxyUrl)
    try {
      conn.write(c.raw)
      const res = await conn.response(5_000)
      t.equal(res.status, c.status ?? 400, `${c.name}: ${c.status ?? 400}`)
      t.ok(await conn.closed(5_000), `${c.name}: the connection is closed, so nothing after it is read as a request`)
    } finally {
      conn.destroy()
    }
  }

  t.same([stable.received.length, canary.received.length], [0, 0], 'no case reached an upstream, the smuggled request included')
  t.same(await errors(), errorsBefore, 'refused requests are no side’s upstream error')
  const ok = await request(`${proxyUrl}/after`)
  await ok.body.dump()
  t.equal(ok.statusCode, 200, 'a well-formed request afterwards goes through')
  t.same(stable.received.map((r) => r.url), ['/after'])
})
