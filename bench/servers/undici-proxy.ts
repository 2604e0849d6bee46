/** Bench child: the Node ceiling, a hand-rolled node:http server streaming each request through an undici Pool with Pool.stream and nothing else. */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'
import { serveCalls } from '../lib/ipc.js'
import { loopStatsHandler } from '../lib/loop-stats.js'

const upstream = process.argv[2]
if (upstream === undefined) throw new Error('usage: undici-proxy.js <upstream-url>')

const pool = new Pool(upstream, { pipelining: 1 })

/** Headers undici refuses or that are hop-by-hop: the minimum a correct proxy must drop. */
const HOP = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'proxy-connection', 'te', 'trailer']

/** Request side: undefined is skipped by undici and keeps the object's shape. */
function stripRequest(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  for (const name of HOP) if (headers[name] !== undefined) headers[name] = undefined
  return headers
}

/** Response side: Node's writeHead refuses undefined values, so these are deleted. */
function stripResponse(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- undici's parsed header object is ours to edit
  for (const name of HOP) if (headers[name] !== undefined) delete headers[name]
  return headers
}

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')
  pool.stream(
    { path: req.url ?? '/', method: req.method as 'GET', headers: stripRequest(req.headers) as Record<string, string>, body: hasBody ? req : null },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, stripResponse(headers) as Record<string, string>)
      return res
    },
    (error) => {
      if (error !== null && error !== undefined) {
        if (!res.headersSent) res.writeHead(502).end()
        else res.destroy(error)
      }
    },
  )
})
server.keepAliveTimeout = 65_000
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))

serveCalls({ loopStats: loopStatsHandler() }, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })
process.on('SIGTERM', () => {
  server.close()
  void pool.close().then(() => process.exit(0))
})
