/**
 * `canary-proxy demo --faulty`: the canary passes the first step, starts
 * failing and is rolled back mid-rollout; the demo ends by itself and says
 * why, or with --keep stays up for a look around until Ctrl-C.
 */
import t from 'tap'
import { admin } from '../helpers/app.js'
import { ANSI, exitWithin, freePort, linesWiderThan, runCli, spawnCli, until } from '../helpers/cli.js'

t.test('demo --faulty: rolled back mid-rollout; the demo ends by itself and says why', async (t) => {
  const [port, adminPort] = [await freePort(), await freePort()]
  const demo = spawnCli(t, ['demo', '--faulty', '--port', String(port), '--admin-port', String(adminPort)])
  // A busy machine may take a while to start a Node process with the whole proxy.
  await demo.waitForLine(/--faulty/, 60_000)
  const exit = await exitWithin(demo, 90_000)
  t.equal(exit.code, 0, `exit 0 (stderr: ${demo.stderrText()})`)
  const out = demo.stdoutText()
  t.match(out, />> advance: progressing 5% -> progressing 25%/, 'the canary passed the first step')
  t.match(out, />> rollback: progressing (25|50)% -> rolled_back 0%/, 'and failed mid-rollout, past the first step')
  const [, summary = ''] = out.split(/^(?=demo over: )/m)
  t.match(summary, /^demo over: phase rolled_back \(.+\)$/m, 'ends saying why')
  t.match(summary, /^\s+what happened\s+v2 failed the checks at (25|50)% and was rolled back after \d+s/m)
  t.match(summary, /^\s+\d+s\s+rollback\s+progressing (25|50)%\s+-> rolled_back 0%$/m, 'the rollback step and its time')
  t.match(summary, /^\s+reason\s+canary error rate [\d.]+% /m, 'the reason')
  t.match(summary, /^\s+checks\s+(pass|fail|insufficient)\s+maxErrorRate\s+[\d.]+%\s+max 2\.0%\s+n [\d,]+$/m, 'each check, observed vs threshold')
  // Which of the two error checks is proven first varies with the traffic; at least one failed.
  t.match(summary, /^\s+(checks\s+)?fail\s+maxErrorRate(Increase)?\s+[\d.]+(%| points)\s+max [\d.]+(%| points)\s+n [\d,]+$/m, 'the failed check')
  t.match(summary, /^\s+requests\s+v1 \(stable\) [\d,]+ .*v2 \(canary\) [\d,]+ /m)
  t.same(linesWiderThan(out, 100), [], 'every line fits 100 columns')
  t.notMatch(out, ANSI, 'no colour in a pipe')
  await t.rejects(fetch(`http://127.0.0.1:${adminPort}/healthz`), 'the admin port is released')
})

t.test('demo --faulty --keep: stays up after the rollback for status and events, until Ctrl-C', async (t) => {
  const [port, adminPort] = [await freePort(), await freePort()]
  const adminUrl = `http://127.0.0.1:${adminPort}`
  const demo = spawnCli(t, ['demo', '--faulty', '--keep', '--port', String(port), '--admin-port', String(adminPort)])
  await demo.waitForLine(/--faulty/, 60_000)
  await demo.waitForLine(/^still up \(--keep\): /, 90_000)
  t.notOk(demo.hasExited(), 'still running after the end')
  const after = await admin(adminUrl, 'GET', '/api/v1/status')
  t.match(after.json, { phase: 'rolled_back', weight: 0 }, 'rolled back, weight 0')
  t.match(demo.stdoutText(), /^demo over: phase rolled_back \(.+\)$/m, 'the summary came at the end')
  const status = await runCli(t, ['status', '--admin', adminUrl])
  t.match(status.stdout, /^phase\s+rolled_back\s+weight 0%/m)
  t.match(status.stdout, /^(checks)?\s+fail\s+maxErrorRate(Increase)?\s/m, 'the check that failed')
  await until('traffic to keep flowing', async () => ((await admin(adminUrl, 'GET', '/api/v1/status')).json.stable as { requests: number }).requests > 0 ? true : undefined)
  // Ctrl-C ends it, as a person would.
  demo.process.kill('SIGINT')
  const exit = await exitWithin(demo, 15_000)
  t.equal(exit.code, 0)
  await t.rejects(fetch(`${adminUrl}/healthz`), 'the admin port is released')
})
