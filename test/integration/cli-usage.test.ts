/**
 * The compiled CLI's help: the usage, and each command's own (usage, options
 * with defaults and env variables, an example); version; an unknown command.
 * Reading the command line (did-you-mean, client options anywhere): cli-args.test.ts.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { REPO, inBatches, linesWiderThan, runCli } from '../helpers/cli.js'

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
  const results = await inBatches(COMMANDS.map((c) => () => runCli(t, [c, '--help'])))
  // `help COMMAND` and `-h` take one path for every command: a few of them show it.
  const topics = ['serve', 'status', 'wait']
  const [general, short, ...byTopic] = await Promise.all([runCli(t, ['help']), runCli(t, ['status', '-h']), ...topics.map((c) => runCli(t, ['help', c]))])
  for (const [i, command] of topics.entries()) t.equal(byTopic[i]!.stdout, results[COMMANDS.indexOf(command)]!.stdout, `help ${command} prints the same as ${command} --help`)
  for (const [i, command] of COMMANDS.entries()) {
    const flag = results[i]!
    t.equal(flag.code, 0, `${command} --help exits 0`)
    t.not(flag.stdout, general.stdout, `${command} --help is not the general usage`)
    t.match(flag.stdout, new RegExp(`^Usage: canary-proxy ${command}\\b`, 'm'), `${command}: its usage line`)
    t.match(flag.stdout, /^Options\n/m, `${command}: its options`)
    t.match(flag.stdout, new RegExp(`^Examples?\\n  canary-proxy ${command}\\b`, 'm'), `${command}: an example`)
    t.same(linesWiderThan(flag.stdout, 100), [], `${command} --help fits 100 columns`)
  }
  const help = (command: string): string => results[COMMANDS.indexOf(command)]!.stdout
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
