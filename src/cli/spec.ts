/** The CLI's commands and options as data: the parser, the general usage and each command's --help are all made from this table. */
import { WIDTH, wrap } from './terminal.js'

export const DEFAULT_CONFIG = 'config/canary-proxy.yaml'
export const DEFAULT_ADMIN = 'http://127.0.0.1:9901'

export interface OptionSpec {
  /** The long name, without `--`. */
  readonly name: string
  readonly type: 'string' | 'boolean'
  readonly short?: string
  /** The value's placeholder in help texts: URL, FILE, N, D, T, TEXT. */
  readonly value?: string
  readonly help: string
  readonly default?: string
  readonly env?: string
}

export type CommandName = 'serve' | 'validate' | 'demo' | 'status' | 'start' | 'set-weight' | 'pause' | 'resume' | 'promote' | 'abort' | 'events' | 'wait' | 'help' | 'version'

export interface CommandSpec {
  readonly name: CommandName
  readonly group: 'proxy' | 'rollout' | 'other'
  /** What follows the name in the usage, client options left out. */
  readonly synopsis: string
  /** The general usage's text for this command (joined, then wrapped to fit). */
  readonly summary: readonly string[]
  /** The first lines of `COMMAND --help`. */
  readonly about: readonly string[]
  readonly options: readonly OptionSpec[]
  /** Takes --admin, --token and --json (a command that talks to a running proxy). */
  readonly client: boolean
  /** The positional argument it takes, if any. */
  readonly positional?: { readonly name: string; readonly help: string }
  readonly examples: readonly string[]
}

export const CLIENT_OPTIONS: readonly OptionSpec[] = [
  { name: 'admin', type: 'string', value: 'URL', help: 'the admin API of the proxy', default: DEFAULT_ADMIN, env: 'CANARY_PROXY_ADMIN' },
  { name: 'token', type: 'string', value: 'T', help: 'bearer token for changes; reads need none', env: 'CANARY_PROXY_ADMIN_TOKEN' },
  { name: 'json', type: 'boolean', help: 'machine-readable output: the admin API\'s JSON' },
]

export const HELP_OPTION: OptionSpec = { name: 'help', type: 'boolean', short: 'h', help: 'this help' }

const config = (help: string, withDefault: boolean): OptionSpec => ({
  name: 'config',
  type: 'string',
  short: 'c',
  value: 'FILE',
  help,
  ...(withDefault ? { default: DEFAULT_CONFIG } : {}),
  env: 'CANARY_PROXY_CONFIG',
})

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'serve',
    group: 'proxy',
    synopsis: '[--config FILE]',
    summary: [`run the proxy (default ${DEFAULT_CONFIG}; env CANARY_PROXY_CONFIG)`],
    about: ['Runs the proxy: the data plane and the admin API, until SIGTERM or SIGINT (then drains).', 'SIGHUP reads the config again.'],
    options: [config('the config file', true)],
    client: false,
    examples: ['canary-proxy serve --config config/canary-proxy.yaml'],
  },
  {
    name: 'validate',
    group: 'proxy',
    synopsis: '--config FILE [--json]',
    summary: ['check a config: exit 0 if valid, else 1 and one line per problem'],
    about: ['Checks a config without starting anything: exit 0 if valid, else exit 1 and one line per', 'problem on stderr, naming the key path (rollout.steps[1]: must be <= 100).'],
    options: [config('the config file (or give it as the argument)', false), { name: 'json', type: 'boolean', help: 'print {file, valid, problems} as JSON' }],
    client: false,
    positional: { name: 'FILE', help: 'the config file, instead of --config' },
    examples: ['canary-proxy validate --config config/canary-proxy.yaml'],
  },
  {
    name: 'demo',
    group: 'proxy',
    synopsis: '[--faulty] [--keep] [--port N] [--admin-port N] [--duration D]',
    summary: ['sample stable and canary upstreams, generated traffic and a whole', 'rollout, with live progress and a summary (--faulty: a rollback)'],
    about: [
      'A self-contained demo: sample stable (v1) and canary (v2) upstreams, ~200 req/s of generated',
      'traffic and the proxy, with a whole rollout (5% -> 25% -> 50% -> 100% -> bake, about 35s)',
      'shown live. It ends by itself after success or rollback, with a summary.',
    ],
    options: [
      { name: 'faulty', type: 'boolean', help: 'a canary that starts failing mid-rollout: it is rolled back' },
      { name: 'keep', type: 'boolean', help: 'stay up after the end (to try status, events, the dashboard) until Ctrl-C' },
      { name: 'port', type: 'string', value: 'N', help: 'the proxy port', default: '8080' },
      { name: 'admin-port', type: 'string', value: 'N', help: 'the admin API port', default: '9901' },
      { name: 'duration', type: 'string', value: 'D', help: 'stop after D (such as 2m) even if the rollout is still going' },
    ],
    client: false,
    examples: ['canary-proxy demo --faulty'],
  },
  {
    name: 'status',
    group: 'rollout',
    synopsis: '[--watch] [--interval D]',
    summary: ['phase, weight, step, per-side requests / error rate / p50 / p99, checks', '(--watch: redraw on every change until Ctrl-C)'],
    about: ['Phase, weight and step, each side\'s requests, error rate, p50 and p99 over the window, and', 'the last decision with each check (observed vs threshold, over n).'],
    options: [
      { name: 'watch', type: 'boolean', help: 'redraw on every change until Ctrl-C (the live stream, or polling every --interval)' },
      { name: 'interval', type: 'string', value: 'D', help: 'how often --watch polls a proxy without the live stream', default: '1s' },
    ],
    client: true,
    examples: ['canary-proxy status --watch --admin http://127.0.0.1:9901'],
  },
  {
    name: 'start',
    group: 'rollout',
    synopsis: '[--canary URL]',
    summary: ['start a rollout towards URL (or the canary already known)'],
    about: ['Starts a new rollout towards the canary at URL (or the canary already configured).', 'Refused (exit 1) while a rollout is under way.'],
    options: [{ name: 'canary', type: 'string', value: 'URL', help: 'the canary upstream, http:// or https://' }],
    client: true,
    examples: ['canary-proxy start --canary http://127.0.0.1:9003'],
  },
  {
    name: 'set-weight',
    group: 'rollout',
    synopsis: 'N',
    summary: ['set the canary weight to N (0..100, steps of 0.01); pauses automation'],
    about: ['Sets the canary weight to N percent (0..100, at most two decimals) and pauses the', 'automation there (resume continues). Needs a canary.'],
    options: [],
    client: true,
    positional: { name: 'N', help: 'the weight in percent, 0..100' },
    examples: ['canary-proxy set-weight 12.5'],
  },
  {
    name: 'pause',
    group: 'rollout',
    synopsis: '',
    summary: ['hold the weight where it is (the checks go on)'],
    about: ['Holds the rollout at its weight; the checks go on and a breach still rolls back.'],
    options: [],
    client: true,
    examples: ['canary-proxy pause'],
  },
  {
    name: 'resume',
    group: 'rollout',
    synopsis: '',
    summary: ['continue a paused rollout'],
    about: ['Continues a paused rollout (also a `pause: true` step). Refused when nothing is paused.'],
    options: [],
    client: true,
    examples: ['canary-proxy resume'],
  },
  {
    name: 'promote',
    group: 'rollout',
    synopsis: '',
    summary: ['go straight to 100% and success: the canary becomes the stable'],
    about: ['Skips the remaining steps and the bake: the canary becomes the new stable at once.'],
    options: [],
    client: true,
    examples: ['canary-proxy promote'],
  },
  {
    name: 'abort',
    group: 'rollout',
    synopsis: '[--reason TEXT]',
    summary: ['weight 0, phase aborted'],
    about: ['Stops the rollout: canary weight 0, phase aborted, with the reason recorded.'],
    options: [{ name: 'reason', type: 'string', value: 'TEXT', help: 'why, kept in the status and the audit log' }],
    client: true,
    examples: ['canary-proxy abort --reason "bad build 1234"'],
  },
  {
    name: 'events',
    group: 'rollout',
    synopsis: '[--limit N]',
    summary: ['the recent transitions and admin actions, newest last'],
    about: ['The recent transitions and admin actions (who, what, from, to, why), newest last.'],
    options: [{ name: 'limit', type: 'string', value: 'N', help: 'only the last N events' }],
    client: true,
    examples: ['canary-proxy events --limit 10'],
  },
  {
    name: 'wait',
    group: 'rollout',
    synopsis: '[--timeout D] [--interval D]',
    summary: ['block until the rollout ends: exit 0 succeeded, 1 rolled back or', 'aborted, 2 timeout (polls every --interval, default 500ms)'],
    about: ['Blocks until the rollout ends, for CI pipelines: exit 0 succeeded, 1 rolled back or aborted,', '2 timeout. Progress goes to stderr; a proxy restart during the wait is ridden out.'],
    options: [
      { name: 'timeout', type: 'string', value: 'D', help: 'give up after D (such as 90s or 10m): exit 2' },
      { name: 'interval', type: 'string', value: 'D', help: 'how often to poll', default: '500ms' },
    ],
    client: true,
    examples: ['canary-proxy wait --timeout 15m', 'canary-proxy start --canary "$CANARY_URL" && canary-proxy wait --timeout 15m'],
  },
  {
    name: 'help',
    group: 'other',
    synopsis: '[COMMAND]',
    summary: ['this text, or a command\'s options and an example (also --help, -h)'],
    about: ['The general usage, or one command\'s usage, options and example.'],
    options: [],
    client: false,
    positional: { name: 'COMMAND', help: 'the command to explain' },
    examples: ['canary-proxy help status'],
  },
  {
    name: 'version',
    group: 'other',
    synopsis: '',
    summary: ['the version (also --version, -v)'],
    about: ['Prints the version.'],
    options: [],
    client: false,
    examples: ['canary-proxy version'],
  },
]

export function commandSpec(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name)
}

/** Every option a command accepts, --help included. */
export function optionsOf(spec: CommandSpec): readonly OptionSpec[] {
  return [...spec.options, ...(spec.client ? CLIENT_OPTIONS : []), HELP_OPTION]
}

const COLUMN = 33

/** `left` then `text` in a column from `column` on, wrapped to WIDTH; on a line of its own when `left` reaches the column. */
function entry(left: string, text: string, column = COLUMN): string[] {
  const pad = ' '.repeat(column)
  const body = wrap(text, WIDTH - column).map((l) => `${pad}${l}`)
  if (left.length >= column - 1) return [left, ...body]
  const [first = '', ...more] = body
  return [`${left.padEnd(column)}${first.slice(column)}`, ...more]
}

function usageLine(spec: CommandSpec): string {
  return `  ${spec.name}${spec.synopsis === '' ? '' : ` ${spec.synopsis}`}`
}

export const USAGE: string = [
  'canary-proxy: a reverse proxy that releases a new version of a service safely',
  '',
  'Usage: canary-proxy <command> [options]',
  '',
  'Proxy',
  ...COMMANDS.filter((c) => c.group === 'proxy').flatMap((c) => entry(usageLine(c), c.summary.join(' '))),
  '',
  "Rollout (talk to a running proxy's admin API)",
  ...COMMANDS.filter((c) => c.group === 'rollout').flatMap((c) => entry(usageLine(c), c.summary.join(' '))),
  '',
  'Client options (before or after the command)',
  ...CLIENT_OPTIONS.flatMap((o) => entry(`  ${optionLeft(o)}`, optionHelp(o), 18)),
  '',
  'Other',
  ...COMMANDS.filter((c) => c.group === 'other').flatMap((c) => entry(usageLine(c), c.summary.join(' '))),
  '',
  'Run canary-proxy help COMMAND (or COMMAND --help) for its options and an example.',
  '',
].join('\n')

function optionLeft(o: OptionSpec): string {
  const long = `--${o.name}${o.value === undefined ? '' : ` ${o.value}`}`
  return o.short === undefined ? long : `-${o.short}, ${long}`
}

function optionHelp(o: OptionSpec): string {
  const notes = [o.default === undefined ? null : `default ${o.default}`, o.env === undefined ? null : `env ${o.env}`].filter((n) => n !== null)
  return notes.length === 0 ? o.help : `${o.help} (${notes.join('; ')})`
}

/** `canary-proxy COMMAND --help`: what it does, its usage, every option with its default and env variable, an example. */
export function commandHelp(spec: CommandSpec): string {
  const options = optionsOf(spec)
  const client = spec.client ? ' [--admin URL] [--token T] [--json]' : ''
  const synopsis = `${spec.synopsis === '' ? '' : ` ${spec.synopsis}`}${client}`
  const column = Math.max(...options.map((o) => optionLeft(o).length), spec.positional?.name.length ?? 0) + 4
  const lines = [
    `canary-proxy ${spec.name}`,
    ...spec.about.map((l) => `  ${l}`),
    '',
    `Usage: canary-proxy ${spec.name}${synopsis}`,
    '',
    ...(spec.positional === undefined ? [] : ['Argument', ...entry(`  ${spec.positional.name}`, spec.positional.help, column), '']),
    'Options',
    ...options.flatMap((o) => entry(`  ${optionLeft(o)}`, optionHelp(o), column)),
    '',
    spec.examples.length === 1 ? 'Example' : 'Examples',
    ...spec.examples.map((e) => `  ${e}`),
    '',
  ]
  return lines.join('\n')
}
