/**
 * `canary-proxy demo` with a healthy canary, to the end: every step and the
 * bake pass, the demo ends by itself with a one-screen summary (what happened,
 * each step and its time, the reason, the checks, requests per side, where to
 * look next); lines fit 100 columns, no colour in a pipe.
 */
import t from 'tap'
import { ANSI, exitWithin, freePort, linesWiderThan, spawnCli } from '../helpers/cli.js'

t.test('demo: the rollout succeeds and the demo ends by itself with a one-screen summary', async (t) => {
  const [port, adminPort] = [await freePort(), await freePort()]
  const demo = spawnCli(t, ['demo', '--port', String(port), '--admin-port', String(adminPort)])
  // About 35 s of rollout; the bound is for a busy machine.
  const exit = await exitWithin(demo, 100_000)
  t.equal(exit.code, 0, `exit 0 (stderr: ${demo.stderrText()})`)
  const out = demo.stdoutText()
  for (const step of ['idle 0% -> progressing 5%', 'progressing 5% -> progressing 25%', 'progressing 25% -> progressing 50%', 'progressing 50% -> baking 100%', 'baking 100% -> succeeded 0%']) {
    t.match(out, `${step}`, `the transition ${step}`)
  }
  const [, summary = ''] = out.split(/^(?=demo over: )/m)
  t.match(summary, /^demo over: phase succeeded \(bake of 10s at 100% passed .*\)$/m, 'one closing line with the reason')
  t.match(summary, /^\s+what happened\s+v2 passed every step and the 10s bake in \d+s/m, 'what happened')
  t.match(summary, /^\s+steps\s+[01]s\s+start\s+idle 0%\s+-> progressing 5%$/m, 'each step and its time')
  t.match(summary, /^\s+\d+s\s+succeed\s+baking 100%\s+-> succeeded 0%$/m)
  t.match(summary, /^\s+reason\s+bake of 10s at 100% passed/m, 'the reason')
  t.match(summary, /^\s+checks\s+pass\s+maxErrorRate\s+[\d.]+%\s+max 2\.0%\s+n [\d,]+$/m, 'the checks of the last decision')
  t.match(summary, /^\s+requests\s+v1 \(stable\) [\d,]+ \([\d.]+% errors\)\s+v2 \(canary\) [\d,]+ \([\d.]+% errors\)\s+in \d+s$/m, 'requests per side')
  t.match(summary, /^\s+look next\s+.*--keep/m, 'where to look next')
  t.ok(summary.split('\n').length <= 25, `the summary fits one screen (${summary.split('\n').length} lines)`)
  t.same(linesWiderThan(out, 100), [], 'every line fits 100 columns')
  t.notMatch(out, ANSI, 'no colour when stdout is not a terminal')
  await t.rejects(fetch(`http://127.0.0.1:${adminPort}/healthz`), 'it stopped: the admin port is released')
})

