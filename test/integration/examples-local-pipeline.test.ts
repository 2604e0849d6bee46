/** examples/local-pipeline.sh with a healthy canary: every stage, the rollout succeeds, v2 is the new stable, exit 0, nothing left running. */
import t from 'tap'
import { everythingStopped, inOrder, runLocalPipeline, STAGES } from '../helpers/local-pipeline.js'

// ~10 s of rollout and 6 node processes; on a machine shared with other work those have taken over 100 s.
t.setTimeout(240_000)

t.test('a healthy canary is released: exit 0', async (t) => {
  const run = await runLocalPipeline(t, [])
  t.equal(run.code, 0, `exit 0\n${run.output}`)
  inOrder(t, run.output.split('\n'), [...STAGES, '== complete the rollout'], 'the stages')
  const canaryUrl = /canary v2 at (http:\/\/\S+)/.exec(run.output)?.[1] ?? 'no canary URL'
  t.ok(run.output.includes(`${canaryUrl} is the new stable`), `wait reported the success: v2 (${canaryUrl}) is the proxy's stable`)
  t.match(run.output, /rollout succeeded: bake of 2s at 100% passed/)
  t.match(run.output, /pipeline: v2 released; retiring v1/)
  await everythingStopped(t, run)
})
