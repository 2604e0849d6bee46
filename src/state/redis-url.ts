/** `state.redis` URLs: what the config accepts (redis:// or rediss://, a host, an optional port, database and credentials), and their form for logs, without the password. */

export interface RedisTarget {
  readonly tls: boolean
  readonly host: string
  readonly port: number
  readonly db: number
  readonly username: string | null
  readonly password: string | null
}

const EXAMPLE = 'redis://127.0.0.1:6379/0 or rediss://user:password@redis.example:6380'

/** The problem with a `state.redis` value in words (naming what was expected), or null when it is usable. */
export function redisUrlProblem(text: string): string | null {
  const parsed = parseRedisUrl(text)
  return parsed.ok ? null : parsed.problem
}

export function parseRedisUrl(text: string): { readonly ok: true; readonly target: RedisTarget } | { readonly ok: false; readonly problem: string } {
  const fail = (why: string) => ({ ok: false as const, problem: `${why}; expected a URL such as ${EXAMPLE} (got ${JSON.stringify(redactRedisUrl(text))})` })
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return fail(/^rediss?:\/\//.test(text) ? 'is not a valid URL (a host, then an optional port 1..65535)' : 'must be a redis:// or rediss:// URL')
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return fail(`must use redis:// or rediss:// (TLS), not ${url.protocol}//`)
  // URL leaves the host of a non-special scheme empty rather than refusing it.
  if (url.hostname === '') return fail('must name the Redis host')
  if (url.search !== '' || url.hash !== '') return fail('takes no query or fragment')
  let db = 0
  if (url.pathname !== '' && url.pathname !== '/') {
    const match = /^\/(\d{1,5})$/.exec(url.pathname)
    if (match === null) return fail(`the path must be a database number such as /0 (got ${JSON.stringify(url.pathname)})`)
    db = Number(match[1])
  }
  const port = url.port === '' ? 6379 : Number(url.port)
  if (port === 0) return fail('the port must be 1..65535')
  return {
    ok: true,
    target: {
      tls: url.protocol === 'rediss:',
      host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port,
      db,
      username: url.username === '' ? null : decodeURIComponent(url.username),
      password: url.password === '' ? null : decodeURIComponent(url.password),
    },
  }
}

/** The URL with its password replaced, for logs, `name`s and error messages (the config's `${ENV}` secrets stay secret). */
export function redactRedisUrl(text: string): string {
  try {
    const url = new URL(text)
    if (url.password !== '') url.password = '***'
    return url.toString()
  } catch {
    // Not a URL: hide whatever sits between "//user:" and "@".
    return text.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@')
  }
}
