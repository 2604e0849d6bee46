import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { initialState } from '../../src/rollout/machine.js'
import type { RolloutState } from '../../src/rollout/phase.js'
import { FileStateStore } from '../../src/state/file-store.js'

const STABLE = 'http://127.0.0.1:9001'
const CANARY = 'http://127.0.0.1:9002'

async function dir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'canary-proxy-store-'))
}

t.test('save then load gives the same state; the write is atomic (no temp file left)', async (t) => {
  const d = await dir()
  const store = new FileStateStore(join(d, 'nested', 'state.json'))
  const state: RolloutState = { ...initialState(STABLE, CANARY, 1), phase: 'progressing', weight: 25, stepIndex: 1, stepStartedAt: 5 }
  t.same(await store.save(state, 0), { ok: true, version: 1 })
  const loaded = await store.load()
  t.same(loaded, { kind: 'loaded', state, version: 1 })
  t.same(await readdir(join(d, 'nested')), ['state.json'])
})

t.test('saves land in order and the last one wins', async (t) => {
  const store = new FileStateStore(join(await dir(), 'state.json'))
  const saves = [10, 20, 30, 40].map((w, i) => store.save({ ...initialState(STABLE, CANARY, w), phase: 'paused', weight: w, stepIndex: null }, i))
  await Promise.all(saves)
  const loaded = await store.load()
  t.equal(loaded.kind === 'loaded' ? loaded.state.weight : -1, 40)
})

t.test('a file that parses but is not a usable state is kept aside like an unparsable one', async (t) => {
  const base = initialState(STABLE, CANARY, 1)
  const cases: [string, unknown, RegExp][] = [
    ['progressing without its step', { version: 1, state: { ...base, phase: 'progressing', weight: 5, stepStartedAt: 1 } }, /stepIndex/],
    ['no lastDecision field', { version: 1, state: { ...base, phase: 'paused', weight: 5, stepIndex: null, lastDecision: undefined } }, /lastDecision/],
    ['idle with a weight', { version: 1, state: { ...base, weight: 30 } }, /weight/],
    ['baking below 100', { version: 1, state: { ...base, phase: 'baking', weight: 50, stepIndex: null, bakeStartedAt: 1 } }, /weight/],
    ['an ended rollout without its reason', { version: 1, state: { ...base, phase: 'aborted', weight: 0 } }, /reason/],
    ['a stable URL that is not one', { version: 1, state: { ...base, stableUrl: 'ftp://x' } }, /stableUrl/],
    ['a rollout with no canary', { version: 1, state: { ...base, canaryUrl: null, phase: 'baking', weight: 100, stepIndex: null, bakeStartedAt: 1 } }, /no canary/],
    ['another version', { version: 2, state: base }, /version/],
  ]
  for (const [name, doc, problem] of cases) {
    const d = await dir()
    const file = join(d, 'state.json')
    await writeFile(file, JSON.stringify(doc))
    const loaded = await new FileStateStore(file).load()
    t.equal(loaded.kind, 'corrupt', `${name}: refused`)
    if (loaded.kind !== 'corrupt') continue
    t.match(loaded.problem, problem, `${name}: ${loaded.problem}`)
    t.ok(loaded.keptAs !== null && (await readFile(loaded.keptAs, 'utf8')) === JSON.stringify(doc), `${name}: kept as it was`)
  }
})

t.test('no file is an empty store', async (t) => {
  t.same(await new FileStateStore(join(await dir(), 'state.json')).load(), { kind: 'empty', version: 0 })
})
