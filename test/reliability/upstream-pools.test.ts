/**
 * The last line inside the data plane: undici turns a throw in a request
 * handler's error callback into an 'error' event on its Client, which without
 * a listener ends the process. Every client of an UpstreamPool (and the one-off
 * client of a retry) has one, handing the error to PoolOptions.onError; the
 * exchange itself never throws there (test/reliability/upstream-faults.test.ts).
 */
import type { Socket } from 'node:net'
import t from 'tap'
import type { Dispatcher } from 'undici'
import { UpstreamPools } from '../../src/proxy/upstreams.js'
import { startRawServer } from '../helpers/upstreams.js'

/** A handler whose error callback throws, as Exchange#clientGone did before issue 7. */
function throwingHandler(done: () => void): Dispatcher.DispatchHandler {
  return {
    onRequestStart() {},
    onResponseError() {
      done()
      throw new TypeError("Cannot read properties of null (reading 'destroyed')")
    },
  }
}

for (const how of ['pool', 'new connection'] as const) {
  t.test(`a handler that throws on a ${how === 'pool' ? 'pooled' : 'one-off'} connection reaches onError, not the process`, async (t) => {
    const raw = await startRawServer(t, (socket: Socket) => socket.once('data', () => socket.resetAndDestroy()))
    const errors: Error[] = []
    const pools = new UpstreamPools({ connectTimeoutMs: 1_000, onError: (error) => errors.push(error) })
    t.teardown(() => pools.close())
    const pool = pools.get(raw.url)
    let failed = false
    const options: Dispatcher.DispatchOptions = { method: 'GET', path: '/', headers: {} }
    const handler = throwingHandler(() => (failed = true))
    if (how === 'pool') pool.dispatch(options, handler)
    else pool.dispatchOnNewConnection(options, handler)
    for (let i = 0; i < 200 && errors.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    t.ok(failed, 'the request failed (the upstream reset it)')
    t.same(
      errors.map((e) => [e.name, e.message]),
      [['TypeError', "Cannot read properties of null (reading 'destroyed')"]],
      'the throw went to onError',
    )
  })
}
