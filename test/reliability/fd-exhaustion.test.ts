/**
 * The proxy's own file descriptor exhaustion (issue 7, defect 3) is an
 * internal error, never a side's: a `serve` child whose open-files limit is
 * lowered (prlimit, util-linux) to what it has open plus a few, those few
 * taken by idle client connections, answers a request it cannot open an
 * upstream connection for with 500 CPX_ERR_INTERNAL (connect EMFILE),
 * counted in canary_proxy_internal_errors_total, with no error on either
 * side; once connections close it serves again.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { serve, tempDir, until, writeConfig } from '../helpers/cli.js'
import { authority, RawConnection, sample } from '../helpers/raw-http.js'
import { startUpstream } from '../helpers/upstreams.js'

const FREE = 4

function openFds(pid: number): number[] {
  return readdirSync(`/proc/${pid}/fd`).map(Number)
}

function hardLimit(pid: number): string {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'))
  const fields = line?.split(/\s{2,}/) ?? []
  return fields[2] ?? 'unlimited'
}

/** One request on a new connection, closed after: no keep-alive connection left holding a descriptor. */
async function once(url: string, path: string): Promise<{ status: number; code: string | undefined; body: string }> {
  const conn = await RawConnection.open(url)
  try {
    conn.write(`GET ${path} HTTP/1.1\r\nHost: ${authority(url)}\r\nConnection: close\r\n\r\n`)
    const res = await conn.response(20_000)
    return { status: res.status, code: res.headers['x-canary-proxy-error']?.[0], body: res.body.toString() }
  } finally {
    conn.destroy()
  }
}

t.test('connect EMFILE is the proxy\'s fault: 500 CPX_ERR_INTERNAL, no side charged, service resumes', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const dir = await tempDir()
  const config = await writeConfig(
    dir,
    'config.yaml',
    `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams: { stable: ${stable.url}, canary: ${canary.url} }
rollout: { autoStart: false }
state: { file: ${JSON.stringify(join(dir, 'state.json'))} }
audit: { file: ${JSON.stringify(join(dir, 'audit.jsonl'))} }
log: { level: info }
`,
  )
  // A generous start-up wait: on a loaded 2-core machine the child was measured taking over 20 s to listen.
  const served = await serve(t, config, { timeoutMs: 60_000 })
  const pid = served.child.pid
  // Nothing proxied yet: no upstream connection is kept alive to reuse.
  const fds = openFds(pid)
  const limit = Math.max(...fds) + 1 + FREE
  execFileSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:${hardLimit(pid)}`])

  // Idle client connections take every descriptor left under the limit.
  const idle: RawConnection[] = []
  t.teardown(() => idle.forEach((c) => c.destroy()))
  for (let i = openFds(pid).length; i < limit; i++) idle.push(await RawConnection.open(served.proxyUrl))
  await until('every descriptor in use', () => (openFds(pid).length >= limit ? true : undefined))

  const conn = idle[0]!
  conn.write(`GET /needs-an-upstream-connection HTTP/1.1\r\nHost: ${authority(served.proxyUrl)}\r\n\r\n`)
  const res = await conn.response(20_000)
  t.equal(res.status, 500)
  t.same(res.headers['x-canary-proxy-error'], ['CPX_ERR_INTERNAL'])
  t.match(res.body.toString(), /EMFILE/)
  t.equal(stable.received.length + canary.received.length, 0, 'no upstream reached')

  for (const c of idle) c.destroy()
  await until('descriptors free again', () => (openFds(pid).length <= limit - FREE ? true : undefined))
  const metrics = await until('metrics readable', async () => {
    const r = await once(served.adminUrl, '/metrics')
    return r.status === 200 ? r.body : undefined
  })
  t.ok((sample(metrics, 'canary_proxy_internal_errors_total') ?? 0) >= 1, 'counted as the proxy\'s own error')
  for (const side of ['stable', 'canary']) {
    t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: side, status_class: 'error' }), 0, `nothing charged to ${side}`)
  }
  const after = await once(served.proxyUrl, '/after')
  t.equal(after.status, 200, 'served again once descriptors are free')
})
