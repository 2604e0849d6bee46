/** Headers at the proxy boundary: pass-through (query, repeats, case), X-Forwarded-*, hop-by-hop removal both ways, and Expect: 100-continue. */
import type { Socket } from 'node:net'
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { authority, RawConnection, rawRequest, sample, scrape } from '../helpers/raw-http.js'
import { startRawServer, startUpstream } from '../helpers/upstreams.js'

interface Echo {
  upstream: string
  method: string
  url: string
  headers: Record<string, string | undefined>
  bodyBytes: number
}

const echo = (body: Buffer): Echo => JSON.parse(body.toString('utf8')) as Echo

t.test('query string, repeated headers and header-name case pass through', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { proxyUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false } })

  const query = '/p/a%20b/c?a=1&a=2&b=%2F%3F%26&c&d=&e=%E2%9C%93'
  const res = await rawRequest(
    proxyUrl,
    `GET ${query} HTTP/1.1\r\nHost: app.example\r\nX-Multi: one\r\nX-Multi: two\r\nCookie: a=1\r\nCookie: b=2\r\nX-MiXeD-CaSe: Value Kept\r\nACCEPT: text/plain\r\nConnection: close\r\n\r\n`,
  )
  t.equal(res.status, 200)
  const body = echo(res.body)
  t.equal(body.upstream, 'stable')
  t.equal(body.url, query, 'path and query byte for byte, repeated keys and empty values included')
  t.equal(body.headers['x-multi'], 'one, two', 'a repeated header keeps every value, in order')
  t.equal(body.headers.cookie, 'a=1; b=2', 'repeated Cookie headers keep every cookie')
  t.equal(body.headers['x-mixed-case'], 'Value Kept', 'header names are case-insensitive; values are untouched')
  t.equal(body.headers.accept, 'text/plain')

  // The override header is matched whatever its case on the wire.
  const upper = await rawRequest(proxyUrl, `GET / HTTP/1.1\r\nHost: app.example\r\nX-CANARY: always\r\nConnection: close\r\n\r\n`)
  t.equal(echo(upper.body).upstream, 'canary', 'X-CANARY: always reaches canary')
})

t.test('repeated response headers reach the client as separate lines', async (t) => {
  const upstream = await startRawServer(t, (socket: Socket) => {
    socket.on('data', () =>
      socket.write(
        'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2; Path=/\r\nX-Repeat: 1\r\nX-Repeat: 2\r\nX-Case: Kept\r\n\r\nok',
      ),
    )
  })
  const { proxyUrl } = await startApp(t, { upstreams: { stable: upstream.url } })
  const res = await rawRequest(proxyUrl, `GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
  t.equal(res.status, 200)
  t.same(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/'], 'two Set-Cookie lines, never joined')
  t.same(res.headers['x-repeat']?.join(', '), '1, 2', 'both values of a repeated header')
  t.same(res.headers['x-case'], ['Kept'])
  t.equal(res.body.toString(), 'ok')
})

t.test('X-Forwarded-For is appended; X-Forwarded-Proto/Host are set from this hop unless the peer is trusted', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { proxyUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false } })

  const plain = echo((await rawRequest(proxyUrl, `GET / HTTP/1.1\r\nHost: app.example:8443\r\nConnection: close\r\n\r\n`)).body)
  t.equal(plain.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(plain.headers['x-forwarded-proto'], 'http')
  t.equal(plain.headers['x-forwarded-host'], 'app.example:8443')
  t.equal(plain.headers.host, 'app.example:8443', 'Host is preserved by default')

  const chained = echo(
    (
      await rawRequest(
        proxyUrl,
        'GET / HTTP/1.1\r\nHost: app.example\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\nConnection: close\r\n\r\n',
      )
    ).body,
  )
  t.equal(chained.headers['x-forwarded-for'], '203.0.113.9, 198.51.100.7, 127.0.0.1', 'the peer is appended to every earlier hop')
  t.equal(chained.headers['x-forwarded-proto'], 'http', 'an untrusted client cannot claim https')
  t.equal(chained.headers['x-forwarded-host'], 'app.example', 'nor another host')
  const spoofed = echo((await rawRequest(proxyUrl, 'GET / HTTP/1.1\r\nHost: app.example\r\nForwarded: for=1.2.3.4;proto=https\r\nConnection: close\r\n\r\n')).body)
  t.equal(spoofed.headers.forwarded, undefined, 'Forwarded from an untrusted peer is dropped')

  // Behind a trusted load balancer (routing.trustForwarded), its values are passed on as they are.
  const trusted = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false }, routing: { trustForwarded: true } })
  const behindLb = echo(
    (await rawRequest(trusted.proxyUrl, 'GET / HTTP/1.1\r\nHost: app.internal\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\nForwarded: for=203.0.113.9;proto=https\r\nConnection: close\r\n\r\n')).body,
  )
  t.equal(behindLb.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1')
  t.equal(behindLb.headers['x-forwarded-proto'], 'https')
  t.equal(behindLb.headers['x-forwarded-host'], 'public.example')
  t.equal(behindLb.headers.forwarded, 'for=203.0.113.9;proto=https')
  const noneFromLb = echo((await rawRequest(trusted.proxyUrl, 'GET / HTTP/1.1\r\nHost: app.internal\r\nConnection: close\r\n\r\n')).body)
  t.same([noneFromLb.headers['x-forwarded-proto'], noneFromLb.headers['x-forwarded-host']], ['http', 'app.internal'], 'missing ones are still set')

  // A client cannot make the proxy drop its own entries by nominating them in Connection.
  const nominated = echo(
    (await rawRequest(proxyUrl, 'GET / HTTP/1.1\r\nHost: app.example\r\nConnection: close, X-Forwarded-For, X-Forwarded-Host, Host\r\nX-Forwarded-For: 10.9.9.9\r\n\r\n')).body,
  )
  t.match(nominated.headers['x-forwarded-for'], /(^|, )127\.0\.0\.1$/, 'the proxy entry is still last')
  t.equal(nominated.headers['x-forwarded-host'], 'app.example')
  t.equal(nominated.headers.host, 'app.example')

  // Host never chooses the upstream.
  const byHost = echo((await rawRequest(proxyUrl, `GET / HTTP/1.1\r\nHost: ${authority(canary.url)}\r\nConnection: close\r\n\r\n`)).body)
  t.equal(byHost.upstream, 'stable', "a Host naming the canary's address still goes where the weight says")
  t.equal(canary.received.length, 0)
})

t.test('preserveHost: false sends the upstream its own host', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { proxyUrl } = await startApp(t, { upstreams: { stable: stable.url }, routing: { preserveHost: false } })
  const body = echo((await rawRequest(proxyUrl, 'GET / HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n')).body)
  t.equal(body.headers.host, authority(stable.url))
  t.equal(body.headers['x-forwarded-host'], 'app.example', 'the client Host is kept in X-Forwarded-Host')
})

t.test('hop-by-hop request headers never reach the upstream, and the client still gets its 200', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: stable.url } })
  // (The upstream may see `connection: keep-alive`: that is the proxy's own connection to it.)
  const hopByHop = ['x-foo', 'x-bar', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection', 'expect', 'transfer_encoding']

  await t.test('with a Content-Length body', async (t) => {
    const res = await rawRequest(
      proxyUrl,
      'POST /hop HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive, X-Foo, x-bar\r\nX-Foo: 1\r\nX-Bar: 2\r\nKeep-Alive: timeout=5\r\nTE: gzip\r\nTrailer: X-Checksum\r\nUpgrade: foo/1\r\n' +
        'Proxy-Authorization: Basic Zm9vOmJhcg==\r\nProxy-Connection: keep-alive\r\nTransfer_Encoding: chunked\r\nX-Kept: yes\r\nContent-Length: 5\r\n\r\nhello',
    )
    t.equal(res.status, 200, `the upstream's 200 (got ${res.status}: ${res.body.toString()})`)
    const body = echo(res.body)
    for (const name of hopByHop) t.equal(body.headers[name], undefined, `${name} is not forwarded`)
    t.ok(body.headers.connection === undefined || body.headers.connection === 'keep-alive', `connection is the proxy's own (${body.headers.connection})`)
    t.equal(body.headers['x-kept'], 'yes', 'an ordinary header is')
    t.equal(body.bodyBytes, 5)
  })

  await t.test('with a chunked body and TE: trailers', async (t) => {
    const res = await rawRequest(
      proxyUrl,
      'POST /hop HTTP/1.1\r\nHost: app.example\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\nConnection: TE, close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    )
    t.equal(res.status, 200, `the upstream's 200 (got ${res.status}: ${res.body.toString()})`)
    const body = echo(res.body)
    t.equal(body.bodyBytes, 11, 'the whole de-chunked body arrives')
    t.equal(body.headers.te, undefined)
    t.equal(body.headers.connection === undefined || body.headers.connection === 'keep-alive', true, `connection is the proxy's own (${body.headers.connection})`)
    // The proxy re-frames the stream itself; only its own framing may appear.
    t.ok(body.headers['transfer-encoding'] === undefined || body.headers['transfer-encoding'] === 'chunked')
  })

  await t.test('Upgrade: h2c (what curl --http2 sends to http://) is ignored: an ordinary request, body and all', async (t) => {
    const conn = await RawConnection.open(proxyUrl)
    conn.write('GET /h2c HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n')
    const get = await conn.response()
    t.equal(get.status, 200, `the upstream's ordinary 200 (got ${get.status}: ${get.body.toString()})`)
    const getBody = echo(get.body)
    t.equal(getBody.url, '/h2c')
    t.equal(getBody.headers.upgrade, undefined)
    t.equal(getBody.headers['http2-settings'], undefined)
    // The connection stays a keep-alive HTTP/1.1 connection.
    conn.write('POST /h2c-post HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello')
    const post = await conn.response()
    t.equal(post.status, 200)
    const postBody = echo(post.body)
    t.equal(postBody.url, '/h2c-post')
    t.equal(postBody.bodyBytes, 5, 'the body is not lost')
    conn.write('GET /after HTTP/1.1\r\nHost: app.example\r\n\r\n')
    const after = await conn.response()
    t.equal(echo(after.body).url, '/after', 'a plain request on the same connection afterwards')
    conn.destroy()
  })

  await t.test('an Upgrade request that carries a body is not tunnelled: the body reaches the upstream', async (t) => {
    const res = await rawRequest(
      proxyUrl,
      'POST /ws-with-body HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    )
    t.equal(res.status, 200, `the upstream's 200 (got ${res.status}: ${res.body.toString()})`)
    const body = echo(res.body)
    t.equal(body.bodyBytes, 11)
    t.equal(body.headers.upgrade, undefined)
  })

  const metrics = await scrape(adminUrl)
  t.equal(sample(metrics, 'canary_proxy_internal_errors_total'), 0, 'no proxy-internal error')
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'stable', status_class: 'error' }), 0)
})

t.test('hop-by-hop response headers never reach the client', async (t) => {
  const upstream = await startRawServer(t, (socket: Socket) => {
    socket.on('data', () =>
      socket.write(
        'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=30, max=7\r\nProxy-Connection: keep-alive\r\nUpgrade: foo/1\r\nTrailer: X-T\r\nX-Kept: yes\r\n\r\nok',
      ),
    )
  })
  const { proxyUrl } = await startApp(t, { upstreams: { stable: upstream.url } })
  const conn = await RawConnection.open(proxyUrl)
  conn.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  const res = await conn.response()
  conn.destroy()
  t.equal(res.status, 200)
  t.equal(res.headers['x-secret'], undefined, 'a header the upstream nominated in Connection')
  t.equal(res.headers['proxy-connection'], undefined)
  t.equal(res.headers.upgrade, undefined)
  t.equal(res.headers.trailer, undefined)
  t.notMatch(res.headers['keep-alive']?.join() ?? '', /max=7/, "the upstream's Keep-Alive is not relayed (the proxy may send its own)")
  t.same(res.headers['x-kept'], ['yes'])
  t.equal(res.body.toString(), 'ok')
})

t.test('Expect: 100-continue upload (curl-style) gets the upstream 200', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: stable.url } })
  const conn = await RawConnection.open(proxyUrl)
  conn.write('POST /upload HTTP/1.1\r\nHost: app.example\r\nUser-Agent: curl/8.5.0\r\nContent-Type: application/octet-stream\r\nContent-Length: 2048\r\nExpect: 100-continue\r\n\r\n')
  const interim = await conn.response()
  t.equal(interim.status, 100, `first comes ${interim.statusLine}`)
  conn.write(Buffer.alloc(2048, 0x62))
  const final = await conn.response()
  conn.destroy()
  t.equal(final.status, 200, `then the upstream's 200 (got ${final.status}: ${final.body.toString()})`)
  t.equal(final.headers['x-canary-proxy-error'], undefined)
  const body = echo(final.body)
  t.equal(body.bodyBytes, 2048, 'the whole body arrived')
  t.equal(body.headers.expect, undefined, 'Expect is not forwarded')
  t.equal(stable.received.length, 1)
  const metrics = await scrape(adminUrl)
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'stable', status_class: '2xx' }), 1)
  t.equal(sample(metrics, 'canary_proxy_internal_errors_total'), 0)
})
