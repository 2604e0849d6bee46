/**
 * Bad `state.redis` values through the built CLI against a real redis-server:
 * `validate` and `serve` name the key and what was expected, and `serve`
 * starts nothing (no listener, no key written) — including a database number
 * the server does not have, which only the server can tell (ioredis would go
 * on in database 0, beside whatever lives there).
 */
import { connect } from 'node:net'
import t from 'tap'
import { Redis } from 'ioredis'
import { freePort, runCli, tempDir, writeConfig } from '../helpers/cli.js'
import { testRedis } from '../helpers/redis.js'

function config(redisUrl: string, prefix: string, ports: { proxy: number; admin: number }): string {
  return `listen: { host: 127.0.0.1, port: ${ports.proxy} }
admin: { host: 127.0.0.1, port: ${ports.admin} }
upstreams: { stable: http://127.0.0.1:9001 }
state: { redis: ${JSON.stringify(redisUrl)}, redisKeyPrefix: ${JSON.stringify(prefix)} }
audit: { file: audit.jsonl }
log: { level: warn }
`
}

/** Whether something accepts connections on the loopback port now. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

t.test('a state.redis URL that cannot be one: validate and serve name the key, serve starts nothing', async (t) => {
  const dir = await tempDir()
  const ports = { proxy: await freePort(), admin: await freePort() }
  for (const [url, why] of [
    ['http://127.0.0.1:6379', /state\.redis: must use redis:\/\/ or rediss:\/\//],
    ['redis://', /state\.redis: must name the Redis host/],
    ['redis://127.0.0.1:6379/abc', /state\.redis: the path must be a database number/],
  ] as const) {
    const file = await writeConfig(dir, 'bad.yaml', config(url, 'bad', ports))
    const validated = await runCli(t, ['validate', '--config', file], { cwd: dir })
    t.equal(validated.code, 1, `${url}: validate exits 1`)
    t.match(validated.stderr + validated.stdout, why, `${url}: validate names state.redis and what is wrong`)
    const served = await runCli(t, ['serve', '--config', file], { cwd: dir, timeoutMs: 20_000 })
    t.equal(served.code, 1, `${url}: serve exits 1`)
    t.match(served.stderr, why, `${url}: serve names state.redis`)
    t.match(served.stderr, /not starting \(CPX_ERR_CONFIG_INVALID\)/)
  }
})

t.test('state.redis naming a database the server does not have: serve exits 1 naming state.redis, and writes nothing to database 0', async (t) => {
  const redis = await testRedis(t)
  const prefix = redis.nextPrefix()
  const url = new URL(redis.url)
  // redis-server's default `databases` is 16 (test/helpers/redis.ts, .ci/run): 99 does not exist.
  url.pathname = '/99'
  const dir = await tempDir()
  const ports = { proxy: await freePort(), admin: await freePort() }
  const file = await writeConfig(dir, 'db99.yaml', config(url.toString(), prefix, ports))
  // The URL is well formed: only the server can say the database is missing.
  t.equal((await runCli(t, ['validate', '--config', file], { cwd: dir })).code, 0, 'validate accepts the URL')
  const served = await runCli(t, ['serve', '--config', file], { cwd: dir, timeoutMs: 20_000 })
  t.equal(served.code, 1, 'serve exits 1')
  t.match(served.stderr, /cannot start: state\.redis: database 99 does not exist on redis:\/\/127\.0\.0\.1:\d+\/99 .*DB index is out of range.*databases/)
  t.notOk(await listening(ports.admin), 'the admin port was never left listening')
  t.notOk(await listening(ports.proxy), 'nor the data plane')
  const client = new Redis(redis.url, { maxRetriesPerRequest: 1 })
  t.teardown(() => client.disconnect())
  t.same(await client.keys(`${prefix}*`), [], 'no key under the prefix in database 0 (nothing was written beside another rollout)')
})
