/** Starts test/fixtures/resource-upstream.ts as a child process (real process metrics), stopped by PID when the test ends. */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { cliEnv } from './cli.js'

const FIXTURE = fileURLToPath(new URL('../fixtures/resource-upstream.ts', import.meta.url))

export interface ResourceUpstream {
  readonly url: string
  readonly host: string
  readonly pid: number
}

export interface ResourceUpstreamOptions {
  readonly mode?: 'serve' | 'noisy'
  /** Hash rounds per request (~4 µs each). */
  readonly work?: number
  readonly leakMiBPerSecond?: number
}

export async function startResourceUpstream(t: Test, options: ResourceUpstreamOptions = {}): Promise<ResourceUpstream> {
  // tap's TypeScript loader only (its coverage hook doubles a child's start-up).
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'))
  const child = spawn(process.execPath, [...loader, FIXTURE], {
    env: cliEnv({ MODE: options.mode ?? 'serve', WORK: String(options.work ?? 0), LEAK_MIB_PER_S: String(options.leakMiBPerSecond ?? 0) }),
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const pid = child.pid
  if (pid === undefined) throw new Error('the resource upstream did not start')
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once('exit', () => resolve())
        process.kill(pid, 'SIGTERM')
      }),
  )
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8')
      const line = out.split('\n')[0]
      if (out.includes('\n') && line !== undefined) resolve((JSON.parse(line) as { port: number }).port)
    })
    child.once('exit', (code) => reject(new Error(`the resource upstream exited (${code}) before listening`)))
  })
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, pid }
}
