/**
 * Responses without a body of their own, byte for byte from a raw upstream:
 * an unsolicited 100 Continue is skipped (RFC 9110 §15.2: a client MUST
 * parse and may ignore an unexpected 1xx; the proxy strips Expect), a 204 or
 * 304 with Content-Length is a complete response (RFC 9112 §6.3, RFC 9110
 * §8.6), and none of it is charged to the side as an error (issue 7, defects 6 and 7).
 */
import type { Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startApp } from '../helpers/app.js'
import { authority, RawConnection, sample, scrape } from '../helpers/raw-http.js'
import { startRawServer } from '../helpers/upstreams.js'
import { skipContinue } from '../../src/proxy/upstreams.js'

/**
 * A raw upstream that reads each request on a connection (head, then a
 * Content-Length body) and answers it with `answer(socket)`.
 */
async function rawUpstream(t: Test, answer: (socket: Socket) => void | Promise<void>) {
  return startRawServer(t, (socket) => {
    let buffer = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n')
        if (end === -1) return
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(buffer.subarray(0, end).toString('latin1'))?.[1] ?? 0)
        if (buffer.length < end + 4 + length) return
        buffer = buffer.subarray(end + 4 + length)
        void answer(socket)
      }
    })
  })
}

async function proxyTo(t: Test, url: string) {
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: url }, rollout: { autoStart: false } })
  const outcomes = async (): Promise<Record<string, number>> => {
    const text = await scrape(adminUrl)
    const out: Record<string, number> = {}
    for (const cls of ['1xx', '2xx', '3xx', '4xx', '5xx', 'error']) {
      const value = sample(text, 'canary_proxy_requests_total', { upstream: 'stable', status_class: cls }) ?? 0
      if (value !== 0) out[cls] = value
    }
    return out
  }
  return { proxyUrl, outcomes }
}

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'

t.test('an unsolicited 100 Continue is skipped, whatever the method and however it arrives', async (t) => {
  const cases: { name: string; answer: (s: Socket) => void | Promise<void> }[] = [
    { name: 'in the same write as the 200', answer: (s) => void s.write(`HTTP/1.1 100 Continue\r\n\r\n${OK}`) },
    {
      name: 'in a write of its own, the 200 later',
      answer: async (s) => {
        s.write('HTTP/1.1 100 Continue\r\n\r\n')
        await sleep(20)
        s.write(OK)
      },
    },
    { name: 'twice, then the 200', answer: (s) => void s.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n${OK}`) },
    { name: 'with headers and no reason phrase', answer: (s) => void s.write(`HTTP/1.1 100\r\nx-interim: yes\r\n\r\n${OK}`) },
    { name: 'after a 103 Early Hints', answer: (s) => void s.write(`HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n${OK}`) },
  ]
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const raw = await rawUpstream(t, c.answer)
      const { proxyUrl, outcomes } = await proxyTo(t, raw.url)
      for (const method of ['GET', 'POST'] as const) {
        const res = await request(`${proxyUrl}/x`, { method, body: method === 'POST' ? 'payload' : null })
        t.equal(res.statusCode, 200, `${method}: the final status`)
        t.equal(res.headers['x-canary-proxy-error'], undefined)
        t.equal(res.headers['x-interim'], undefined, `${method}: the interim response's headers stay with it`)
        t.equal(await res.body.text(), 'ok', `${method}: the final body`)
      }
      t.same(await outcomes(), { '2xx': 2 }, 'two answered requests, no error')
    })
  }
})

t.test('each request on a kept-alive connection may get its own 100', async (t) => {
  const raw = await rawUpstream(t, (s) => void s.write(`HTTP/1.1 100 Continue\r\n\r\n${OK}`))
  const { proxyUrl, outcomes } = await proxyTo(t, raw.url)
  for (let i = 0; i < 3; i++) {
    const res = await request(`${proxyUrl}/x${i}`)
    t.equal(res.statusCode, 200)
    t.equal(await res.body.text(), 'ok')
  }
  t.equal(raw.connections, 1, 'one upstream connection carried all three')
  t.same(await outcomes(), { '2xx': 3 })
})

t.test('a body that holds a 100 status line at a read boundary is passed on untouched', async (t) => {
  const tail = 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n'
  const raw = await rawUpstream(t, async (s) => {
    s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${5 + tail.length}\r\n\r\nhead:`)
    // A separate write, read apart, so the proxy sees a read that starts with it.
    await sleep(30)
    s.write(tail)
  })
  const { proxyUrl, outcomes } = await proxyTo(t, raw.url)
  const res = await request(`${proxyUrl}/x`)
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), `head:${tail}`)
  t.same(await outcomes(), { '2xx': 1 })
})

t.test('a 304 or 204 with Content-Length is a complete response, and the connections stay usable', async (t) => {
  for (const [status, head] of [
    [304, 'HTTP/1.1 304 Not Modified\r\ncontent-length: 1234\r\netag: "v1"\r\n\r\n'],
    [204, 'HTTP/1.1 204 No Content\r\ncontent-length: 5\r\nx-kind: empty\r\n\r\n'],
  ] as const) {
    await t.test(String(status), async (t) => {
      let requests = 0
      const raw = await rawUpstream(t, (s) => void s.write(requests++ === 0 ? head : OK))
      const { proxyUrl, outcomes } = await proxyTo(t, raw.url)
      // One client connection for both requests: the client must not wait for 1234 body bytes.
      const conn = await RawConnection.open(proxyUrl)
      t.teardown(() => conn.destroy())
      conn.write(`GET /a HTTP/1.1\r\nHost: ${authority(proxyUrl)}\r\nIf-None-Match: "v1"\r\n\r\n`)
      const first = await conn.response()
      t.equal(first.status, status)
      t.equal(first.headers['x-canary-proxy-error'], undefined)
      t.equal(first.headers['content-length'], undefined, 'no Content-Length for a body that is not there (fetch() refuses one)')
      if (status === 304) t.same(first.headers.etag, ['"v1"'])
      else t.same(first.headers['x-kind'], ['empty'])
      t.equal(first.body.length, 0)
      conn.write(`GET /b HTTP/1.1\r\nHost: ${authority(proxyUrl)}\r\n\r\n`)
      const second = await conn.response()
      t.equal(second.status, 200, 'the next request on the same client connection')
      t.equal(second.body.toString(), 'ok')
      t.same(await outcomes(), status === 304 ? { '2xx': 1, '3xx': 1 } : { '2xx': 2 })
    })
  }
})

t.test('skipContinue: the cases a single read can hold', async (t) => {
  const rewrite = (text: string): [boolean, string] => {
    const chunk = Buffer.from(text, 'latin1')
    const awaiting = skipContinue(chunk)
    return [awaiting, chunk.toString('latin1')]
  }
  t.same(rewrite(`HTTP/1.1 100 Continue\r\n\r\n${OK}`), [false, `HTTP/1.1 199 Continue\r\n\r\n${OK}`])
  t.same(rewrite('HTTP/1.1 100 Continue\r\n\r\n'), [true, 'HTTP/1.1 199 Continue\r\n\r\n'], 'the final head is still to come')
  t.same(rewrite('HTTP/1.1 100 Continue\r\nx-a: b'), [false, 'HTTP/1.1 199 Continue\r\nx-a: b'], 'an interim head going on in the next read')
  t.same(rewrite(OK), [false, OK], 'a final response is left alone')
  t.same(rewrite(`HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n`), [true, `HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 199 Continue\r\n\r\n`], 'past other interim responses')
  t.same(rewrite('HTTP/1.1 101 Switching Protocols\r\n\r\n'), [false, 'HTTP/1.1 101 Switching Protocols\r\n\r\n'], 'an upgrade is not interim')
  t.same(rewrite('HTTP/1.1 1000 x\r\n\r\n'), [false, 'HTTP/1.1 1000 x\r\n\r\n'], 'not a 100')
  t.same(rewrite('HTTP/1.1 10'), [false, 'HTTP/1.1 10'], 'too short to tell: left to undici')
})
