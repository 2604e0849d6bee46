/** The request target and Host never choose the destination: absolute-form is reduced to path and query, garbage targets, CONNECT and bad Hosts get 400, and odd paths go to the configured upstream as they are. */
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startApp } from '../helpers/app.js'
import { authority, rawRequest, sample, scrape } from '../helpers/raw-http.js'
import { startUpstream } from '../helpers/upstreams.js'

interface Echo {
  upstream: string
  url: string
  headers: Record<string, string | undefined>
}

t.test('request targets', async (t) => {
  const stable = await startUpstream(t, 'stable')
  // A live server the absolute-form targets name: it must never be reached.
  const decoy = await startUpstream(t, 'decoy')
  const d = authority(decoy.url)
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: stable.url } })

  const forwarded = async (t: Test, target: string, expectedUrl: string, host = 'app.example'): Promise<void> => {
    const before = stable.received.length
    const res = await rawRequest(proxyUrl, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
    t.equal(res.status, 200, `${target}: the configured upstream's 200`)
    const body = JSON.parse(res.body.toString()) as Echo
    t.equal(body.upstream, 'stable')
    t.equal(body.url, expectedUrl, `${target} arrives as ${expectedUrl}`)
    t.equal(stable.received.length, before + 1)
  }

  await t.test('absolute-form is sent to the configured upstream with its path and query only', async (t) => {
    await forwarded(t, `http://${d}/x?y=1`, '/x?y=1', d)
    await forwarded(t, `HTTP://${d}/x/y%20z?a=1&b`, '/x/y%20z?a=1&b', d)
    await forwarded(t, `http://${d}?q=1`, '/?q=1', d)
    await forwarded(t, `http://user:secret@${d}/private`, '/private', d)
    await forwarded(t, `https://${d}/tls`, '/tls', d)
    await forwarded(t, 'http://other.host/x?y=1', '/x?y=1', 'other.host')
  })

  await t.test('paths that look like hosts or climb are forwarded as paths, to the configured upstream', async (t) => {
    await forwarded(t, `//${d}/x`, `//${d}/x`)
    await forwarded(t, '//evil/x', '//evil/x')
    await forwarded(t, '/a/%2e%2e/x', '/a/%2e%2e/x')
    await forwarded(t, '/a/../../x', '/a/../../x')
  })

  await t.test('targets that are neither origin-form nor http(s) absolute-form get 400 and reach no upstream', async (t) => {
    const before = stable.received.length
    for (const line of ['GET * HTTP/1.1', 'OPTIONS * HTTP/1.1', `GET ftp://${d}/x HTTP/1.1`, `CONNECT ${d} HTTP/1.1`]) {
      const res = await rawRequest(proxyUrl, `${line}\r\nHost: ${d}\r\n\r\n`)
      t.equal(res.status, 400, `${line}: 400`)
      t.same(res.headers['x-canary-proxy-error'], ['CPX_ERR_BAD_REQUEST_TARGET'], `${line}: marked as the proxy's reply`)
      t.match(res.body.toString(), /request target/)
    }
    // Node's own parser refuses some before the proxy sees them: still 400, still nothing forwarded.
    const garbage = await rawRequest(proxyUrl, 'GET foo HTTP/1.1\r\nHost: x\r\n\r\n')
    t.equal(garbage.status, 400, 'GET foo: 400')
    t.equal(stable.received.length, before, 'the upstream received none of them')
  })

  await t.test('Host: one valid value or 400; it never chooses the upstream', async (t) => {
    const before = stable.received.length
    for (const [what, hostLines] of [
      ['two Host lines', 'Host: a.example\r\nHost: b.example\r\n'],
      ['an empty Host', 'Host:\r\n'],
      ['Host with a path', 'Host: a.example/b\r\n'],
      ['Host with userinfo', 'Host: user@a.example\r\n'],
      ['Host with a space', 'Host: a.example b\r\n'],
    ] as const) {
      const res = await rawRequest(proxyUrl, `GET /h HTTP/1.1\r\n${hostLines}\r\n`)
      t.equal(res.status, 400, `${what}: 400`)
      t.same(res.headers['x-canary-proxy-error'], ['CPX_ERR_BAD_HOST'], what)
    }
    t.equal(stable.received.length, before, 'none of them reached the upstream')
    await forwarded(t, '/h', '/h', 'app.example:8080')
    await forwarded(t, '/h', '/h', '[::1]:8080')
    await forwarded(t, '/h', '/h', '10.0.0.1')
    await forwarded(t, '/h', '/h', 'under_score.example')
    await forwarded(t, '/h', '/h', d)
    // HTTP/1.0 may omit Host.
    const old = await rawRequest(proxyUrl, 'GET /old HTTP/1.0\r\n\r\n')
    t.equal(old.status, 200)
    t.equal((JSON.parse(old.body.toString()) as Echo).url, '/old')
  })

  await t.test('HEAD gets the headers and no body', async (t) => {
    const res = await request(`${proxyUrl}/head`, { method: 'HEAD' })
    t.equal(res.statusCode, 200)
    t.ok(Number(res.headers['content-length']) > 0, 'the upstream content-length is kept')
    t.equal(await res.body.text(), '')
  })

  t.equal(decoy.received.length, 0, 'the host named in a target was never contacted')
  const metrics = await scrape(adminUrl)
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'stable', status_class: '4xx' }), 0, 'refused targets are not counted as upstream responses')
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'stable', status_class: 'error' }), 0)
})
