import t from 'tap'
import { parseConfigText } from '../../src/config/load.js'
import { renderIssue } from '../../src/config/issues.js'
import { parseRedisUrl, redactRedisUrl } from '../../src/state/redis-url.js'

const ok = 'upstreams:\n  stable: http://127.0.0.1:9001\n'
const problems = (text: string, env: Record<string, string> = {}): string[] => {
  const r = parseConfigText(text, env)
  return r.ok ? [] : r.error.map(renderIssue)
}

t.test('state.redis takes a redis:// or rediss:// URL, and the key prefix defaults to canary-proxy', async (t) => {
  const r = parseConfigText(`${ok}state:\n  redis: redis://:\${REDIS_PASSWORD}@127.0.0.1:6380/2\n`, { REDIS_PASSWORD: 's3cret' })
  t.ok(r.ok, r.ok ? 'valid' : r.error.map(renderIssue).join('\n'))
  if (!r.ok) return
  t.same(r.value.state, { file: 'data/state.json', redis: 'redis://:s3cret@127.0.0.1:6380/2', redisKeyPrefix: 'canary-proxy' })
  const tls = parseConfigText(`${ok}state:\n  redis: rediss://proxy:pw@redis.internal\n  redisKeyPrefix: shop-checkout\n`, {})
  t.ok(tls.ok)
  if (tls.ok) t.same([tls.value.state.redis, tls.value.state.redisKeyPrefix], ['rediss://proxy:pw@redis.internal', 'shop-checkout'])
})

t.test('a bad state.redis is refused with one line naming the field and what was expected, without the password', async (t) => {
  const table: [string, string, RegExp][] = [
    ['http URL', 'http://127.0.0.1:6379', /^state\.redis: must use redis:\/\/ or rediss:\/\/ \(TLS\), not http:\/\/; expected a URL such as redis:\/\/127\.0\.0\.1:6379\/0/],
    ['no scheme', '127.0.0.1:6379', /^state\.redis: must be a redis:\/\/ or rediss:\/\/ URL; expected/],
    ['host:port, no scheme', 'localhost:6379', /^state\.redis: must use redis:\/\/ or rediss:\/\/ \(TLS\), not localhost:\/\//],
    ['not a URL', 'nope', /^state\.redis: must be a redis:\/\/ or rediss:\/\/ URL; expected/],
    ['no host', 'redis:///0', /^state\.redis: must name the Redis host/],
    ['port out of range', 'redis://127.0.0.1:70000', /^state\.redis: is not a valid URL \(a host, then an optional port 1\.\.65535\)/],
    ['port 0', 'redis://127.0.0.1:0', /^state\.redis: the port must be 1\.\.65535/],
    ['database not a number', 'redis://127.0.0.1/cache', /^state\.redis: the path must be a database number such as \/0 \(got "\/cache"\)/],
    ['a query', 'redis://127.0.0.1/0?timeout=1', /^state\.redis: takes no query or fragment/],
    ['password in a bad URL', 'http://user:hunter2@127.0.0.1', /got "http:\/\/user:\*\*\*@127\.0\.0\.1\/"/],
  ]
  for (const [what, url, expected] of table) {
    const lines = problems(`${ok}state:\n  redis: ${JSON.stringify(url)}\n`)
    t.equal(lines.length, 1, `${what}: one problem`)
    t.match(lines[0] ?? '', expected, what)
    t.notMatch(lines.join('\n'), /hunter2/, `${what}: the password is not printed`)
  }
  t.match(problems(`${ok}state:\n  redisKeyPrefix: "has space"\n`)[0] ?? '', /^state\.redisKeyPrefix: must be letters, digits and _ \. : \{ \} -/)
})

t.test('a parsed URL gives host, port, database and credentials; redaction hides only the password', async (t) => {
  const parsed = parseRedisUrl('rediss://ops:p%40ss@[::1]:6390/3')
  t.same(parsed, { ok: true, target: { tls: true, host: '::1', port: 6390, db: 3, username: 'ops', password: 'p@ss' } })
  t.same(parseRedisUrl('redis://localhost'), { ok: true, target: { tls: false, host: 'localhost', port: 6379, db: 0, username: null, password: null } })
  t.equal(redactRedisUrl('redis://ops:secret@h:1/0'), 'redis://ops:***@h:1/0')
  t.equal(redactRedisUrl('redis://h:1/0'), 'redis://h:1/0')
  t.equal(redactRedisUrl('garbage//u:secret@x'), 'garbage//u:***@x', 'not even a URL: still hidden')
})
