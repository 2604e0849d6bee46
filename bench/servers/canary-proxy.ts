/** Bench child: canary-proxy itself, the real app from buildApp() with both upstreams, sticky routing, every metric, silent logs and state in a temp dir. */
import { join } from 'node:path'
import { buildApp } from '../../src/app.js'
import { configFromObject } from '../../src/config/load.js'
import { serveCalls } from '../lib/ipc.js'
import { loopStatsHandler } from '../lib/loop-stats.js'
import { STICKY_HEADER } from '../lib/payload.js'

const [stable, canary, dir] = process.argv.slice(2)
if (stable === undefined || canary === undefined || dir === undefined) throw new Error('usage: canary-proxy.js <stable-url> <canary-url> <state-dir>')

const result = configFromObject({
  listen: { host: '127.0.0.1', port: 0, drainTimeout: '1s' },
  admin: { host: '127.0.0.1', port: 0 },
  upstreams: { stable, canary },
  routing: { stickyHeader: STICKY_HEADER },
  // The weight is set through the admin API by the runner, as an operator would.
  rollout: { autoStart: false },
  state: { file: join(dir, 'state.json') },
  audit: { file: join(dir, 'audit.jsonl') },
  log: { level: 'silent' },
})
if (!result.ok) throw new Error(`bench config invalid: ${result.error.map((i) => `${i.path}: ${i.message}`).join('; ')}`)

const app = await buildApp({ config: result.value })
const { proxyUrl, adminUrl } = await app.listen()

// The runner owns (and removes) the state dir.
serveCalls({ memory: () => process.memoryUsage(), loopStats: loopStatsHandler() }, { url: proxyUrl, adminUrl })
process.on('SIGTERM', () => void app.close().finally(() => process.exit(0)))
