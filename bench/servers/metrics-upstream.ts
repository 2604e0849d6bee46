/** Bench child for bench/probes-overhead.ts: an upstream whose /metrics is prom-client's process metrics, or (MODE=receiver) a webhook receiver that reports each call's delay on stdout. */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { collectDefaultMetrics, Registry } from 'prom-client'

const receiver = process.env.MODE === 'receiver'
const registry = new Registry()
collectDefaultMetrics({ register: registry })
const body = Buffer.from(JSON.stringify({ ok: true, pad: 'x'.repeat(200) }))

const server = createServer((req, res) => {
  if (!receiver && req.url === '/metrics') {
    void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text))
    return
  }
  let text = ''
  req.on('data', (chunk: Buffer) => (text += receiver ? chunk.toString('utf8') : ''))
  req.on('end', () => {
    if (receiver) {
      // The payload's `at` is the transition's time: arrival minus it is the delivery delay (one host, one clock).
      const at = Date.parse((JSON.parse(text) as { at: string }).at)
      process.stdout.write(`${JSON.stringify({ delayMs: Date.now() - at })}\n`)
      res.writeHead(204).end()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) }).end(body)
  })
})
server.keepAliveTimeout = 65_000
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`))
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
process.on('SIGTERM', () => process.exit(0))
