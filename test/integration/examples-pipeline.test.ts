/** examples/: the GitHub Actions and GitLab CI pipelines, their stages in order and every shell step valid bash (examples-local-pipeline*.test.ts run the local one). */
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { REPO } from '../helpers/cli.js'
import { inOrder } from '../helpers/local-pipeline.js'

const EXAMPLES = join(REPO, 'examples')

function bashSyntax(script: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-n'], { stdio: ['pipe', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c))
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stderr }))
    child.stdin.end(script)
  })
}

const at = (lines: readonly string[], needle: string): number => lines.findIndex((l) => l.includes(needle))

interface GitHubStep {
  name?: string
  uses?: string
  run?: string
  if?: string
  with?: Record<string, unknown>
}

t.test('the GitHub Actions pipeline: build -> push -> deploy canary -> start -> wait -> complete, or fail on a rollback', async (t) => {
  const wf = parse(await readFile(join(EXAMPLES, 'github-actions.yml'), 'utf8')) as { on: unknown; jobs: Record<string, { needs?: string; steps: GitHubStep[] }> }
  t.ok(wf.on !== undefined, 'a trigger')
  const build = wf.jobs.build!.steps
  const push = build.find((s) => s.uses?.startsWith('docker/build-push-action@'))
  t.equal(push?.with?.push, true, 'the build job builds and pushes the image')
  const canary = wf.jobs.canary!
  t.equal(canary.needs, 'build', 'the canary job runs after the build')
  const steps = canary.steps.map((s) => `${s.name ?? ''} ${s.run ?? ''}`)
  inOrder(t, steps, ['kubectl set image', 'canary-proxy start --canary', 'canary-proxy wait --timeout', 'kubectl scale deployment/my-service-${{ steps.slot.outputs.old }} --replicas=0'], 'github-actions.yml')
  const onFailure = canary.steps.find((s) => s.if === 'failure()')
  t.match(onFailure?.run ?? '', /canary-proxy status/, 'a failed wait reports and takes the canary down')
  t.ok(canary.steps.indexOf(onFailure!) > at(steps, 'canary-proxy wait'), 'after the wait')
  for (const [job, { steps: jobSteps }] of Object.entries(wf.jobs)) {
    for (const s of jobSteps) {
      if (s.run === undefined) continue
      const r = await bashSyntax(s.run)
      t.equal(r.code, 0, `${job} / ${s.name ?? s.run.split('\n')[0]}: valid bash${r.stderr === '' ? '' : `: ${r.stderr}`}`)
    }
  }
})

t.test('the GitLab CI pipeline: the same stages', async (t) => {
  const ci = parse(await readFile(join(EXAMPLES, 'gitlab-ci.yml'), 'utf8')) as Record<string, unknown> & { stages: string[] }
  t.same(ci.stages, ['build', 'canary', 'complete'])
  type Job = { stage?: string; extends?: string; script?: string[]; before_script?: string[]; after_script?: string[]; needs?: string[] }
  const job = (name: string): Job => ci[name] as Job
  inOrder(t, job('build').script ?? [], ['docker build', 'docker push'], 'gitlab build')
  inOrder(t, job('canary').script ?? [], ['kubectl set image', 'canary-proxy start --canary', 'canary-proxy wait --timeout'], 'gitlab canary')
  t.match((job('canary').after_script ?? []).join('\n'), /canary-proxy abort/, 'a failed job aborts and takes the canary down')
  t.same(job('complete').needs, ['canary'], 'completed only after the canary job passed')
  t.match((job('complete').script ?? []).join('\n'), /kubectl scale "deployment\/my-service-\$OLD_SLOT" --replicas=0/)
  for (const [name, value] of Object.entries(ci)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) continue
    const j = value as Job
    for (const part of ['before_script', 'script', 'after_script'] as const) {
      if (j[part] === undefined) continue
      const r = await bashSyntax(j[part].join('\n'))
      t.equal(r.code, 0, `${name}.${part}: valid bash${r.stderr === '' ? '' : `: ${r.stderr}`}`)
    }
  }
})

