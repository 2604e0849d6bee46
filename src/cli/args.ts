/**
 * argv -> a typed Command: node:util parseArgs tokenises, the table in spec.ts
 * says what each command takes; client options go before or after the command;
 * a mistyped command or option gets a did-you-mean; env fallbacks of the SPEC.
 */
import { parseArgs } from 'node:util'
import { upstreamUrlProblem } from '../core/domain.js'
import { parseDuration } from '../core/duration.js'
import { closest as nearest } from '../core/suggest.js'
import { COMMANDS, DEFAULT_ADMIN, DEFAULT_CONFIG, commandSpec, optionsOf, type CommandSpec, type OptionSpec } from './spec.js'

export { DEFAULT_ADMIN, DEFAULT_CONFIG, USAGE } from './spec.js'

export interface ClientOptions {
  readonly admin: string
  readonly token: string | null
  readonly json: boolean
}

export type Command =
  | { readonly name: 'serve'; readonly config: string; readonly configDefaulted: boolean }
  | { readonly name: 'validate'; readonly config: string; readonly json: boolean }
  | { readonly name: 'status'; readonly client: ClientOptions; readonly watch: boolean; readonly intervalMs: number }
  | { readonly name: 'start'; readonly client: ClientOptions; readonly canary: string | null }
  | { readonly name: 'set-weight'; readonly client: ClientOptions; readonly weight: number }
  | { readonly name: 'pause' | 'resume' | 'promote'; readonly client: ClientOptions }
  | { readonly name: 'abort'; readonly client: ClientOptions; readonly reason: string | null }
  | { readonly name: 'events'; readonly client: ClientOptions; readonly limit: number | null }
  | { readonly name: 'wait'; readonly client: ClientOptions; readonly timeoutMs: number | null; readonly pollMs: number }
  | {
      readonly name: 'demo'
      readonly faulty: boolean
      readonly keep: boolean
      readonly port: number
      readonly adminPort: number
      readonly durationMs: number | null
    }
  | { readonly name: 'help'; readonly topic: string | null }
  | { readonly name: 'version' }

export class UsageError extends Error {
  /** Print the whole usage after the message (an unknown command with no near match: the user needs the list). */
  readonly showUsage: boolean

  constructor(message: string, options: { showUsage?: boolean } = {}) {
    super(message)
    this.showUsage = options.showUsage ?? false
  }
}

type Env = Readonly<Record<string, string | undefined>>
type Values = Readonly<Record<string, string | boolean | undefined>>

/** The options a client command takes that may also stand before the command; the string ones take the next argument. */
const GLOBAL_STRING = new Set(['--admin', '--token'])

export function parseCommand(argv: readonly string[], env: Env): Command {
  const at = commandIndex(argv)
  if (at < 0) {
    if (argv.length === 0 || argv.some((a) => a === '--help' || a === '-h')) return { name: 'help', topic: null }
    if (argv.some((a) => a === '--version' || a === '-v')) return { name: 'version' }
    throw new UsageError(`missing command after ${argv.join(' ')}; run canary-proxy help`, { showUsage: true })
  }
  const name = argv[at] as string
  const before = argv.slice(0, at)
  const after = argv.slice(at + 1)
  if (before.some((a) => a === '--help' || a === '-h') && commandSpec(name) !== undefined) return { name: 'help', topic: name }
  if (name === 'help') {
    const topic = after.find((a) => !a.startsWith('-')) ?? null
    if (topic !== null && commandSpec(topic) === undefined) throw unknownCommand(topic)
    return { name: 'help', topic }
  }
  if (name === 'version') return { name: 'version' }
  const spec = commandSpec(name)
  if (spec === undefined) throw unknownCommand(name)

  // A negative number is a weight (out of range: the admin API says so), not an option.
  const args = [...before, ...after]
  const negative = spec.name === 'set-weight' ? args.findIndex((a) => /^-\.?\d/.test(a)) : -1
  const parsed = parseFor(spec, negative < 0 ? args : args.filter((_, i) => i !== negative))
  if (parsed === null) return { name: 'help', topic: name }
  const { values, positionals } = parsed
  const str = (key: string): string | undefined => (typeof values[key] === 'string' ? (values[key] as string) : undefined)
  const client = (): ClientOptions => clientOptions(name, values, env)

  switch (spec.name) {
    case 'serve': {
      const config = str('config') ?? env.CANARY_PROXY_CONFIG
      return { name: 'serve', config: config ?? DEFAULT_CONFIG, configDefaulted: config === undefined }
    }
    case 'validate': {
      const config = str('config') ?? positionals[0] ?? env.CANARY_PROXY_CONFIG
      if (config === undefined) throw new UsageError('validate: --config FILE is required, e.g. canary-proxy validate --config config/canary-proxy.yaml')
      return { name: 'validate', config, json: values.json === true }
    }
    case 'status':
      return { name: 'status', client: client(), watch: values.watch === true, intervalMs: durationOption('status: --interval', str('interval'), 1_000, '1s') }
    case 'pause':
    case 'resume':
    case 'promote':
      return { name: spec.name, client: client() }
    case 'events':
      return { name: 'events', client: client(), limit: limitOption(str('limit')) }
    case 'start':
      return { name: 'start', client: client(), canary: canaryOption(str('canary')) }
    case 'abort':
      return { name: 'abort', client: client(), reason: str('reason') ?? null }
    case 'set-weight': {
      const text = negative < 0 ? positionals[0] : args[negative]
      if (text === undefined) throw new UsageError('set-weight: the weight N (0..100) is required, e.g. canary-proxy set-weight 25')
      const weight = Number(text)
      if (text.trim() === '' || !Number.isFinite(weight)) throw new UsageError(`set-weight: N must be a number from 0 to 100 (got ${JSON.stringify(text)})`)
      return { name: 'set-weight', client: client(), weight }
    }
    case 'wait': {
      const timeout = str('timeout')
      const timeoutMs = timeout === undefined ? null : parseDuration(timeout)
      if (timeoutMs === null && timeout !== undefined) throw new UsageError(`wait: --timeout must be a duration such as 90s or 10m (got ${JSON.stringify(timeout)})`)
      return { name: 'wait', client: client(), timeoutMs, pollMs: durationOption('wait: --interval', str('interval'), 500, '500ms') }
    }
    case 'demo': {
      const duration = str('duration')
      const durationMs = duration === undefined ? null : parseDuration(duration)
      if (durationMs === null && duration !== undefined) throw new UsageError(`demo: --duration must be a duration such as 2m (got ${JSON.stringify(duration)})`)
      return {
        name: 'demo',
        faulty: values.faulty === true,
        keep: values.keep === true,
        port: portOption('demo: --port', str('port'), 8080),
        adminPort: portOption('demo: --admin-port', str('admin-port'), 9901),
        durationMs,
      }
    }
    default:
      // help and version were answered above.
      throw new UsageError(`${spec.name}: takes no options here`)
  }
}

/** Where the command is: the first argument that is neither an option nor the value of a client option before it; -1 if none. */
function commandIndex(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === '--') return i + 1 < argv.length ? i + 1 : -1
    if (!a.startsWith('-') || a === '-') return i
    if (GLOBAL_STRING.has(a)) i++
  }
  return -1
}

function unknownCommand(name: string): UsageError {
  const near = closest(name, COMMANDS.map((c) => c.name))
  if (near !== null) return new UsageError(`unknown command ${JSON.stringify(name)} (did you mean ${near}?); run canary-proxy help`)
  return new UsageError(`unknown command ${JSON.stringify(name)}; run canary-proxy help`, { showUsage: true })
}

/** Parses a command's arguments against its table; null when --help was asked for. Every problem is one UsageError line. */
function parseFor(spec: CommandSpec, args: readonly string[]): { values: Values; positionals: string[] } | null {
  const known = optionsOf(spec)
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {}
  for (const o of known) options[o.name] = o.short === undefined ? { type: o.type } : { type: o.type, short: o.short }
  // `-canary` would be read as -c -a -n -a -r -y: name the long option meant instead.
  for (const a of args) {
    if (a === '--') break
    if (/^-[a-zA-Z][\w-]+(=.*)?$/.test(a)) {
      const word = a.slice(1).split('=')[0] as string
      const near = known.find((o) => o.name === word) ?? null
      if (near !== null) throw new UsageError(`${spec.name}: unknown option ${a} (did you mean --${near.name}?)`)
    }
  }
  const { tokens } = parseArgs({ args: [...args], options, strict: false, allowPositionals: true, tokens: true })
  const values: Record<string, string | boolean> = {}
  const positionals: string[] = []
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue
    if (token.kind === 'positional') {
      positionals.push(token.value)
      continue
    }
    const option = known.find((o) => o.name === token.name)
    if (option === undefined) throw unknownOption(spec, token.rawName, known)
    if (option.name === 'help') return null
    if (option.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`${spec.name}: ${token.rawName} takes no value (got ${JSON.stringify(token.value)})`)
      values[option.name] = true
      continue
    }
    if (token.value === undefined || (!token.inlineValue && token.value.startsWith('--'))) {
      throw new UsageError(`${spec.name}: ${token.rawName} needs a value: ${token.rawName} ${option.value ?? 'VALUE'}`)
    }
    values[option.name] = token.value
  }
  const allowed = spec.positional === undefined ? 0 : 1
  if (positionals.length > allowed) {
    const extra = positionals[allowed] as string
    const asOption = known.find((o) => o.name === extra)
    const hint = asOption === undefined ? '' : ` (did you mean --${asOption.name}?)`
    throw new UsageError(`${spec.name}: unexpected argument ${JSON.stringify(extra)}${hint}`)
  }
  return { values, positionals }
}

function unknownOption(spec: CommandSpec, raw: string, known: readonly OptionSpec[]): UsageError {
  const word = raw.replace(/^-+/, '')
  const near = closest(word, known.map((o) => o.name))
  if (near !== null) return new UsageError(`${spec.name}: unknown option ${raw} (did you mean --${near}?)`)
  const elsewhere = COMMANDS.filter((c) => c.name !== spec.name && optionsOf(c).some((o) => o.name === word)).map((c) => c.name)
  const where = elsewhere.length === 0 ? '' : elsewhere.length > 3 ? '; it is for the commands that talk to a running proxy' : `; it is an option of ${elsewhere.join(', ')}`
  return new UsageError(`${spec.name}: unknown option ${raw}${where} (canary-proxy ${spec.name} --help lists its options)`)
}

/** The candidate `word` is a typo of (core/suggest.ts), or the one it starts when cut short (`stat`, `--can`). */
export function closest(word: string, candidates: readonly string[]): string | null {
  const prefix = word.length >= 3 ? candidates.filter((c) => c.startsWith(word.toLowerCase())) : []
  if (prefix.length === 1) return prefix[0] ?? null
  return nearest(word, candidates)
}

function clientOptions(name: string, values: Values, env: Env): ClientOptions {
  const fromFlag = typeof values.admin === 'string'
  const admin = fromFlag ? (values.admin as string) : env.CANARY_PROXY_ADMIN || DEFAULT_ADMIN
  if (!isHttpUrl(admin)) {
    const guess = `http://${admin}`
    const hint = !admin.includes('://') && isHttpUrl(guess) ? `; did you mean ${guess}?` : ''
    throw new UsageError(`${name}: ${fromFlag ? '--admin' : 'CANARY_PROXY_ADMIN'} must be an http:// or https:// URL such as ${DEFAULT_ADMIN} (got ${JSON.stringify(admin)})${hint}`)
  }
  return {
    admin,
    token: typeof values.token === 'string' ? values.token : env.CANARY_PROXY_ADMIN_TOKEN || null,
    json: values.json === true,
  }
}

/**
 * A canary written without its scheme (`localhost:20002`) parses as a URL of
 * scheme "localhost:", which the admin API would refuse as "not localhost://";
 * name the likely intent instead. A URL with a scheme goes to the admin API,
 * which has the last word.
 */
function canaryOption(text: string | undefined): string | null {
  if (text === undefined) return null
  if (!text.includes('://')) {
    const guess = `http://${text}`
    const hint = upstreamUrlProblem(guess) === null ? `; did you mean ${guess}?` : ''
    throw new UsageError(`start: --canary needs an http:// or https:// URL (got ${JSON.stringify(text)})${hint}`)
  }
  return text
}

function limitOption(text: string | undefined): number | null {
  if (text === undefined) return null
  if (!/^[0-9]+$/.test(text) || Number(text) < 1) throw new UsageError(`events: --limit must be a whole number of events, 1 or more (got ${JSON.stringify(text)})`)
  return Number(text)
}

function durationOption(label: string, text: string | undefined, fallback: number, example: string): number {
  if (text === undefined) return fallback
  const ms = parseDuration(text)
  if (ms === null || ms <= 0) throw new UsageError(`${label} must be a duration such as ${example} (got ${JSON.stringify(text)})`)
  return ms
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text)
    return url.protocol === 'http:' || url.protocol === 'https:'
  } catch {
    return false
  }
}

function portOption(label: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  const port = Number(text)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`${label} must be a port number 0..65535 (got ${JSON.stringify(text)})`)
  return port
}
