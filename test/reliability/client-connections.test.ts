/**
 * Issue 7, defect 3 (client half): client connections are bounded
 * (listen.maxConnections), so the proxy's own descriptors never run out under
 * a flood of clients; a connection over the bound is closed at accept,
 * counted and logged, and the admin port keeps answering.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import { request } from 'undici'
import { buildApp } from '../../src/app.js'
import { createLogger } from '../../src/log.js'
import { defaultMaxConnections, FALLBACK_MAX_CONNECTIONS, openFileLimit } from '../../src/proxy/connection-limit.js'
import { testConfig } from '../helpers/app.js'
import { RawConnection, sample, scrape } from '../helpers/raw-http.js'
import { startUpstream } from '../helpers/upstreams.js'

t.test('the default bound comes from the open-file limit, with room for upstream connections, the admin port and files', async (t) => {
  const limits = 'Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 524288               files     \n'
  t.equal(openFileLimit(limits), 1024, 'the soft limit')
  t.equal(openFileLimit('Max open files            unlimited            unlimited            files\n'), null)
  t.equal(openFileLimit('nothing here'), null)
  t.equal(openFileLimit(null), null, 'no /proc')
  t.equal(defaultMaxConnections(1024), 298, '(1024 - 128) / 3')
  t.equal(defaultMaxConnections(1_048_576), 349_482)
  t.equal(defaultMaxConnections(100), 1, 'never below 1')
  t.equal(defaultMaxConnections(null), FALLBACK_MAX_CONNECTIONS)
  const own = openFileLimit()
  t.ok(own === null || own > 0, `this process: ${String(own)}`)
})

t.test('listen.maxConnections: the connection over the bound is closed at accept, counted and logged; the admin port still answers', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { config } = await testConfig(t, { upstreams: { stable: stable.url }, listen: { maxConnections: 2 }, log: { level: 'warn' } })
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString())
      done()
    },
  })
  const app = await buildApp({ config, log: createLogger('warn', sink) })
  const { proxyUrl, adminUrl } = await app.listen()
  t.teardown(() => app.close())

  const get = 'GET /x HTTP/1.1\r\nHost: app.example\r\n\r\n'
  const open: RawConnection[] = []
  t.teardown(() => open.forEach((c) => c.destroy()))
  for (let i = 0; i < 2; i++) {
    const conn = await RawConnection.open(proxyUrl)
    open.push(conn)
    conn.write(get)
    t.equal((await conn.response()).status, 200, `connection ${i + 1} of 2 is served and kept open`)
  }
  for (let i = 0; i < 3; i++) {
    const over = await RawConnection.open(proxyUrl)
    over.write(get)
    t.ok(await over.closed(5_000), `connection ${i + 3} is closed by the proxy`)
    await t.rejects(over.response(100), 'with no response')
    over.destroy()
  }
  const metrics = await scrape(adminUrl)
  t.equal(sample(metrics, 'canary_proxy_connections_dropped_total'), 3, 'the admin port answers while the data plane is full, and counts the drops')
  const warnings = lines.filter((l) => l.includes('listen.maxConnections'))
  t.equal(warnings.length, 1, 'one log line for a burst of drops (rate-limited)')
  t.match(JSON.parse(warnings[0] ?? '{}'), { level: 40, maxConnections: 2, dropped: 1 })

  // One connection goes away: a new one is accepted again.
  open.shift()!.destroy()
  let served = false
  for (let i = 0; i < 100 && !served; i++) {
    const conn = await RawConnection.open(proxyUrl)
    conn.write(get)
    served = await conn.response(1_000).then(
      (res) => res.status === 200,
      () => false,
    )
    conn.destroy()
    if (!served) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.ok(served, 'below the bound again, a new connection is served')
  const res = await request(`${adminUrl}/healthz`)
  await res.body.dump()
  t.equal(res.statusCode, 200)
})
