/** Bench child: the upstream, two node:http servers (stable and canary) in one process, answering the same fixed body; counts requests per side. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serveCalls } from '../lib/ipc.js'
import { upstreamBody } from '../lib/payload.js'

const body = upstreamBody()
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) }
const counts = { stable: 0, canary: 0 }
// argv[2] 'fail-on-header': the canary answers 500 to requests carrying x-bench-fail: 1 (the replicas bench's failing canary); else 200.
const failOnHeader = process.argv[2] === 'fail-on-header'

function side(name: keyof typeof counts): Server {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    counts[name]++
    // Requests here carry no body; resume() drains one if a client sends it anyway.
    req.resume()
    res.writeHead(failOnHeader && name === 'canary' && req.headers['x-bench-fail'] === '1' ? 500 : 200, headers)
    res.end(body)
  })
  // Longer than every proxy's idle pool timeout, so no proxy races the
  // upstream closing a kept-alive connection between runs.
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000
  return server
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const stable = side('stable')
const canary = side('canary')
const stableUrl = await listen(stable)
const canaryUrl = await listen(canary)

serveCalls({ counts: () => ({ ...counts }) }, { url: stableUrl, stableUrl, canaryUrl })
process.on('SIGTERM', () => process.exit(0))
