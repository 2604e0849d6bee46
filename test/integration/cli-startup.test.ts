/**
 * Client commands start light: what they load, traced by a module hook in the
 * child (test/helpers/module-trace.mjs), has none of the proxy, the admin
 * server or the config validator.
 */
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { REPO, inBatches, runCli } from '../helpers/cli.js'
import { closedPort } from '../helpers/upstreams.js'

t.test('client commands start light: they load neither the proxy nor the config validator', async (t) => {
  const trace = `--import=${pathToFileURL(join(REPO, 'test', 'helpers', 'module-trace.mjs')).href}`
  const dead = `http://127.0.0.1:${await closedPort()}`
  const commands = [['status'], ['events', '--limit', '3'], ['set-weight', '5'], ['wait', '--timeout', '1s'], ['status', '--watch']]
  const results = await inBatches(commands.map((args) => () => runCli(t, [...args, '--admin', dead], { env: { NODE_OPTIONS: trace } })))
  for (const [i, r] of results.entries()) {
    const name = commands[i]!.join(' ')
    const loaded = r.stderr.split('\n').filter((l) => l.startsWith('loaded '))
    t.ok(loaded.some((l) => l.endsWith('/dist/src/cli/admin-client.js')), `${name}: the trace works (it loaded the admin client)`)
    const heavy = loaded.filter((l) => /\/dist\/src\/(app|log|config\/(load|schema)|proxy\/|admin\/|rollout\/|stats\/|state\/)|\/node_modules\/(fastify|ajv|yaml|pino|prom-client|hdr-histogram-js)\//.test(l))
    t.same(heavy, [], `${name}: none of the proxy, the admin server or the config validator`)
    t.equal(r.code, 1, `${name}: exit 1, the admin API is not there`)
  }
})
