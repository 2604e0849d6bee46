/** Runs examples/local-pipeline.sh with the built CLI, and the assertions its tests share. */
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { join } from 'node:path'
import type { Test } from 'tap'
import { CLI, REPO, cliEnv } from './cli.js'

export interface PipelineRun {
  readonly code: number | null
  readonly output: string
}

/** Bounded: the script's rollout takes ~10 s of its own and its wait 60 s at most; a busy machine starts each node process slowly. */
export function runLocalPipeline(t: Test, args: readonly string[], timeoutMs = 220_000): Promise<PipelineRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(REPO, 'examples', 'local-pipeline.sh'), ...args], { cwd: REPO, env: cliEnv({ CANARY_PROXY: `${process.execPath} ${CLI}` }), stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c))
    // SIGTERM: the script's trap stops what it started.
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGTERM')
      reject(new Error(`local-pipeline.sh ${args.join(' ')} did not end within ${timeoutMs}ms:\n${output}`))
    }, timeoutMs)
    t.teardown(() => clearTimeout(timer))
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}

/** The pipeline's stage headers, as the script prints them, in order. */
export const STAGES = ['== build', '== deploy stable v1 and the proxy', '== deploy canary v2', '== canary-proxy start --canary', '== canary-proxy wait'] as const

export function inOrder(t: Test, lines: readonly string[], needles: readonly string[], what: string): void {
  const positions = needles.map((n) => lines.findIndex((l) => l.includes(n)))
  t.same(
    positions.map((p, i) => `${needles[i]}: ${p === -1 ? 'missing' : 'present'}`),
    needles.map((n) => `${n}: present`),
    `${what}: every stage is there`,
  )
  t.ok(positions.every((p, i) => i === 0 || p > positions[i - 1]!), `${what}: ${needles.join(' -> ')}`)
}

/** Every service, proxy and admin listener the run printed is closed once it ended. */
export async function everythingStopped(t: Test, run: PipelineRun): Promise<void> {
  const urls = [...run.output.matchAll(/(?:stable v1 at|canary v2 at|proxy at|admin at) (http:\/\/[\d.]+:\d+)/g)].map((m) => m[1]!)
  t.equal(urls.length, 4, 'two services, the proxy and its admin listener were started')
  for (const url of urls) t.ok(await refused(url), `${url} is closed`)
}

function refused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) })
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', () => resolve(true))
  })
}
