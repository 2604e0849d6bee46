/** SIGHUP (SPEC "Lifecycle"): a valid config is applied without dropping a request; an invalid one is refused with validate's messages and the last good config keeps serving. */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { Agent, request } from 'undici'
import { admin } from '../helpers/app.js'
import { killChild, serve, tempDir, until, writeConfig } from '../helpers/cli.js'
import { startUpstream } from '../helpers/upstreams.js'

const yaml = (dir: string, stable: string, canary: string, extra: { steps?: string; maxErrorRate?: string; stickyHeader?: string } = {}): string => `
listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams: { stable: ${stable}, canary: ${canary} }
routing: { stickyHeader: ${extra.stickyHeader ?? 'x-user-id'} }
rollout: { steps: ${extra.steps ?? '[10, 50, 100]'}, stepDuration: 10m, bake: 10m, autoStart: false }
analysis: { interval: 200ms, window: 10s, minRequests: 5, maxErrorRate: ${extra.maxErrorRate ?? '0.5'} }
state: { file: ${join(dir, 'state.json')} }
audit: { file: ${join(dir, 'audit.jsonl')} }
log: { level: info }
`

t.test('SIGHUP applies a valid config while requests flow, and refuses an invalid one with the validate messages', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const next = await startUpstream(t, 'next')
  const dir = await tempDir()
  const file = await writeConfig(dir, 'proxy.yaml', yaml(dir, stable.url, canary.url))
  const served = await serve(t, file)
  t.teardown(() => killChild(served.child))
  const status = async (): Promise<Record<string, unknown>> => (await admin(served.adminUrl, 'GET', '/api/v1/status')).json
  t.same((await status()).steps, [10, 50, 100])

  // Steady traffic through the reloads: not one request may fail.
  const agent = new Agent({ connections: 8 })
  t.teardown(() => agent.close())
  const failures: string[] = []
  let sent = 0
  let running = true
  const traffic = (async () => {
    while (running) {
      const batch = Array.from({ length: 8 }, async () => {
        try {
          const res = await request(`${served.proxyUrl}/during-reload`, { dispatcher: agent })
          await res.body.dump()
          if (res.statusCode !== 200) failures.push(`status ${res.statusCode}`)
        } catch (error) {
          failures.push(String(error))
        }
        sent++
      })
      await Promise.all(batch)
    }
  })()

  // A valid change: other steps and a new canary (a new rollout for it would need autoStart; it is only adopted).
  await writeConfig(dir, 'proxy.yaml', yaml(dir, stable.url, next.url, { steps: '[5, 20, 100]' }))
  process.kill(served.child.pid, 'SIGHUP')
  await until('the reloaded steps', async () => (JSON.stringify((await status()).steps) === '[5,20,100]' ? true : undefined))
  const afterValid = await status()
  t.equal((afterValid.canary as { url: string } | null)?.url, next.url, 'the new canary from the config is adopted')
  t.equal(afterValid.phase, 'idle', 'without autoStart it waits for a start')
  t.match(await served.child.waitForLine(/SIGHUP: .*proxy\.yaml reloaded/), /reloaded/, 'the reload is logged')

  // An invalid change: refused with the same lines as validate, and nothing changes.
  await writeConfig(dir, 'proxy.yaml', yaml(dir, stable.url, next.url, { steps: '[5, 200]', maxErrorRate: '"lots"' }))
  process.kill(served.child.pid, 'SIGHUP')
  await served.child.waitForLine(/rollout\.steps\[1\]: must be <= 100/)
  await served.child.waitForLine(/analysis\.maxErrorRate: must be a number/)
  t.same((await status()).steps, [5, 20, 100], 'the last good config keeps serving')
  t.notOk(served.child.hasExited(), 'the process is still up')

  // A restart-only key is named, and the rest is applied.
  await writeConfig(dir, 'proxy.yaml', yaml(dir, stable.url, next.url, { steps: '[5, 20, 100]', stickyHeader: 'x-session' }).replace('port: 0 }\nadmin', 'port: 1 }\nadmin'))
  process.kill(served.child.pid, 'SIGHUP')
  await served.child.waitForLine(/listen changed but take effect on restart/)

  running = false
  await traffic
  t.ok(sent > 0, `${sent} requests sent during the reloads`)
  t.same(failures, [], 'no request failed or was dropped')
  const audit = await readFile(join(dir, 'audit.jsonl'), 'utf8')
  t.match(audit, /"action":"config".*new canary upstream in the config/, 'the adopted canary is in the audit trail')
})

t.test('SIGHUP keeps canary_proxy_webhook_calls_total: a counter does not fall back to 0 on a reload', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const hook = await startUpstream(t, 'hook')
  const dir = await tempDir()
  const withHook = (maxErrorRate: string): string =>
    `${yaml(dir, stable.url, canary.url, { maxErrorRate })}webhooks:\n  - { name: chat, type: event, url: ${hook.url}/hook }\n`
  const file = await writeConfig(dir, 'proxy.yaml', withHook('0.5'))
  const served = await serve(t, file)
  t.teardown(() => killChild(served.child))
  const successes = async (): Promise<number | undefined> => {
    const text = await (await request(`${served.adminUrl}/metrics`)).body.text()
    const line = /^canary_proxy_webhook_calls_total\{webhook="chat",result="success"\} (\d+)$/m.exec(text)
    return line === null ? undefined : Number(line[1])
  }
  t.equal((await admin(served.adminUrl, 'POST', '/api/v1/rollout/start')).status, 200)
  await until('the start notification counted', async () => ((await successes()) === 1 ? true : undefined))
  await writeConfig(dir, 'proxy.yaml', withHook('0.4'))
  process.kill(served.child.pid, 'SIGHUP')
  await served.child.waitForLine(/SIGHUP: .*proxy\.yaml reloaded/)
  t.equal(await successes(), 1, 'the count survives the reload')
  t.equal((await admin(served.adminUrl, 'POST', '/api/v1/rollout/pause')).status, 200)
  await until('the pause notification counted on top', async () => ((await successes()) === 2 ? true : undefined))
  t.pass('counted on from 1, not from 0')
})
