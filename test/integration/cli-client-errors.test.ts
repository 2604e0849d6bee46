/**
 * The client commands of the compiled CLI when something is wrong: bad input,
 * refused actions, the admin API unreachable or not an admin API, tokens; and
 * `--admin` / `CANARY_PROXY_ADMIN`.
 */
import t from 'tap'
import { admin } from '../helpers/app.js'
import { clientSetup, runCli, statusJson } from '../helpers/cli.js'
import { closedPort, startUpstream } from '../helpers/upstreams.js'

t.test('set-weight: a bad N gets a clear message and a non-zero exit, and changes nothing', async (t) => {
  const s = await clientSetup(t)
  const cases: { args: string[]; message: RegExp; code: number }[] = [
    { args: ['set-weight', '150'], message: /weight/i, code: 1 },
    { args: ['set-weight', '12.345'], message: /weight.*decimal|decimal.*weight/i, code: 1 },
    { args: ['set-weight', '-5'], message: /^(?!.*Unknown option).*weight.*0.*100/im, code: 1 },
    { args: ['set-weight', 'abc'], message: /N must be a number from 0 to 100 \(got "abc"\)/, code: 1 },
    { args: ['set-weight'], message: /the weight N \(0\.\.100\) is required/, code: 1 },
  ]
  const results = await Promise.all(cases.map((c) => s.cli(c.args)))
  for (const [i, c] of cases.entries()) {
    const r = results[i]!
    t.not(r.code, 0, `${c.args.join(' ')}: non-zero exit`)
    t.equal(r.code, c.code, `${c.args.join(' ')}: exit ${c.code}`)
    t.match(r.stderr, c.message, `${c.args.join(' ')}: ${r.stderr.trim()}`)
    t.equal(r.stderr.trim().split('\n').length, 1, `${c.args.join(' ')}: one line, not a stack trace`)
    t.equal(r.stdout, '')
  }
  t.match(s.app.app.status(), { phase: 'idle', weight: 0 }, 'nothing changed')
})

t.test('a refused action (409) prints the reason and exits 1', async (t) => {
  const s = await clientSetup(t)
  const [resume, pause, abort] = await Promise.all([s.cli(['resume']), s.cli(['pause']), s.cli(['abort'])])
  for (const [name, r] of [['resume', resume], ['pause', pause], ['abort', abort]] as const) {
    t.equal(r.code, 1, `${name} exits 1`)
    t.match(r.stderr, new RegExp(`^canary-proxy ${name}: refused \\(409\\): \\S`), `${name}: ${r.stderr.trim()}`)
    t.equal(r.stdout, '')
  }
  t.match(resume.stderr, /nothing is paused/)
  t.equal((await s.cli(['start'])).code, 0)
  const again = await s.cli(['start'])
  t.equal(again.code, 1, 'start while a rollout is under way exits 1')
  t.match(again.stderr, /refused \(409\): a rollout is already under way/)
})

t.test('start --canary with a URL that is not http: 400 naming the field, exit 1', async (t) => {
  const s = await clientSetup(t)
  const r = await s.cli(['start', '--canary', 'ftp://127.0.0.1:1'])
  t.equal(r.code, 1)
  t.match(r.stderr, /refused \(400\): .*canary/)
  t.match(s.app.app.status(), { phase: 'idle' })
})

t.test('CANARY_PROXY_ADMIN names the admin API; --admin wins over it', async (t) => {
  const s = await clientSetup(t)
  const dead = `http://127.0.0.1:${await closedPort()}`
  const [fromEnv, flagWins] = await Promise.all([
    runCli(t, ['status', '--json'], { env: { CANARY_PROXY_ADMIN: s.app.adminUrl } }),
    runCli(t, ['status', '--json', '--admin', s.app.adminUrl], { env: { CANARY_PROXY_ADMIN: dead } }),
  ])
  t.equal(fromEnv.code, 0, fromEnv.stderr)
  t.equal(statusJson(fromEnv).stable.url, s.stable.url)
  t.equal(flagWins.code, 0, flagWins.stderr)
  // A trailing slash is fine too.
  const slash = await runCli(t, ['status', '--admin', `${s.app.adminUrl}/`])
  t.equal(slash.code, 0, slash.stderr)
})

t.test('the admin API unreachable: a clear message naming the URL, exit 1', async (t) => {
  const dead = `http://127.0.0.1:${await closedPort()}`
  const [status, set] = await Promise.all([runCli(t, ['status', '--admin', dead]), runCli(t, ['set-weight', '5'], { env: { CANARY_PROXY_ADMIN: dead } })])
  for (const r of [status, set]) {
    t.equal(r.code, 1)
    t.match(r.stderr, `cannot reach the admin API at ${dead}`)
    t.match(r.stderr, /ECONNREFUSED/)
    t.match(r.stderr, /is canary-proxy running\?/)
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
  }
  // With no --admin and no env, the default address is named.
  const def = await runCli(t, ['status'], { env: { CANARY_PROXY_ADMIN: undefined } })
  if (def.code !== 0) t.match(def.stderr, 'http://127.0.0.1:9901')
})

t.test('with admin.token set', async (t) => {
  const s = await clientSetup(t, { admin: { host: '127.0.0.1', port: 0, token: 's3cret-token' } })

  const [missing, wrong, viaFlag, status] = await Promise.all([
    s.cli(['set-weight', '20']),
    s.cli(['set-weight', '20', '--token', 'not-it']),
    s.cli(['set-weight', '25', '--token', 's3cret-token']),
    s.cli(['status', '--json']),
  ])
  t.equal(missing.code, 1, 'without a token: exit 1')
  t.match(missing.stderr, /token/i, `the message mentions the token: ${missing.stderr.trim()}`)
  t.match(missing.stderr, /--token|CANARY_PROXY_ADMIN_TOKEN/, 'and how to pass one')
  t.equal(wrong.code, 1, 'a wrong token: exit 1')
  t.match(wrong.stderr, /token/i, `the message mentions the token: ${wrong.stderr.trim()}`)
  t.match(wrong.stderr, /--token|CANARY_PROXY_ADMIN_TOKEN/, 'and where it came from')
  t.notMatch(wrong.stderr, 'not-it', 'the token given is not echoed')
  t.equal(viaFlag.code, 0, `--token works: ${viaFlag.stderr}`)
  t.match(viaFlag.stdout, /^phase\s+paused\s+weight 25%/m)
  t.equal(status.code, 0, 'reading needs no token')

  const viaEnv = await s.cli(['set-weight', '35'], { CANARY_PROXY_ADMIN_TOKEN: 's3cret-token' })
  t.equal(viaEnv.code, 0, `CANARY_PROXY_ADMIN_TOKEN works: ${viaEnv.stderr}`)
  const flagWins = await s.cli(['pause', '--token', 'not-it'], { CANARY_PROXY_ADMIN_TOKEN: 's3cret-token' })
  t.equal(flagWins.code, 1, '--token wins over the env')
  t.match(s.app.app.status(), { phase: 'paused', weight: 35 })
  const events = await admin(s.app.adminUrl, 'GET', '/api/v1/events')
  t.notMatch(JSON.stringify(events.json), 's3cret-token', 'the token is not in the audit trail')
})

t.test('--admin that is not a URL is a usage error; a server that is not the admin API is named', async (t) => {
  const notAdmin = await startUpstream(t, 'web', { body: '<html>hello</html>' })
  const [noScheme, fromEnv, html] = await Promise.all([
    runCli(t, ['status', '--admin', '127.0.0.1:9901']),
    runCli(t, ['status'], { env: { CANARY_PROXY_ADMIN: 'localhost' } }),
    runCli(t, ['status', '--admin', notAdmin.url]),
  ])
  t.equal(noScheme.code, 1)
  t.match(noScheme.stderr, /--admin must be an http:\/\/ or https:\/\/ URL such as http:\/\/127\.0\.0\.1:9901 \(got "127\.0\.0\.1:9901"\)/)
  t.equal(fromEnv.code, 1)
  t.match(fromEnv.stderr, /CANARY_PROXY_ADMIN must be an http:\/\/ or https:\/\/ URL/)
  t.equal(html.code, 1)
  t.match(html.stderr, `the admin API at ${notAdmin.url} answered 200 with something that is not JSON`)
})
