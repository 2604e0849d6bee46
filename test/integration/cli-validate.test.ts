/**
 * `canary-proxy validate` against config files, through the compiled CLI: exit
 * codes, one stderr line per problem naming its key path, `--json`, `${ENV}`
 * substitution.
 */
import { join } from 'node:path'
import t from 'tap'
import { inBatches, problemLines, runCli, tempDir, writeConfig, type Env } from '../helpers/cli.js'

const VALID = `listen: { host: 127.0.0.1, port: 18080 }
admin: { host: 127.0.0.1, port: 19901 }
upstreams:
  stable: http://127.0.0.1:9001
  canary: http://127.0.0.1:9002
rollout:
  steps: [5, 25, 50, 100]
  stepDuration: 30s
  bake: 1m
analysis:
  interval: 1s
  window: 30s
`

interface BadCase {
  readonly name: string
  readonly yaml: string
  readonly env?: Env
  /** Each must match exactly one problem line, and there are no other problem lines. */
  readonly lines: readonly RegExp[]
}

const BAD: readonly BadCase[] = [
  {
    name: 'every schema and semantic problem of a file, one line each',
    yaml: `listen: { host: 127.0.0.1, port: eighty }
admin: { host: 127.0.0.1, port: 19901, token: "\${CPX_TEST_UNSET_TOKEN}" }
upstreams:
  stable: ftp://127.0.0.1:9001
  canary: "not a url"
rollout:
  steps: [5, 250]
  stepDuraton: 30s
analysis:
  interval: 1 second
listn: { port: 1 }
`,
    env: { CPX_TEST_UNSET_TOKEN: undefined },
    lines: [
      /^listn: unknown key \(did you mean listen\?\)/,
      /^listen\.port: must be an integer \(got "eighty"\)/,
      /^rollout\.stepDuraton: unknown key \(did you mean stepDuration\?\)/,
      /^rollout\.steps\[1\]: must be <= 100/,
      /^analysis\.interval: must be a duration such as 250ms, 30s or 2m \(got "1 second"\)$/,
      /^upstreams\.stable: must use http:\/\/ or https:\/\//,
      /^upstreams\.canary: must be an http:\/\/ or https:\/\/ URL/,
      /^admin\.token: .*CPX_TEST_UNSET_TOKEN.*not set/,
    ],
  },
  {
    name: 'upstreams.stable missing; admin.host 0.0.0.0 with an empty token (empty means no token)',
    yaml: `admin: { host: 0.0.0.0, port: 19901, token: "\${CPX_TEST_EMPTY_TOKEN:-}" }
upstreams:
  canary: http://127.0.0.1:9002
`,
    env: { CPX_TEST_EMPTY_TOKEN: undefined },
    lines: [/^upstreams\.stable: is required$/, /^admin\.host: refusing .*0\.0\.0\.0.*admin\.token/],
  },
  {
    name: 'no upstreams at all',
    yaml: 'listen: { port: 18080 }\n',
    lines: [/^upstreams: is required$/],
  },
  {
    name: 'steps out of order',
    yaml: VALID.replace('steps: [5, 25, 50, 100]', 'steps: [5, 50, 25, 100]'),
    lines: [/^rollout\.steps\[2\]: must be greater than the step before it \(50\)/],
  },
  {
    // A union of literals made ajv print one line per branch and an "anyOf" line; an enum gives the one line.
    name: 'rollout.onDeadline neither pause nor rollback',
    yaml: VALID.replace('steps: [5, 25, 50, 100]', 'steps: [5, 25, 50, 100]\n  onDeadline: explode'),
    lines: [/^rollout\.onDeadline: must be one of: pause, rollback \(got "explode"\)$/],
  },
  {
    name: 'a YAML syntax error',
    yaml: 'listen: {\n  port: [1,\nupstreams:\n  stable: http://127.0.0.1:9001\n',
    lines: [/^\(file\): YAML syntax error at line \d+, column \d+/],
  },
]

t.test('validate: a valid config exits 0 and says so on stdout', async (t) => {
  const dir = await tempDir()
  const file = await writeConfig(dir, 'good.yaml', VALID)
  const r = await runCli(t, ['validate', '--config', file])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /valid/)
  t.match(r.stdout, /stable http:\/\/127\.0\.0\.1:9001/)
  t.equal(r.stderr, '', 'nothing on stderr')
})

t.test('validate: the file may be given as a positional argument or by CANARY_PROXY_CONFIG', async (t) => {
  const dir = await tempDir()
  const file = await writeConfig(dir, 'good.yaml', VALID)
  const bad = await writeConfig(dir, 'bad.yaml', VALID.replace('interval: 1s', 'interval: 1 second'))
  const [positional, fromEnv] = await Promise.all([runCli(t, ['validate', file]), runCli(t, ['validate'], { env: { CANARY_PROXY_CONFIG: bad } })])
  t.equal(positional.code, 0, positional.stderr)
  t.equal(fromEnv.code, 1)
  t.match(fromEnv.stderr, /^analysis\.interval: /m)
})

t.test('validate: a bad config exits 1 with one stderr line per problem, naming the key path', async (t) => {
  const dir = await tempDir()
  const files = await Promise.all(BAD.map((c, i) => writeConfig(dir, `bad-${i}.yaml`, c.yaml)))
  // The children start a few at a time: each is a whole Node process.
  const results = await inBatches(BAD.map((c, i) => () => runCli(t, ['validate', '--config', files[i]!], c.env === undefined ? {} : { env: c.env })), 4)
  for (const [i, c] of BAD.entries()) {
    const r = results[i]!
    const file = files[i]!
    t.test(c.name, async (t) => {
      t.equal(r.code, 1, `exit code (stderr: ${r.stderr})`)
      t.equal(r.stdout, '', 'nothing on stdout')
      const lines = problemLines(r.stderr)
      if (c.name.includes('YAML')) {
        // One syntax error may cascade into a few lines, all about the syntax.
        t.ok(lines.length >= 1 && lines.every((l) => c.lines[0]!.test(l)), `only syntax error lines\n${r.stderr}`)
      } else {
        for (const pattern of c.lines) t.equal(lines.filter((l) => pattern.test(l)).length, 1, `one line matches ${pattern}\n${r.stderr}`)
        t.equal(lines.length, c.lines.length, `no other problem lines\n${r.stderr}`)
      }
      // Every line but the summary names a key path, then what is wrong.
      for (const line of lines) t.match(line, /^(\(file\)|\(root\)|[A-Za-z][\w.[\]]*): \S/, `"${line}" starts with a key path`)
      t.ok(r.stderr.endsWith(`${file}: ${lines.length} problem${lines.length === 1 ? '' : 's'}\n`), 'ends with the count of problems')
    })
  }
})

t.test('validate: a missing file exits 1 and says so', async (t) => {
  const dir = await tempDir()
  const missing = join(dir, 'nope.yaml')
  const r = await runCli(t, ['validate', '--config', missing])
  t.equal(r.code, 1)
  t.match(r.stderr, /file not found/)
  t.match(r.stderr, 'nope.yaml')
})

t.test('validate: without a file it is a usage error', async (t) => {
  const r = await runCli(t, ['validate'])
  t.not(r.code, 0)
  t.match(r.stderr, /--config FILE is required/)
})

t.test('validate: ${VAR:-default} gives the default, ${VAR} takes a set variable', async (t) => {
  const dir = await tempDir()
  const file = await writeConfig(
    dir,
    'env.yaml',
    VALID.replace('stable: http://127.0.0.1:9001', 'stable: "${CPX_TEST_STABLE:-http://127.0.0.1:9011}"').replace('canary: http://127.0.0.1:9002', 'canary: ${CPX_TEST_CANARY}'),
  )
  const [r, set] = await Promise.all([
    runCli(t, ['validate', '--config', file], { env: { CPX_TEST_STABLE: undefined, CPX_TEST_CANARY: 'http://127.0.0.1:9012' } }),
    runCli(t, ['validate', '--config', file], { env: { CPX_TEST_STABLE: 'http://127.0.0.1:9021', CPX_TEST_CANARY: 'http://127.0.0.1:9012' } }),
  ])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, 'stable http://127.0.0.1:9011')
  t.match(r.stdout, 'canary http://127.0.0.1:9012')
  t.equal(set.code, 0, set.stderr)
  t.match(set.stdout, 'stable http://127.0.0.1:9021')
})

t.test('validate: a non-loopback admin host is fine with a token', async (t) => {
  const dir = await tempDir()
  const file = await writeConfig(dir, 'token.yaml', VALID.replace('admin: { host: 127.0.0.1, port: 19901 }', 'admin: { host: 0.0.0.0, port: 19901, token: "${CPX_TEST_TOKEN:-}" }'))
  const r = await runCli(t, ['validate', '--config', file], { env: { CPX_TEST_TOKEN: 's3cret' } })
  t.equal(r.code, 0, r.stderr)
  t.notMatch(r.stdout, 's3cret', 'the token is not printed')
})

t.test('validate --json: machine-readable for both outcomes', async (t) => {
  const dir = await tempDir()
  const good = await writeConfig(dir, 'good.yaml', VALID)
  const bad = await writeConfig(dir, 'bad.yaml', VALID.replace('steps: [5, 25, 50, 100]', 'steps: [5, 250]').replace('stepDuration: 30s', 'stepDuraton: 30s'))
  const [ok, no] = await Promise.all([runCli(t, ['validate', '--config', good, '--json']), runCli(t, ['validate', '--config', bad, '--json'])])
  t.equal(ok.code, 0)
  const okDoc = JSON.parse(ok.stdout) as { valid: boolean; problems: unknown[]; file: string }
  t.equal(okDoc.valid, true)
  t.same(okDoc.problems, [])
  t.equal(okDoc.file, good)

  t.equal(no.code, 1)
  const noDoc = JSON.parse(no.stdout) as { valid: boolean; problems: { path: string; message: string }[] }
  t.equal(noDoc.valid, false)
  t.match(noDoc.problems, [{ path: String, message: String }])
  t.ok(
    noDoc.problems.some((p) => p.path === 'rollout.steps[1]' && /must be <= 100/.test(p.message)),
    'the step problem is there',
  )
  t.ok(
    noDoc.problems.some((p) => p.path === 'rollout.stepDuraton' && /did you mean stepDuration/.test(p.message)),
    'the unknown key is there',
  )
})
