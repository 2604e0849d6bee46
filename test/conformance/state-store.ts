/**
 * The StateStore and Lease contract, as one suite run against every store
 * (file, memory, Redis): compare-and-set, fencing, the change feed, exact
 * round trips of every phase, and lease exclusivity and expiry.
 */
import type { Test } from 'tap'
import { initialState } from '../../src/rollout/machine.js'
import type { RolloutState } from '../../src/rollout/phase.js'
import type { Lease, StateStore, StoredChange } from '../../src/state/store.js'

export interface StoreFixture {
  /** Two instances over one backing (two replicas, or two processes on one file). */
  readonly a: StateStore
  readonly b: StateStore
  /** Whether b sees a's saves through watch() (false for the file store: one process owns the file). */
  readonly watches: boolean
  /** Writes something unparsable where the state lives, for the corrupt-store case; null when the store cannot hold garbage. */
  readonly corrupt: (() => Promise<void>) | null
}

export interface LeaseFixture {
  readonly a: Lease
  readonly b: Lease
  /** Moves the lease's clock forward (a fake clock, or a real wait for Redis). */
  advance(ms: number): Promise<void>
}

const STABLE = 'http://127.0.0.1:9001'
const CANARY = 'http://127.0.0.1:9002'

/** One state of each phase, with every optional field, as the machine produces them. */
export function everyPhase(): RolloutState[] {
  const base = initialState(STABLE, CANARY, 1_764_000_000_000)
  const decision = { at: 1_764_000_001_000, verdict: 'insufficient' as const, reason: 'holding', findings: [{ check: 'maxErrorRate', verdict: 'insufficient' as const, observed: 0.02, threshold: 0.01, n: 40, reason: 'r' }] }
  return [
    base,
    { ...base, phase: 'progressing', weight: 5, stepIndex: 0, stepStartedAt: 1_764_000_000_500, generation: 1, lastDecision: decision },
    { ...base, phase: 'paused', weight: 12.34, stepIndex: null, generation: 2 },
    { ...base, phase: 'baking', weight: 100, stepIndex: 3, bakeStartedAt: 1_764_000_002_000, generation: 3, baseline: { requests: 120, errors: 1, p99Us: 8_000 } },
    { ...base, phase: 'succeeded', weight: 0, reason: 'bake passed', stableUrl: CANARY, canaryUrl: null, generation: 3 },
    { ...base, phase: 'rolled_back', weight: 0, reason: 'canary error rate 50%', generation: 4 },
    { ...base, phase: 'aborted', weight: 0, reason: 'aborted by alice', generation: 5 },
  ]
}

export function stateStoreConformance(t: Test, name: string, fixture: () => Promise<StoreFixture>): void {
  t.test(`${name}: an empty store loads as version 0`, async (t) => {
    const { a } = await fixture()
    t.same(await a.load(), { kind: 'empty', version: 0 })
  })

  t.test(`${name}: every phase round-trips exactly, one version per save`, async (t) => {
    const { a, b } = await fixture()
    let version = 0
    for (const state of everyPhase()) {
      const saved = await a.save(state, version)
      t.same(saved, { ok: true, version: version + 1 }, `${state.phase}: saved as version ${version + 1}`)
      version++
      t.same(await b.load(), { kind: 'loaded', state, version }, `${state.phase}: read back as written, by another instance`)
    }
  })

  t.test(`${name}: compare-and-set refuses a save against a stale version and changes nothing`, async (t) => {
    const { a, b } = await fixture()
    const [first, second, third] = everyPhase()
    t.same(await a.save(first!, 0), { ok: true, version: 1 })
    t.same(await b.save(second!, 1), { ok: true, version: 2 }, 'b writes on top of a')
    t.same(await a.save(third!, 1), { ok: false, reason: 'conflict', version: 2 }, "a's save against version 1 is refused, naming version 2")
    t.same(await a.load(), { kind: 'loaded', state: second, version: 2 }, "b's state stands")
    t.same(await a.save(third!, 0), { ok: false, reason: 'conflict', version: 2 }, 'expecting an empty store is a conflict too')
  })

  t.test(`${name}: a save fenced by an older lease token than one that wrote is refused`, async (t) => {
    const { a, b } = await fixture()
    const [first, second, third] = everyPhase()
    t.same(await a.save(first!, 0, 1), { ok: true, version: 1 }, 'leader 1 writes')
    t.same(await b.save(second!, 1, 2), { ok: true, version: 2 }, 'leader 2 takes over and writes')
    t.same(await a.save(third!, 2, 1), { ok: false, reason: 'fenced', version: 2 }, 'the stale leader is refused even with the right version')
    t.same(await a.save(third!, 2, 2), { ok: true, version: 3 }, 'the current token writes')
    t.same(await a.save(first!, 3, null), { ok: true, version: 4 }, 'an unfenced save is judged by its version only')
  })

  t.test(`${name}: watch delivers other instances' saves, newest last, until unsubscribed`, async (t) => {
    const { a, b, watches } = await fixture()
    const seen: StoredChange[] = []
    const stop = b.watch((change) => seen.push(change))
    const states = everyPhase()
    await a.save(states[1]!, 0)
    await a.save(states[2]!, 1)
    await waitFor(() => !watches || seen.length >= 2)
    if (watches) t.same(seen, [{ state: states[1], version: 1 }, { state: states[2], version: 2 }], 'both changes, in order')
    else t.same(seen, [], 'this store has no other writers to report')
    stop()
    await a.save(states[3]!, 2)
    await new Promise((r) => setTimeout(r, 50))
    t.equal(seen.length, watches ? 2 : 0, 'nothing after unsubscribing')
    const own: StoredChange[] = []
    const stopOwn = a.watch((change) => own.push(change))
    await a.save(states[4]!, 3)
    await new Promise((r) => setTimeout(r, 50))
    t.same(own, [], "a store does not report its own saves to itself")
    stopOwn()
  })

  t.test(`${name}: a corrupt store loads as corrupt, then takes a save as new`, async (t) => {
    const { a, b, corrupt } = await fixture()
    if (corrupt === null) {
      t.pass('this store cannot hold anything but a state')
      return
    }
    await a.save(everyPhase()[1]!, 0)
    await corrupt()
    const loaded = await b.load()
    t.equal(loaded.kind, 'corrupt', 'refused, not guessed')
    if (loaded.kind !== 'corrupt') return
    t.ok(loaded.problem.length > 0, `says why: ${loaded.problem}`)
    t.same(await b.save(everyPhase()[2]!, loaded.version), { ok: true, version: loaded.version + 1 }, 'the next save starts from the version it named')
  })
}

export function leaseConformance(t: Test, name: string, fixture: () => Promise<LeaseFixture>): void {
  t.test(`${name}: one holder at a time; a new holder gets a larger token after expiry`, async (t) => {
    const { a, b, advance } = await fixture()
    const first = await a.acquire('replica-a')
    t.ok(first !== null, 'a acquires')
    t.equal(await b.acquire('replica-b'), null, 'b is refused while a holds it')
    const renewed = await a.renew(first!)
    t.ok(renewed !== null && renewed.token === first!.token, 'a renews and keeps its token')
    await advance(a.ttlMs + 50)
    const second = await b.acquire('replica-b')
    t.ok(second !== null && second.token > first!.token, 'after expiry b acquires with a larger token')
    t.equal(await a.renew(renewed!), null, "a's renewal fails: it lost the lease")
  })

  t.test(`${name}: release lets another holder in at once`, async (t) => {
    const { a, b } = await fixture()
    const first = await a.acquire('replica-a')
    await a.release(first!)
    const second = await b.acquire('replica-b')
    t.ok(second !== null && second.token > first!.token, 'b acquires right after the release')
    await a.release(first!)
    t.equal(await a.acquire('replica-a'), null, "releasing a lost grant does not free b's lease")
  })
}

async function waitFor(done: () => boolean, ms = 2_000): Promise<void> {
  const until = Date.now() + ms
  while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
}
