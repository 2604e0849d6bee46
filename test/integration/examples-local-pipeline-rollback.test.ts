/** examples/local-pipeline.sh --faulty: the canary fails half its requests, the rollout is rolled back, the pipeline fails (exit 1) and says why. */
import t from 'tap'
import { everythingStopped, inOrder, runLocalPipeline, STAGES } from '../helpers/local-pipeline.js'

// ~5 s of rollout and 7 node processes; on a machine shared with other work those have taken over 100 s.
t.setTimeout(240_000)

t.test('a faulty canary is rolled back: exit 1', async (t) => {
  const run = await runLocalPipeline(t, ['--faulty'])
  t.equal(run.code, 1, `exit 1\n${run.output}`)
  inOrder(t, run.output.split('\n'), [...STAGES, '== rollout failed (canary-proxy wait exit 1)'], 'the stages')
  t.match(run.output, /rollout rolled back: canary error rate/, 'wait reported the rollback and why')
  t.match(run.output, /auto\s+rollback\s+progressing/, 'the events show the automatic rollback')
  t.notMatch(run.output, /== complete the rollout/, 'nothing was completed')
  t.match(run.output, /pipeline: v2 was not released/)
  await everythingStopped(t, run)
})
