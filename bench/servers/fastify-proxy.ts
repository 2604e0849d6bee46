/** Bench child: the baseline, a bare fastify with @fastify/http-proxy and its defaults, to the stable upstream only. */
import proxy from '@fastify/http-proxy'
import fastify from 'fastify'
import { serveCalls } from '../lib/ipc.js'
import { loopStatsHandler } from '../lib/loop-stats.js'

const upstream = process.argv[2]
if (upstream === undefined) throw new Error('usage: fastify-proxy.js <upstream-url>')

const app = fastify({ logger: false })
await app.register(proxy, { upstream })
const url = await app.listen({ host: '127.0.0.1', port: 0 })

serveCalls({ loopStats: loopStatsHandler() }, { url })
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
