/** Runs the compiled CLI (dist/src/main.js, built by `npm run build`) as a child process, the way users do. */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { startApp, type Running } from './app.js'
import { startUpstream, type TestUpstream } from './upstreams.js'

export const REPO = fileURLToPath(new URL('../../', import.meta.url))
export const CLI = join(REPO, 'dist', 'src', 'main.js')

export type Env = Record<string, string | undefined>

/**
 * The parent's environment without the CLI's own variables, plus `extra`; an
 * `undefined` value removes a variable. tap's process-info hook is left out of
 * NODE_OPTIONS: it doubles a child's start-up time, and the compiled files a
 * child runs (dist/) are excluded from coverage anyway.
 */
export function cliEnv(extra: Env = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    // Colour is decided by the test (a pipe: none; runInTty: a terminal), not by the shell the suite runs in:
    // Node's colour depth counts a terminal under a generic CI=true as 2 colours (tty.getColorDepth).
    if (value === undefined || key.startsWith('CANARY_PROXY_') || key.startsWith('_TAPJS_PROCESSINFO_') || key === 'NO_COLOR' || key === 'FORCE_COLOR' || key === 'CI') continue
    env[key] = value
  }
  const nodeOptions = (env.NODE_OPTIONS ?? '')
    .split(/\s+/)
    .filter((o) => o !== '' && !o.includes('@tapjs/processinfo'))
    .join(' ')
  env.NODE_OPTIONS = nodeOptions === '' ? undefined : nodeOptions
  for (const [key, value] of Object.entries(extra)) env[key] = value
  return Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined))
}

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  readonly env?: Env
  readonly cwd?: string
  /** The child is killed (and the promise rejects) after this long; default 30 s. */
  readonly timeoutMs?: number
}

function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` before these tests`)
}

/** Runs `canary-proxy ...args` to completion; the child is killed by PID at teardown if it is still running. */
export function runCli(t: Test, args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  const child = spawnCli(t, args, options)
  const timeoutMs = options.timeoutMs ?? 30_000
  return new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      killChild(child)
      reject(new Error(`canary-proxy ${args.join(' ')} did not exit within ${timeoutMs}ms\nstdout: ${child.stdoutText()}\nstderr: ${child.stderrText()}`))
    }, timeoutMs)
    child.exited.then(
      ({ code, signal }) => {
        clearTimeout(timer)
        resolve({ code, signal, stdout: child.stdoutText(), stderr: child.stderrText() })
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error instanceof Error ? error : new Error(String(error)))
      },
    )
  })
}

export interface CliChild {
  readonly process: ChildProcess
  readonly pid: number
  stdoutText(): string
  stderrText(): string
  /** Resolves once the process has exited (and its output is read). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** True once the process exited. */
  hasExited(): boolean
  /** Waits for an output line (stdout or stderr) matching `pattern`; rejects at the deadline or if the process exits first. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>
}

/** Starts `canary-proxy ...args` and returns at once; killed with SIGKILL by PID at teardown. */
export function spawnCli(t: Test, args: readonly string[], options: RunOptions = {}): CliChild {
  assertBuilt()
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd ?? REPO, env: cliEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'] })
  if (child.pid === undefined) throw new Error(`could not spawn ${CLI}`)
  const pid = child.pid
  let stdout = ''
  let stderr = ''
  let done = false
  const listeners = new Set<() => void>()
  const notify = (): void => {
    for (const listener of listeners) listener()
  }
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
    notify()
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
    notify()
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => {
      done = true
      notify()
      resolve({ code, signal })
    })
  })
  // A rejection nobody awaits must not crash the test process.
  exited.catch(() => undefined)
  t.teardown(async () => {
    if (done) return
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      /* already gone */
    }
    await exited.catch(() => undefined)
  })
  const handle: CliChild = {
    process: child,
    pid,
    stdoutText: () => stdout,
    stderrText: () => stderr,
    exited,
    hasExited: () => done,
    waitForLine(pattern, timeoutMs = 20_000) {
      return new Promise<string>((resolve, reject) => {
        const check = (): void => {
          const line = `${stdout}\n${stderr}`.split('\n').find((l) => pattern.test(l))
          if (line !== undefined) finish(() => resolve(line))
          else if (done) finish(() => reject(new Error(`canary-proxy ${args.join(' ')} exited before printing ${pattern}\nstdout: ${stdout}\nstderr: ${stderr}`)))
        }
        const timer = setTimeout(() => finish(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs}ms\nstdout: ${stdout}\nstderr: ${stderr}`))), timeoutMs)
        const finish = (then: () => void): void => {
          clearTimeout(timer)
          listeners.delete(check)
          then()
        }
        listeners.add(check)
        check()
      })
    },
  }
  return handle
}

export function killChild(child: CliChild, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.hasExited()) return
  try {
    process.kill(child.pid, signal)
  } catch {
    /* already gone */
  }
}

/** Resolves with the exit of `child`, or rejects when it takes longer than `timeoutMs`. */
export async function exitWithin(child: CliChild, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const started = Date.now()
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`process ${child.pid} did not exit within ${timeoutMs}ms\nstdout: ${child.stdoutText()}\nstderr: ${child.stderrText()}`)), timeoutMs)
  })
  try {
    const result = await Promise.race([child.exited, timeout])
    return { ...result, ms: Date.now() - started }
  } finally {
    clearTimeout(timer)
  }
}

export interface Served {
  readonly child: CliChild
  readonly proxyUrl: string
  readonly adminUrl: string
  /** The JSON log lines printed on stdout so far. */
  logLines(): Record<string, unknown>[]
}

/** `canary-proxy serve --config FILE`; resolves once its "listening" log line names the URLs (the config may use port 0). */
export async function serve(t: Test, configFile: string | null, options: RunOptions = {}): Promise<Served> {
  const child = spawnCli(t, configFile === null ? ['serve'] : ['serve', '--config', configFile], options)
  const line = await child.waitForLine(/canary-proxy listening on/, options.timeoutMs ?? 20_000)
  const parsed = JSON.parse(line) as { proxy?: string; admin?: string }
  if (typeof parsed.proxy !== 'string' || typeof parsed.admin !== 'string') throw new Error(`the listening line has no URLs: ${line}`)
  return { child, proxyUrl: parsed.proxy, adminUrl: parsed.admin, logLines: () => jsonLines(child.stdoutText()) }
}

export function jsonLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      out.push(JSON.parse(line) as Record<string, unknown>)
    } catch {
      /* not a log line */
    }
  }
  return out
}

/** A temp directory for configs and state files. */
export function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'canary-proxy-cli-'))
}

export async function writeConfig(dir: string, name: string, yaml: string): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, yaml)
  return file
}

/** A loopback port that was free a moment ago (bound to port 0, then released). */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Polls `probe` until it returns a value other than undefined; rejects with `what` at the deadline. */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown = null
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${lastError === null ? '' : ` (last error: ${String(lastError)})`}`)
    await sleep(everyMs)
  }
}

/** Runs the jobs a few at a time: each CLI child is a whole Node process, and the machine has two cores. */
export async function inBatches<T>(jobs: readonly (() => Promise<T>)[], size = 4): Promise<T[]> {
  const out: T[] = []
  for (let i = 0; i < jobs.length; i += size) out.push(...(await Promise.all(jobs.slice(i, i + size).map((job) => job()))))
  return out
}

/** A shell word for `sh -c`: single-quoted. */
function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`
}

/**
 * Runs `canary-proxy ...args` with its stdout on a terminal: util-linux
 * `script` gives it a pseudo-terminal (Debian's bsdutils, always installed),
 * as a person's shell would; `prefix` goes before it (e.g. `timeout -s INT 3`).
 * Returns what the terminal showed (CR LF line ends).
 */
export function runInTty(t: Test, args: readonly string[], options: RunOptions & { readonly prefix?: readonly string[] } = {}): Promise<CliResult> {
  assertBuilt()
  const command = [...(options.prefix ?? []), process.execPath, CLI, ...args].map(shellQuote).join(' ')
  const env = cliEnv({ TERM: 'xterm-256color', ...options.env })
  const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: options.cwd ?? REPO, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const timeoutMs = options.timeoutMs ?? 30_000
  return new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
      reject(new Error(`script ${command} did not exit within ${timeoutMs}ms\n${stdout}`))
    }, timeoutMs)
    t.teardown(() => {
      clearTimeout(timer)
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    })
    child.once('error', reject)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/** ANSI escape sequences (colours, cursor moves). */
// eslint-disable-next-line no-control-regex -- the escape character is what is looked for
export const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g

/** The lines of `text` wider than `width` columns once escape sequences are taken out. */
export function linesWiderThan(text: string, width: number): string[] {
  return text
    .replace(ANSI, '')
    .split(/\r?\n/)
    .filter((l) => [...l].length > width)
}

/** The problem lines `validate` and `serve` print on stderr, without the "N problems" / "not starting" summary. */
export function problemLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l !== '')
    .filter((l) => !/: \d+ problems?$/.test(l) && !/: invalid configuration, not starting \(CPX_ERR_CONFIG_INVALID\)$/.test(l))
}

export interface ClientSetup {
  readonly app: Running
  readonly stable: TestUpstream
  readonly canary: TestUpstream
  /** Runs `canary-proxy <args> --admin <this app>`. */
  cli(args: readonly string[], env?: Env): Promise<CliResult>
}

/** An in-process app (test/helpers/app.ts) with a canary known but no rollout started, and steps slow enough to stay put during a test. */
export async function clientSetup(t: Test, overrides: Record<string, unknown> = {}): Promise<ClientSetup> {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const app = await startApp(t, {
    upstreams: { stable: stable.url, canary: canary.url },
    rollout: { steps: [10, 50, 100], stepDuration: '10m', bake: '10m', autoStart: false },
    ...overrides,
  })
  return { app, stable, canary, cli: (args, env) => runCli(t, [...args, '--admin', app.adminUrl], env === undefined ? {} : { env }) }
}

export interface StatusJson {
  phase: string
  weight: number
  step: number | null
  steps: number[]
  stable: { url: string; requests: number; errors: number; errorRate: number; p50Ms: number | null; p99Ms: number | null }
  canary: StatusJson['stable'] | null
  lastDecision: { at: string; verdict: string; reason: string } | null
}

export function statusJson(r: CliResult): StatusJson {
  return JSON.parse(r.stdout) as StatusJson
}
