/**
 * Restarts through the CLI: the rollout state survives `serve` being stopped and
 * started again; a state file that cannot be parsed is kept aside and the proxy
 * starts safe (SPEC "Lifecycle").
 */
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { exitWithin, runCli, serve, tempDir, writeConfig, type Served } from '../helpers/cli.js'
import { startUpstream } from '../helpers/upstreams.js'

async function configIn(dir: string, stable: string, canary: string): Promise<string> {
  return writeConfig(
    dir,
    'config.yaml',
    `listen: { host: 127.0.0.1, port: 0, drainTimeout: 5s }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  stable: ${stable}
  canary: ${canary}
rollout: { steps: [10, 50, 100], stepDuration: 1m, bake: 1m, autoStart: true }
state: { file: ${JSON.stringify(join(dir, 'state.json'))} }
audit: { file: ${JSON.stringify(join(dir, 'audit.jsonl'))} }
log: { level: info }
`,
  )
}

async function stop(t: Test, served: Served): Promise<void> {
  served.child.process.kill('SIGTERM')
  const exit = await exitWithin(served.child, 20_000)
  t.equal(exit.code, 0, 'serve exits 0 on SIGTERM')
}

interface StatusJson {
  phase: string
  weight: number
  step: number | null
  stable: { url: string }
  canary: { url: string } | null
}

async function statusOf(t: Test, adminUrl: string): Promise<StatusJson> {
  const r = await runCli(t, ['status', '--json', '--admin', adminUrl])
  t.equal(r.code, 0, `status exits 0 (${r.stderr})`)
  return JSON.parse(r.stdout) as StatusJson
}

t.test('set-weight survives a restart: paused at 30 after SIGTERM and serve again', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const dir = await tempDir()
  const file = await configIn(dir, stable.url, canary.url)

  const first = await serve(t, file)
  const started = await statusOf(t, first.adminUrl)
  t.match(started, { phase: 'progressing', weight: 10 }, 'autoStart began the rollout')
  const set = await runCli(t, ['set-weight', '30', '--admin', first.adminUrl])
  t.equal(set.code, 0, set.stderr)
  t.match(set.stdout, /phase\s+paused\s+weight 30%/)
  await stop(t, first)

  const second = await serve(t, file)
  const after = await statusOf(t, second.adminUrl)
  t.match(after, { phase: 'paused', weight: 30, stable: { url: stable.url }, canary: { url: canary.url } }, 'the same phase and weight after the restart')
  const human = await runCli(t, ['status', '--admin', second.adminUrl])
  t.match(human.stdout, /phase\s+paused\s+weight 30%/)
  await stop(t, second)
})

t.test('a corrupt state file: kept under a new name, the proxy starts safe and logs both names', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const dir = await tempDir()
  const file = await configIn(dir, stable.url, canary.url)
  const stateFile = join(dir, 'state.json')
  const garbage = '{"version": 1, "state": {"phase": "progre\u0000\u0001 garbage'
  await writeFile(stateFile, garbage)

  const served = await serve(t, file)
  const status = await statusOf(t, served.adminUrl)
  t.equal(status.phase, 'paused', 'phase paused')
  t.equal(status.weight, 0, 'weight 0')

  const codes: number[] = []
  for (let i = 0; i < 30; i++) {
    const res = await request(`${served.proxyUrl}/r${i}`, { headers: { 'x-user-id': `user-${i}` } })
    codes.push(res.statusCode)
    await res.body.dump()
  }
  t.same(new Set(codes), new Set([200]), 'every request answered 200')
  t.equal(stable.received.length, 30, 'all traffic to stable')
  t.equal(canary.received.length, 0, 'none to the canary')

  const names = await readdir(dir)
  const kept = names.filter((n) => n.startsWith('state.json.') && n !== 'state.json')
  t.equal(kept.length, 1, `one copy kept beside the state file (${names.join(', ')})`)
  const keptFile = join(dir, kept[0] ?? '')
  t.equal(await readFile(keptFile, 'utf8'), garbage, 'the kept copy is the bad file, unchanged')
  const fresh = JSON.parse(await readFile(stateFile, 'utf8')) as { state: { phase: string; weight: number } }
  t.match(fresh.state, { phase: 'paused', weight: 0 }, 'a good state file replaces it')

  const line = served.logLines().find((l) => typeof l.msg === 'string' && l.msg.includes(keptFile))
  t.ok(line, 'a log line names the kept copy')
  t.match(String(line?.msg), stateFile, 'and the state file')
  t.ok(typeof line?.level === 'number' && line.level >= 40, 'at warn level or above')

  // It stays safe across the next restart too (the recovered state is a normal one).
  await stop(t, served)
  const again = await serve(t, file)
  t.match(await statusOf(t, again.adminUrl), { phase: 'paused', weight: 0 })
  t.equal((await readdir(dir)).filter((n) => n.startsWith('state.json.')).length, 1, 'nothing more moved aside')
  await stop(t, again)
})
