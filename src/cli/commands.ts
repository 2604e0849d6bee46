/**
 * One function per CLI command; each returns the process exit code.
 *
 * Heavy modules are imported by the commands that need them: a client command
 * (`status`, `wait` polling in CI) loads the HTTP client only, not the proxy,
 * the admin server and the config validator, so it starts in a fraction of the time.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { App } from '../app.js'
import { renderIssue } from '../config/issues.js'
import { formatDuration } from '../core/duration.js'
import { messageOf, type ErrorCode } from '../core/errors.js'
import type { StatusView } from '../api/wire.js'
import type { ClientOptions, Command } from './args.js'
import { USAGE } from './args.js'
import { renderEvent, renderStatus } from './render.js'

export interface Io {
  out(line: string): void
  err(line: string): void
}

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
    case 'help':
      io.out(USAGE)
      return EXIT_OK
    case 'version':
      io.out(version)
      return EXIT_OK
    case 'serve':
      return serve(command.config, io)
    case 'validate':
      return validate(command.config, command.json, io)
    case 'demo': {
      const { runDemo } = await import('../demo/demo.js')
      return runDemo(command, io)
    }
    case 'wait':
      return waitForEnd(command.client, command.timeoutMs, command.pollMs, io)
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

async function serve(file: string, io: Io): Promise<number> {
  const { loadConfigFile } = await import('../config/load.js')
  const result = await loadConfigFile(file)
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
    app = await buildApp({ config: result.value })
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
  const { loadConfigFile } = await import('../config/load.js')
  const result = await loadConfigFile(file)
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
      const { events } = await client.events()
      if (command.client.json) io.out(JSON.stringify({ events }, null, 2))
      else for (const e of events) io.out(renderEvent(e))
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
    io.out(command.client.json ? JSON.stringify(status, null, 2) : renderStatus(status))
    return EXIT_OK
  } catch (error) {
    if (error instanceof AdminError) {
      io.err(`canary-proxy ${command.name}: ${error.message}`)
      return EXIT_FAILED
    }
    throw error
  }
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
      if (line !== last && !options.json) io.err(`${new Date().toISOString()}  ${line}${status.lastDecision === null ? '' : `  (${status.lastDecision.reason})`}`)
      last = line
      if (status.phase === 'succeeded' || status.phase === 'rolled_back' || status.phase === 'aborted') {
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
