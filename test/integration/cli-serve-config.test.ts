/**
 * `canary-proxy serve` before it listens: an invalid config is refused with the
 * same lines as `validate` and exit 1; `--config`, `CANARY_PROXY_CONFIG` and the
 * default path choose the file.
 */
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { REPO, problemLines, runCli, serve, tempDir, writeConfig } from '../helpers/cli.js'

const VALID = `listen: { host: 127.0.0.1, port: 18080 }
admin: { host: 127.0.0.1, port: 19901 }
upstreams:
  stable: http://127.0.0.1:9001
rollout:
  steps: [5, 25, 50, 100]
analysis:
  interval: 1s
`

t.test('serve: refuses an invalid config with the same messages and exit 1', async (t) => {
  const dir = await tempDir()
  const yaml = VALID.replace('steps: [5, 25, 50, 100]', 'steps: [5, 250]').replace('interval: 1s', 'interval: 1 second')
  const file = await writeConfig(dir, 'bad.yaml', yaml)
  const [validated, served] = await Promise.all([runCli(t, ['validate', '--config', file]), runCli(t, ['serve', '--config', file])])
  t.equal(served.code, 1)
  t.match(served.stderr, /^rollout\.steps\[1\]: must be <= 100/m)
  t.match(served.stderr, /^analysis\.interval: must be a duration/m)
  t.match(served.stderr, /: invalid configuration, not starting \(CPX_ERR_CONFIG_INVALID\)$/m)
  t.equal(problemLines(served.stderr).length, 2, 'one line per problem')
  t.same(problemLines(served.stderr), problemLines(validated.stderr), 'the same problem lines as validate')
  t.notMatch(served.stdout, /listening/)
})

t.test('serve: CANARY_PROXY_CONFIG names the config when --config is not given', async (t) => {
  const dir = await tempDir()
  const bad = await writeConfig(dir, 'from-env.yaml', VALID.replace('stable: http://127.0.0.1:9001', 'stable: ${CPX_TEST_UNSET_STABLE}'))
  const refused = await runCli(t, ['serve'], { env: { CANARY_PROXY_CONFIG: bad, CPX_TEST_UNSET_STABLE: undefined } })
  t.equal(refused.code, 1)
  t.match(refused.stderr, /^upstreams\.stable: .*CPX_TEST_UNSET_STABLE/m)
  t.match(refused.stderr, 'from-env.yaml')

  const good = await writeConfig(
    dir,
    'good-env.yaml',
    `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams: { stable: http://127.0.0.1:9001 }
state: { file: ${JSON.stringify(join(dir, 'state.json'))} }
audit: { file: ${JSON.stringify(join(dir, 'audit.jsonl'))} }
`,
  )
  const served = await serve(t, null, { env: { CANARY_PROXY_CONFIG: good } })
  t.match(served.proxyUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
  served.child.process.kill('SIGTERM')
  const exit = await served.child.exited
  t.equal(exit.code, 0)
})

t.test('serve: --config wins over CANARY_PROXY_CONFIG; the default file is config/canary-proxy.yaml', async (t) => {
  const dir = await tempDir()
  const bad = await writeConfig(dir, 'flag.yaml', 'upstreams: { stable: ftp://x }\n')
  const r = await runCli(t, ['serve', '--config', bad], { env: { CANARY_PROXY_CONFIG: join(dir, 'other.yaml') } })
  t.equal(r.code, 1)
  t.match(r.stderr, /^upstreams\.stable: must use http/m)
  t.notMatch(r.stderr, 'other.yaml')

  // In an empty working directory the default path does not exist.
  const defaulted = await runCli(t, ['serve'], { cwd: dir })
  t.equal(defaulted.code, 1)
  t.match(defaulted.stderr, /config\/canary-proxy\.yaml: file not found/)
})

t.test('serve: with no config in the working directory (an installed package), it names the example config and how to copy it', async (t) => {
  const dir = await tempDir()
  const example = join(REPO, 'config', 'canary-proxy.yaml')
  const r = await runCli(t, ['serve'], { cwd: dir })
  t.equal(r.code, 1)
  t.match(r.stderr, `no --config given, and config/canary-proxy.yaml: file not found in ${dir}`)
  t.match(r.stderr, `the example config (every key, commented) is ${example}`, 'the package\'s own example, by its path')
  t.match(r.stderr, `mkdir -p config && cp ${example} config/canary-proxy.yaml`, 'how to copy it')
  t.match(r.stderr, /or pass --config FILE \(or set CANARY_PROXY_CONFIG\)/)
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')

  // The copy it names is a config that serve takes.
  const copied = await runCli(t, ['validate', '--config', example])
  t.equal(copied.code, 0, copied.stderr)
})

t.test('serve: a port already in use is a one-line error and exit 1', async (t) => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const port = (taken.address() as AddressInfo).port
  const dir = await tempDir()
  const file = await writeConfig(
    dir,
    'busy.yaml',
    `listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: 0 }
upstreams: { stable: http://127.0.0.1:9001 }
state: { file: ${JSON.stringify(join(dir, 'state.json'))} }
audit: { file: ${JSON.stringify(join(dir, 'audit.jsonl'))} }
`,
  )
  const r = await runCli(t, ['serve', '--config', file])
  t.equal(r.code, 1)
  t.match(r.stderr, `cannot listen on 127.0.0.1:${port}: address already in use`)
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
})

t.test('serve: an unusable audit path is a one-line error naming it, exit 1', async (t) => {
  const dir = await tempDir()
  // A regular file where a directory is needed.
  const notADir = await writeConfig(dir, 'plain-file', 'not a directory\n')
  const file = await writeConfig(
    dir,
    'unusable.yaml',
    `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams: { stable: http://127.0.0.1:9001 }
state: { file: ${JSON.stringify(join(dir, 'state.json'))} }
audit: { file: ${JSON.stringify(join(notADir, 'audit.jsonl'))} }
`,
  )
  const r = await runCli(t, ['serve', '--config', file])
  t.equal(r.code, 1)
  t.match(r.stderr, /^cannot start: /m)
  t.match(r.stderr, notADir, 'names the path')
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace')
})
