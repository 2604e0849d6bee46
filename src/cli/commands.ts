/**
 * One function per CLI command; each returns the process exit code.
 *
 * Heavy modules are imported by the commands that need them: a client command
 * (`status`, `wait` polling in CI) loads the HTTP client only, not the proxy,
 * the admin server and the config validator, so it starts in a fraction of the time.
 */
import cluster from 'node:cluster'
import { existsSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { StatusView } from '../api/wire.js'
import type { App } from '../app.js'
import { renderIssue } from '../config/issues.js'
import { formatDuration } from '../core/duration.js'
import { messageOf, type ErrorCode } from '../core/errors.js'
import { isEnded } from '../core/phases.js'
import type { ClientOptions, Command } from './args.js'
import { renderEvent, renderStatus } from './render.js'
import { DEFAULT_CONFIG, USAGE, commandHelp, commandSpec } from './spec.js'
import { span, type Io } from './terminal.js'

export type { Io } from './terminal.js'

export const EXIT_OK = 0
export const EXIT_FAILED = 1
export const EXIT_TIMEOUT = 2
/**
 * A usage error exits 1 like any other failure: 2 is `wait`'s "timed out",
 * which a pipeline may treat differently (retry), and `validate` promises
 * 0 or 1 only.
 */
export const EXIT_USAGE = 1

export async function runCommand(command: Command, io: Io, version: string): Promise<number> {
  switch (command.name) {
    case 'help': {
      const spec = command.topic === null ? undefined : commandSpec(command.topic)
      io.out(spec === undefined ? USAGE : commandHelp(spec))
      return EXIT_OK
    }
    case 'version':
      io.out(version)
      return EXIT_OK
    case 'serve':
      return serve(command.config, command.configDefaulted, io)
    case 'validate':
      return validate(command.config, command.json, io)
    case 'demo': {
      const { runDemo } = await import('../demo/demo.js')
      return runDemo(command, io)
    }
    case 'wait':
      return waitForEnd(command.client, command.timeoutMs, command.pollMs, io)
    case 'status':
      if (command.watch) return watch(command.client, command.intervalMs, io)
      return clientCommand(command, io)
    default:
      return clientCommand(command, io)
  }
}

async function validate(file: string, json: boolean, io: Io): Promise<number> {
  const { loadConfigFile } = await import('../config/load.js')
  const result = await loadConfigFile(file)
  if (json) {
    io.out(JSON.stringify({ file, valid: result.ok, code: result.ok ? null : ('CPX_ERR_CONFIG_INVALID' satisfies ErrorCode), problems: result.ok ? [] : result.error }, null, 2))
    return result.ok ? EXIT_OK : EXIT_FAILED
  }
  if (result.ok) {
    const c = result.value
    io.out(`${file}: valid (proxy ${hostPort(c.listen.host, c.listen.port)} -> stable ${c.upstreams.stable}${c.upstreams.canary === null ? '' : `, canary ${c.upstreams.canary}`}; admin ${hostPort(c.admin.host, c.admin.port)})`)
    return EXIT_OK
  }
  for (const issue of result.error) io.err(renderIssue(issue))
  io.err(`${file}: ${result.error.length} problem${result.error.length === 1 ? '' : 's'}`)
  return EXIT_FAILED
}

/** The example config shipped in the package (dist/src/cli/ -> the package root), or null when it is not there. */
export function exampleConfig(): string | null {
  for (const up of ['../../../', '../../']) {
    const file = fileURLToPath(new URL(`${up}${DEFAULT_CONFIG}`, import.meta.url))
    if (existsSync(file)) return file
  }
  return null
}

async function serve(file: string, defaulted: boolean, io: Io): Promise<number> {
  // A worker of listen.workers runs the primary's command line again: it proxies, by what the primary sends it.
  if (cluster.isWorker && process.env.CANARY_PROXY_WORKER === '1') {
    const { runWorker } = await import('../workers/worker.js')
    return runWorker()
  }
  // Run from an installed package, there is no config in the working
  // directory: say where the package's example is and how to start from it.
  if (defaulted && !existsSync(file)) {
    const example = exampleConfig()
    io.err(`canary-proxy serve: no --config given, and ${DEFAULT_CONFIG}: file not found in ${process.cwd()}`)
    if (example !== null) {
      io.err(`  the example config (every key, commented) is ${example}; to start from it:`)
      io.err(`    mkdir -p config && cp ${example} ${DEFAULT_CONFIG}`)
      io.err(`  then set upstreams.stable (and canary) in it, and run canary-proxy serve again`)
    }
    io.err('  or pass --config FILE (or set CANARY_PROXY_CONFIG)')
    return EXIT_FAILED
  }
  const { parseConfigText, readConfigFile } = await import('../config/load.js')
  const text = await readConfigFile(file)
  const result = text.ok ? parseConfigText(text.value) : text
  if (!result.ok) {
    for (const issue of result.error) io.err(renderIssue(issue))
    io.err(`${file}: ${messageOf('CPX_ERR_CONFIG_INVALID')}, not starting (CPX_ERR_CONFIG_INVALID)`)
    return EXIT_FAILED
  }
  // Listen for the signals from the start: one that arrives while the app
  // starts up stops it cleanly as soon as it is up, rather than killing it
  // half-way through opening its state and audit files.
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'))
    process.once('SIGINT', () => resolve('SIGINT'))
  })
  // SIGHUP reads the config again (SPEC "Lifecycle"); one that arrives while
  // starting waits for the app. Without a listener Node would exit at once.
  let reloading: Promise<void> = Promise.resolve()
  let onHangup: () => void = () => undefined
  process.on('SIGHUP', () => onHangup())
  const { buildApp } = await import('../app.js')
  let app
  try {
    // listen.workers above 1: this process is the primary; its workers run this same command line.
    const workers = result.value.listen.workers > 1 && text.ok ? { workers: { exec: process.argv[1] ?? '', args: process.argv.slice(2), configText: text.value } } : {}
    app = await buildApp({ config: result.value, ...workers })
  } catch (error) {
    // An unusable state or audit path: the message names it; no stack trace.
    io.err(`cannot start: ${(error as Error).message}`)
    return EXIT_FAILED
  }
  // From here on an error that escapes every handler is logged and counted, not fatal (src/cli/process-guard.ts).
  const { guardProcess } = await import('./process-guard.js')
  const unguard = guardProcess((error, origin) => app.noteUncaught(error, origin))
  try {
    await app.listen()
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { address?: string; port?: number }
    const address = `${e.address ?? ''}:${e.port ?? ''}`
    io.err(e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL' ? `${messageOf('CPX_ERR_LISTEN', { address, cause: e.code === 'EADDRINUSE' ? 'address already in use' : e.message })} (CPX_ERR_LISTEN)` : `cannot start: ${e.message}`)
    await app.close()
    unguard()
    return EXIT_FAILED
  }
  const running = app
  onHangup = () => {
    reloading = reloading
      .then(() => reloadConfig(file, running, io))
      .catch((error: unknown) => running.log.error({ err: error }, 'SIGHUP: the reload failed; the config before it keeps serving'))
  }
  const signal = await stopped
  await reloading
  app.log.info(`${signal}: draining (not ready, finishing requests in flight, up to ${formatDuration(app.config.listen.drainTimeoutMs)})`)
  // A second signal means "now".
  const now = (): never => process.exit(EXIT_FAILED)
  process.once('SIGTERM', now)
  process.once('SIGINT', now)
  await app.close()
  unguard()
  return EXIT_OK
}

/** SIGHUP: a valid config is applied without dropping a request; an invalid one is refused with validate's messages, the last good one serving on. */
async function reloadConfig(file: string, app: App, io: Io): Promise<void> {
  const { parseConfigText, readConfigFile } = await import('../config/load.js')
  const text = await readConfigFile(file)
  const result = text.ok ? parseConfigText(text.value) : text
  if (!result.ok) {
    for (const issue of result.error) io.err(renderIssue(issue))
    const problems = result.error.map(renderIssue)
    app.events.emit({ type: 'configReload', at: Date.now(), ok: false, problems })
    app.log.error({ problems }, `SIGHUP: ${file} is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}); the last good config keeps serving`)
    return
  }
  const fixed = await app.reload(result.value)
  app.log.info({ restartOnly: fixed }, `SIGHUP: ${file} reloaded${fixed.length === 0 ? '' : `; ${fixed.join(', ')} changed but take effect on restart`}`)
}

async function clientCommand(command: Exclude<Command, { name: 'help' | 'version' | 'serve' | 'validate' | 'demo' | 'wait' }>, io: Io): Promise<number> {
  const { AdminClient, AdminError } = await import('./admin-client.js')
  const client = new AdminClient(command.client)
  try {
    if (command.name === 'events') {
      const { events } = await client.events(command.limit)
      if (command.client.json) io.out(JSON.stringify({ events }, null, 2))
      else if (events.length === 0) io.err('no events yet')
      else for (const e of events) io.out(renderEvent(e, Date.now()))
      return EXIT_OK
    }
    let status: StatusView
    switch (command.name) {
      case 'status':
        status = await client.status()
        break
      case 'set-weight':
        status = await client.setWeight(command.weight)
        break
      case 'start':
        status = await client.rollout('start', command.canary === null ? {} : { canary: command.canary })
        break
      case 'abort':
        status = await client.rollout('abort', command.reason === null ? {} : { reason: command.reason })
        break
      default:
        status = await client.rollout(command.name)
    }
    io.out(command.client.json ? JSON.stringify(status, null, 2) : renderStatus(status, Date.now(), io.style))
    return EXIT_OK
  } catch (error) {
    if (error instanceof AdminError) {
      io.err(`canary-proxy ${command.name}: ${error.message}`)
      return EXIT_FAILED
    }
    throw error
  }
}

/** `status --watch`: a redraw on every update on a terminal; elsewhere a new block (or JSON line) whenever the status changed. Ctrl-C ends it, exit 0. */
async function watch(options: ClientOptions, intervalMs: number, io: Io): Promise<number> {
  const { AdminClient, AdminError } = await import('./admin-client.js')
  const { watchStatus } = await import('./watch.js')
  const client = new AdminClient(options)
  const stop = new AbortController()
  const abort = (): void => stop.abort()
  process.once('SIGINT', abort)
  process.once('SIGTERM', abort)
  let last = ''
  let feed = ''
  try {
    await watchStatus(client, intervalMs, stop.signal, {
      source(source) {
        feed = source === 'stream' ? 'live stream' : `polling every ${formatDuration(intervalMs)}: this proxy has no live stream`
        if (!io.tty || options.json) io.err(`canary-proxy status: watching ${options.admin} (${feed})`)
      },
      status(s) {
        const key = JSON.stringify(s)
        if (options.json) {
          if (key !== last) io.out(key)
        } else if (io.tty) {
          io.clear()
          io.out(renderStatus(s, Date.now(), io.style))
          io.out(io.style.dim(`\nwatching ${options.admin} (${feed}); Ctrl-C to stop`))
        } else if (key !== last) {
          io.out(`${renderStatus(s, Date.now(), io.style)}\n`)
        }
        last = key
      },
      trouble(message) {
        io.err(`canary-proxy status: ${message}; retrying every ${formatDuration(intervalMs)}`)
      },
    })
  } catch (error) {
    if (error instanceof AdminError) {
      io.err(`canary-proxy status: ${error.message}`)
      return EXIT_FAILED
    }
    throw error
  } finally {
    process.off('SIGINT', abort)
    process.off('SIGTERM', abort)
  }
  return EXIT_OK
}

/** For CI pipelines: exit 0 succeeded, 1 rolled back or aborted, 2 timeout. A proxy restart during the wait is ridden out. */
async function waitForEnd(options: ClientOptions, timeoutMs: number | null, pollMs: number, io: Io): Promise<number> {
  const { AdminClient, AdminError } = await import('./admin-client.js')
  const client = new AdminClient(options)
  const started = Date.now()
  const deadline = timeoutMs === null ? Number.POSITIVE_INFINITY : started + timeoutMs
  let reached = false
  let warned = false
  let last = ''
  let status: StatusView | null = null
  for (;;) {
    try {
      status = await client.status()
      reached = true
      warned = false
    } catch (error) {
      if (!(error instanceof AdminError)) throw error
      if (!reached) {
        io.err(`canary-proxy wait: ${error.message}`)
        return EXIT_FAILED
      }
      if (!warned) io.err(`canary-proxy wait: ${error.message}; retrying`)
      warned = true
    }
    if (status !== null) {
      const line = `${status.phase} at ${status.weight}%`
      // Elapsed time, not the clock: CI logs stamp lines themselves.
      if (line !== last && !options.json) io.err(`${span(Date.now() - started).padStart(7)}  ${line}${status.lastDecision === null ? '' : `  (${status.lastDecision.reason})`}`)
      last = line
      if (isEnded(status.phase)) {
        if (options.json) io.out(JSON.stringify(status, null, 2))
        else io.out(`rollout ${status.phase.replace('_', ' ')}: ${status.reason ?? ''}`)
        return status.phase === 'succeeded' ? EXIT_OK : EXIT_FAILED
      }
    }
    const left = deadline - Date.now()
    if (left <= 0) {
      if (options.json && status !== null) io.out(JSON.stringify(status, null, 2))
      io.err(`canary-proxy wait: timed out after ${formatDuration(Date.now() - started)}; the rollout is still ${status?.phase ?? 'unknown'} at ${status?.weight ?? '?'}%`)
      return EXIT_TIMEOUT
    }
    await sleep(Math.min(pollMs, left))
  }
}

/** host:port, with an IPv6 address in brackets as in a URL. */
function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}
