// Steady traffic for examples/local-pipeline.sh: --rate requests per second to
// URL from 500 sticky users (x-user-id), until stopped (SIGTERM) or --duration.
//   node examples/local/traffic.mjs http://127.0.0.1:8080 [--rate 100] [--duration 120s]
import { Agent, request } from 'node:http'
import process from 'node:process'
import { clearInterval, setInterval, setTimeout } from 'node:timers'
import { URL } from 'node:url'
import { parseArgs } from 'node:util'

const { values, positionals } = parseArgs({ allowPositionals: true, options: { rate: { type: 'string', default: '100' }, duration: { type: 'string', default: '120s' } } })
const target = new URL(positionals[0] ?? 'http://127.0.0.1:8080')
const perTick = Number(values.rate) / 20
const agent = new Agent({ keepAlive: true, maxSockets: 16 })
let carry = 0
let sent = 0
const timer = setInterval(() => {
  for (carry += perTick; carry >= 1; carry--) {
    const user = `user-${Math.floor(Math.random() * 500)}`
    const req = request({ host: target.hostname, port: target.port, path: `/item/${sent++}`, agent, headers: { 'x-user-id': user } }, (res) => res.resume())
    req.on('error', () => undefined)
    req.end()
  }
}, 50)
const stop = () => {
  clearInterval(timer)
  agent.destroy()
  process.exit(0)
}
// A bound of its own, in case whoever started it is gone.
setTimeout(stop, Number.parseInt(values.duration, 10) * 1000).unref()
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
