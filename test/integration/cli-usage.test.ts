/**
 * How the compiled CLI reads its command line: the usage, each command's
 * --help, client options before or after the command, did-you-mean for
 * mistyped commands and options, and usage errors (one line, exit 1).
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { REPO, clientSetup, inBatches, linesWiderThan, runCli, statusJson } from '../helpers/cli.js'
import { closedPort } from '../helpers/upstreams.js'

const COMMANDS = ['serve', 'validate', 'demo', 'status', 'start', 'set-weight', 'pause', 'resume', 'promote', 'abort', 'events', 'wait']

t.test('help, version, unknown commands and options', async (t) => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }
  const [help, dashHelp, commandHelp, version, unknown, badOption, badPort] = await Promise.all([
    runCli(t, ['help']),
    runCli(t, ['--help']),
    runCli(t, ['status', '--help']),
    runCli(t, ['--version']),
    runCli(t, ['deploy']),
    runCli(t, ['status', '--bogus']),
    runCli(t, ['demo', '--port', 'http']),
  ])
  t.equal(help.code, 0)
  t.match(help.stdout, /^Usage: canary-proxy <command> \[options\]/m)
  // Every command of the SPEC is in the usage.
  for (const command of ['serve', 'validate', 'status', 'start', 'set-weight', 'pause', 'resume', 'promote', 'abort', 'wait', 'demo']) {
    t.match(help.stdout, new RegExp(`^\\s+(\\S+ \\| )*${command}\\b`, 'm'), `usage lists ${command}`)
  }
  for (const option of ['--admin URL', '--token T', '--json', '--config FILE', '--canary URL', '--timeout', '--faulty', '--port N', '--admin-port N', '--watch', '--limit N', '--keep']) {
    t.match(help.stdout, option, `usage mentions ${option}`)
  }
  for (const env of ['CANARY_PROXY_CONFIG', 'CANARY_PROXY_ADMIN', 'CANARY_PROXY_ADMIN_TOKEN']) t.match(help.stdout, env)
  t.same(linesWiderThan(help.stdout, 100), [], 'the usage fits 100 columns')
  t.equal(dashHelp.code, 0)
  t.equal(dashHelp.stdout, help.stdout)
  t.equal(commandHelp.code, 0)
  t.match(commandHelp.stdout, /^Usage: canary-proxy/m)
  t.equal(version.code, 0)
  t.equal(version.stdout.trim(), pkg.version)

  t.not(unknown.code, 0, 'an unknown command fails')
  t.equal(unknown.stdout, '')
  t.match(unknown.stderr, /unknown command "deploy"/)
  t.match(unknown.stderr, /^Usage: canary-proxy <command> \[options\]/m, 'and, with no near match, prints the usage')
  t.not(badOption.code, 0, 'an unknown option fails')
  t.match(badOption.stderr, /status: .*--bogus/)
  t.not(badPort.code, 0)
  t.match(badPort.stderr, /--port must be a port number 0\.\.65535 \(got "http"\)/)
})

t.test('each command has its own help: usage, options with defaults and env variables, an example', async (t) => {
  const results = await inBatches(COMMANDS.flatMap((c) => [() => runCli(t, [c, '--help']), () => runCli(t, ['help', c])]))
  const [general, short] = await Promise.all([runCli(t, ['help']), runCli(t, ['status', '-h'])])
  for (const [i, command] of COMMANDS.entries()) {
    const [flag, topic] = results.slice(i * 2, i * 2 + 2) as [typeof general, typeof general]
    t.equal(flag.code, 0, `${command} --help exits 0`)
    t.equal(topic.stdout, flag.stdout, `help ${command} prints the same as ${command} --help`)
    t.not(flag.stdout, general.stdout, `${command} --help is not the general usage`)
    t.match(flag.stdout, new RegExp(`^Usage: canary-proxy ${command}\\b`, 'm'), `${command}: its usage line`)
    t.match(flag.stdout, /^Options\n/m, `${command}: its options`)
    t.match(flag.stdout, new RegExp(`^Examples?\\n  canary-proxy ${command}\\b`, 'm'), `${command}: an example`)
    t.same(linesWiderThan(flag.stdout, 100), [], `${command} --help fits 100 columns`)
  }
  const help = (command: string): string => results[COMMANDS.indexOf(command) * 2]!.stdout
  t.equal(short.stdout, help('status'), '-h is --help')
  t.match(help('status'), /^\s+--admin URL\s+.*\(default http:\/\/127\.0\.0\.1:9901; env CANARY_PROXY_ADMIN\)$/m, 'a client option with its default and env variable')
  t.match(help('status'), /^\s+--token T\s+.*\(env CANARY_PROXY_ADMIN_TOKEN\)$/m)
  t.match(help('status'), /^\s+--watch\s+\S/m)
  t.match(help('status'), /^\s+--interval D\s+.*\(default 1s\)$/m)
  t.match(help('serve'), /^\s+-c, --config FILE\s+.*\(default config\/canary-proxy\.yaml; env CANARY_PROXY_CONFIG\)$/m)
  t.notMatch(help('serve'), /--admin/, 'serve does not talk to an admin API')
  t.match(help('wait'), /^\s+--interval D\s+.*\(default 500ms\)$/m)
  t.match(help('demo'), /^\s+--port N\s+.*\(default 8080\)$/m)
  t.match(help('demo'), /^\s+--keep\s+\S/m)
  t.match(help('events'), /^\s+--limit N\s+\S/m)
  t.match(help('set-weight'), /^Argument\n\s+N\s+/m)

  const unknownTopic = await runCli(t, ['help', 'stauts'])
  t.equal(unknownTopic.code, 1)
  t.match(unknownTopic.stderr, /unknown command "stauts" \(did you mean status\?\)/)
})

t.test('did you mean: a mistyped command or option is named with its likely intent, exit 1, one line', async (t) => {
  const cases: { args: string[]; message: RegExp }[] = [
    { args: ['valdate', '--config', 'x.yaml'], message: /^canary-proxy: unknown command "valdate" \(did you mean validate\?\)/ },
    { args: ['stauts'], message: /unknown command "stauts" \(did you mean status\?\)/ },
    { args: ['stat'], message: /unknown command "stat" \(did you mean status\?\)/ },
    { args: ['start', '--canry', 'http://127.0.0.1:1'], message: /^canary-proxy start: unknown option --canry \(did you mean --canary\?\)$/m },
    { args: ['status', '--wacth'], message: /status: unknown option --wacth \(did you mean --watch\?\)/ },
    { args: ['status', '-watch'], message: /status: unknown option -watch \(did you mean --watch\?\)/ },
    { args: ['status', 'watch'], message: /status: unexpected argument "watch" \(did you mean --watch\?\)/ },
    { args: ['wait', '--timout', '1m'], message: /wait: unknown option --timout \(did you mean --timeout\?\)/ },
    { args: ['demo', '--fauly'], message: /demo: unknown option --fauly \(did you mean --faulty\?\)/ },
    { args: ['status', '--canary', 'http://127.0.0.1:1'], message: /status: unknown option --canary; it is an option of start/ },
    { args: ['serve', '--admin', 'http://127.0.0.1:1'], message: /serve: unknown option --admin; it is for the commands that talk to a running proxy/ },
    { args: ['start', '--canary'], message: /start: --canary needs a value: --canary URL/ },
    { args: ['status', '--json=yes'], message: /status: --json takes no value \(got "yes"\)/ },
    { args: ['events', '--limit', '0'], message: /events: --limit must be a whole number of events, 1 or more \(got "0"\)/ },
    { args: ['status', '--watch', '--interval', 'soon'], message: /status: --interval must be a duration such as 1s \(got "soon"\)/ },
    { args: ['--json'], message: /missing command/ },
  ]
  const results = await inBatches(cases.map((c) => () => runCli(t, c.args)))
  for (const [i, c] of cases.entries()) {
    const r = results[i]!
    const name = c.args.join(' ')
    t.equal(r.code, 1, `${name}: exit 1 (a usage error; 2 is only wait's timeout)`)
    t.match(r.stderr, c.message, `${name}: ${r.stderr.trim().split('\n')[0]}`)
    if (name !== '--json') t.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line`)
    t.equal(r.stdout, '', `${name}: nothing on stdout`)
    t.notMatch(r.stderr, /\n\s+at /, `${name}: no stack trace`)
  }
})

t.test('client options go before or after the command', async (t) => {
  const s = await clientSetup(t, { admin: { host: '127.0.0.1', port: 0, token: 'tok-123' } })
  const a = s.app.adminUrl
  const [before, after, mixed, equals] = await Promise.all([
    runCli(t, ['--admin', a, 'status', '--json']),
    runCli(t, ['status', '--admin', a, '--json']),
    runCli(t, ['--json', '--admin', a, 'status']),
    runCli(t, [`--admin=${a}`, '--json', 'status']),
  ])
  for (const [name, r] of [['before', before], ['after', after], ['mixed', mixed], ['--admin=URL before', equals]] as const) {
    t.equal(r.code, 0, `${name}: ${r.stderr}`)
    t.equal(statusJson(r).stable.url, s.stable.url, `${name}: the status of that proxy, as JSON`)
  }
  const tokenBefore = await runCli(t, ['--token', 'tok-123', '--admin', a, 'set-weight', '20'])
  t.equal(tokenBefore.code, 0, tokenBefore.stderr)
  t.match(tokenBefore.stdout, /^phase\s+paused\s+weight 20%/m)
  const negative = await runCli(t, ['--admin', a, '--token', 'tok-123', 'set-weight', '-5'])
  t.equal(negative.code, 1)
  t.match(negative.stderr, /weight.*0.*100/, 'a negative weight after global options is still a weight')
  const helpBefore = await runCli(t, ['--admin', a, '--help', 'status'])
  t.match(helpBefore.stdout, /^Usage: canary-proxy status/m, '--help before the command explains the command')
  t.match(s.app.app.controller.status(), { phase: 'paused', weight: 20 })
})

t.test('start --canary without a scheme: it needs http://, and the likely URL is named; nothing changes', async (t) => {
  const s = await clientSetup(t)
  const [hostPort, host] = await Promise.all([s.cli(['start', '--canary', 'localhost:20002']), s.cli(['start', '--canary', '127.0.0.1'])])
  t.equal(hostPort.code, 1)
  t.match(hostPort.stderr, /^canary-proxy start: --canary needs an http:\/\/ or https:\/\/ URL \(got "localhost:20002"\); did you mean http:\/\/localhost:20002\?$/m)
  t.notMatch(hostPort.stderr, /localhost:\/\//, 'not "localhost://"')
  t.equal(host.code, 1)
  t.match(host.stderr, /did you mean http:\/\/127\.0\.0\.1\?/)
  const adminNoScheme = await runCli(t, ['status', '--admin', new URL(s.app.adminUrl).host])
  t.match(adminNoScheme.stderr, `did you mean ${s.app.adminUrl}?`)
  t.match(s.app.app.controller.status(), { phase: 'idle', weight: 0 }, 'nothing changed')
})

t.test('client commands start light: they load neither the proxy nor the config validator', async (t) => {
  const trace = `--import=${pathToFileURL(join(REPO, 'test', 'helpers', 'module-trace.mjs')).href}`
  const dead = `http://127.0.0.1:${await closedPort()}`
  const commands = [['status'], ['events', '--limit', '3'], ['set-weight', '5'], ['wait', '--timeout', '1s'], ['status', '--watch']]
  const results = await inBatches(commands.map((args) => () => runCli(t, [...args, '--admin', dead], { env: { NODE_OPTIONS: trace } })))
  for (const [i, r] of results.entries()) {
    const name = commands[i]!.join(' ')
    const loaded = r.stderr.split('\n').filter((l) => l.startsWith('loaded '))
    t.ok(loaded.some((l) => l.endsWith('/dist/src/cli/admin-client.js')), `${name}: the trace works (it loaded the admin client)`)
    const heavy = loaded.filter((l) => /\/dist\/src\/(app|log|config\/(load|schema)|proxy\/|admin\/|rollout\/|stats\/|state\/)|\/node_modules\/(fastify|ajv|yaml|pino|prom-client|hdr-histogram-js)\//.test(l))
    t.same(heavy, [], `${name}: none of the proxy, the admin server or the config validator`)
    t.equal(r.code, 1, `${name}: exit 1, the admin API is not there`)
  }
})
