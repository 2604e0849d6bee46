/** Child processes of the runner: spawned pinned to a CPU, called over IPC, and always stopped by PID (on error and on exit too). */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { CallMessage, ReadyMessage, ReplyMessage } from './ipc.js'

/** True when util-linux `taskset` can pin a process here. */
export function tasksetAvailable(): boolean {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

interface Tracked {
  readonly name: string
  readonly child: ChildProcess
  exited: boolean
  readonly exit: Promise<void>
  /** The last few KB of the child's output, shown when it fails. */
  output: string
}

export interface SpawnOptions {
  /** CPU list for taskset (such as "0" or "1"), or null to leave the process unpinned. */
  readonly cpus: string | null
  readonly env?: NodeJS.ProcessEnv
}

/** A running child the runner can call (Node children) and measure (any child). */
export class Handle {
  readonly name: string
  readonly pid: number
  readonly ready: ReadyMessage | null
  readonly #child: ChildProcess
  #nextId = 1
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()

  constructor(name: string, child: ChildProcess, ready: ReadyMessage | null) {
    this.name = name
    this.pid = child.pid!
    this.ready = ready
    this.#child = child
    child.on('message', (raw: unknown) => {
      const msg = raw as ReplyMessage
      if (msg.type !== 'reply') return
      const waiter = this.#pending.get(msg.id)
      if (waiter === undefined) return
      this.#pending.delete(msg.id)
      if (msg.ok) waiter.resolve(msg.result)
      else waiter.reject(new Error(`${name}: ${msg.error}`))
    })
    child.once('exit', (code, signal) => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error(`${name} exited (code ${String(code)}, signal ${String(signal)}) during a call`))
      this.#pending.clear()
    })
  }

  /** Calls a handler the child registered with serveCalls(). */
  call<T>(method: string, params: unknown = null): Promise<T> {
    const id = this.#nextId++
    const msg: CallMessage = { type: 'call', id, method, params }
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.#child.send(msg, (error) => {
        if (error) {
          this.#pending.delete(id)
          reject(error)
        }
      })
    })
  }
}

/**
 * Every process the runner starts is registered here and stopped by its PID:
 * `stopAll()` on the normal path (SIGTERM, then SIGKILL after a grace time),
 * and a synchronous SIGTERM from the 'exit' hook when the runner fails or is
 * interrupted. Children also exit on their own when the IPC channel closes
 * (see ipc.ts), which covers a runner killed outright.
 */
export class Children {
  readonly #tracked = new Set<Tracked>()
  readonly #taskset: boolean

  constructor(taskset: boolean) {
    this.#taskset = taskset
    process.on('exit', () => this.killAllNow())
  }

  /** Starts a compiled bench script (path relative to dist/bench/) and waits for its ready message. */
  async node(name: string, script: string, args: readonly string[], options: SpawnOptions, timeoutMs = 20_000): Promise<Handle> {
    const file = fileURLToPath(new URL(`../${script}`, import.meta.url))
    const tracked = this.#start(name, process.execPath, [file, ...args], options)
    const ready = await new Promise<ReadyMessage>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs}ms\n${tracked.output}`)), timeoutMs)
      tracked.child.once('message', (msg: ReadyMessage) => {
        clearTimeout(timer)
        resolve(msg)
      })
      void tracked.exit.then(() => {
        clearTimeout(timer)
        reject(new Error(`${name} exited before it was ready (code ${String(tracked.child.exitCode)})\n${tracked.output}`))
      })
    })
    return new Handle(name, tracked.child, ready)
  }

  /** Output so far of a child, for error messages. */
  outputOf(handle: Handle): string {
    for (const t of this.#tracked) if (t.child.pid === handle.pid) return t.output
    return ''
  }

  /** SIGTERM each child by PID, wait up to graceMs, then SIGKILL what is left. */
  async stop(handle: Handle, graceMs = 3_000): Promise<void> {
    for (const t of this.#tracked) if (t.child.pid === handle.pid) await this.#stopOne(t, graceMs)
  }

  async stopAll(graceMs = 3_000): Promise<void> {
    await Promise.all([...this.#tracked].map((t) => this.#stopOne(t, graceMs)))
  }

  /**
   * Synchronous last resort from process 'exit': SIGTERM by PID. Not SIGKILL:
   * the nginx keeper must live long enough to pass the signal on to nginx.
   * Every bench child exits on SIGTERM, and again when its IPC channel closes.
   */
  killAllNow(): void {
    for (const t of this.#tracked) if (!t.exited) signal(t, 'SIGTERM')
  }

  #start(name: string, command: string, args: readonly string[], options: SpawnOptions): Tracked {
    const pinned = this.#taskset && options.cpus !== null
    const [cmd, argv] = pinned ? ['taskset', ['-c', options.cpus!, command, ...args]] : [command, [...args]]
    // taskset execs the program in place, so the PID (and the IPC channel fd) are the program's own.
    const child = spawn(cmd as string, argv as string[], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: options.env ?? process.env })
    let resolveExit: () => void = () => {}
    const tracked: Tracked = { name, child, exited: false, exit: new Promise<void>((r) => (resolveExit = r)), output: '' }
    const keep = (chunk: Buffer): void => {
      tracked.output = (tracked.output + chunk.toString()).slice(-4096)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    child.once('exit', () => {
      tracked.exited = true
      this.#tracked.delete(tracked)
      resolveExit()
    })
    child.once('error', (error) => {
      tracked.output += `\nspawn error: ${error.message}`
      tracked.exited = true
      this.#tracked.delete(tracked)
      resolveExit()
    })
    this.#tracked.add(tracked)
    return tracked
  }

  async #stopOne(t: Tracked, graceMs: number): Promise<void> {
    if (t.exited) return
    signal(t, 'SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([t.exit.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))])
    clearTimeout(timer)
    if (timedOut && !t.exited) {
      signal(t, 'SIGKILL')
      await t.exit
    }
  }
}

function signal(t: Tracked, sig: NodeJS.Signals): void {
  const pid = t.child.pid
  if (pid === undefined) return
  try {
    process.kill(pid, sig)
  } catch {
    // already gone
  }
}

/**
 * CPU time (user + system, in seconds) a process and its descendants (the
 * nginx keeper's master and worker) have used so far, from /proc (Linux).
 * Null where /proc is not available.
 */
export function cpuSeconds(pid: number): number | null {
  const ticks = clockTicks()
  try {
    let total = 0
    const pending = [pid]
    while (pending.length > 0) {
      const next = pending.pop()!
      total += ticksOf(next)
      pending.push(...childPids(next))
    }
    return total / ticks
  } catch {
    return null
  }
}

function ticksOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are fields 14 and 15 of the whole line, so 11 and 12 here.
  return Number(fields[11]) + Number(fields[12])
}

/** The child processes of `pid` (its main thread's, which is where Node forks), from /proc; none where it is not available. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number)
  } catch {
    return []
  }
}

let ticksPerSecond: number | null = null
function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      ticksPerSecond = 100
    }
  }
  return ticksPerSecond
}

/** Resident set size of a process in bytes, from /proc; null elsewhere. */
export function rssBytes(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status)
    return m === null ? null : Number(m[1]) * 1024
  } catch {
    return null
  }
}
