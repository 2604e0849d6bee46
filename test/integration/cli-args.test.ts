/**
 * How the compiled CLI reads its command line: did-you-mean for mistyped
 * commands and options, usage errors (one line, exit 1), client options before
 * or after the command, a canary URL without its scheme. What a client
 * command loads: cli-startup.test.ts.
 */
import t from 'tap'
import { clientSetup, inBatches, runCli, statusJson } from '../helpers/cli.js'

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
  t.match(s.app.app.status(), { phase: 'paused', weight: 20 })
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
  t.match(s.app.app.status(), { phase: 'idle', weight: 0 }, 'nothing changed')
})
