/** The CLI's argument parser in process: global options before or after the command, did-you-mean, and one clear line for each bad argument. */
import t from 'tap'
import { parseCommand, UsageError } from '../../src/cli/args.js'
import { commandHelp, commandSpec, COMMANDS, USAGE } from '../../src/cli/spec.js'

const parse = (line: string, env: Record<string, string> = {}) => parseCommand(line === '' ? [] : line.split(' '), env)
const refusal = (line: string, env: Record<string, string> = {}): string => {
  try {
    parse(line, env)
  } catch (error) {
    if (error instanceof UsageError) return error.message
    throw error
  }
  throw new Error(`${line}: accepted`)
}

t.test('client options stand before or after the command, from flags or the environment', async (t) => {
  const before = parse('--admin http://127.0.0.1:9911 --token s3 status')
  const after = parse('status --admin http://127.0.0.1:9911 --token s3')
  t.same(before, after)
  t.match(before, { name: 'status', client: { admin: 'http://127.0.0.1:9911', token: 's3', json: false }, watch: false })
  t.match(parse('status', { CANARY_PROXY_ADMIN: 'http://127.0.0.1:9922', CANARY_PROXY_ADMIN_TOKEN: 'env' }), { client: { admin: 'http://127.0.0.1:9922', token: 'env' } })
  t.match(parse('status --watch --json'), { watch: true, client: { json: true } })
  t.match(parse('start --canary http://127.0.0.1:9002'), { name: 'start', canary: 'http://127.0.0.1:9002' })
  t.match(parse('set-weight 12.5'), { name: 'set-weight', weight: 12.5 })
  t.match(parse('abort --reason broken'), { name: 'abort', reason: 'broken' })
  t.match(parse('events --limit 3'), { name: 'events', limit: 3 })
  t.match(parse('wait --timeout 90s'), { name: 'wait', timeoutMs: 90_000 })
  t.match(parse('validate --config x.yaml'), { name: 'validate', config: 'x.yaml' })
  t.match(parse('serve'), { name: 'serve', configDefaulted: true })
  t.match(parse('demo --faulty --keep'), { name: 'demo', faulty: true, keep: true })
  t.match(parse(''), { name: 'help', topic: null })
  t.match(parse('help status'), { name: 'help', topic: 'status' })
  t.match(parse('status --help'), { name: 'help', topic: 'status' })
})

t.test('bad arguments: one line naming what is wrong, with a near match when there is one', async (t) => {
  t.match(refusal('valdate --config x.yaml'), /did you mean validate\?/)
  t.match(refusal('status --adimn http://127.0.0.1:9901'), /unknown option --adimn \(did you mean --admin\?\)/)
  t.match(refusal('set-weight'), /the weight N \(0\.\.100\) is required/)
  t.match(refusal('set-weight half'), /N must be a number from 0 to 100 \(got "half"\)/)
  t.match(refusal('events --limit 0'), /--limit must be a whole number of events, 1 or more \(got "0"\)/)
  t.match(refusal('wait --timeout soon'), /--timeout must be a duration such as 90s or 10m \(got "soon"\)/)
  t.match(refusal('start --canary localhost:20002'), /--canary needs an http:\/\/ or https:\/\/ URL \(got "localhost:20002"\)/)
  t.match(refusal('status --admin ftp://x'), /--admin must be an http:\/\/ or https:\/\/ URL/)
  t.match(refusal('validate'), /--config FILE is required/)
  t.match(refusal('status extra'), /unexpected argument "extra"/)
  t.match(refusal('status --token'), /--token needs a value/)
})

t.test('every command has its own help', async (t) => {
  for (const spec of COMMANDS) {
    t.ok(commandSpec(spec.name), spec.name)
    t.match(commandHelp(spec), new RegExp(`canary-proxy ${spec.name}`), `${spec.name}: its help names it`)
  }
  t.match(USAGE, /status/)
  t.equal(commandSpec('nope'), undefined)
})
