import t from 'tap'
import type { Probe, ProbeContext, ProbeRollout } from '../../src/analysis/probe.js'
import { EventFeed } from '../../src/events/feed.js'
import { ProbeRunner, type ProbeRunnerLog } from '../../src/probes/runner.js'
import { FakeClock } from '../helpers/fake-clock.js'

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

/** Advances second by second, letting each run settle (a real probe resolves between ticks). */
async function tick(clock: FakeClock, ms: number): Promise<void> {
  for (let done = 0; done < ms; done += 1000) {
    clock.advance(Math.min(1000, ms - done))
    await flush()
  }
}

function rollout(over: Partial<ProbeRollout> = {}): ProbeRollout {
  return { phase: 'progressing', weight: 10, step: 0, stableUrl: 'http://s.test', canaryUrl: 'http://c.test', generation: 1, ...over }
}

class CountingProbe implements Probe<number> {
  readonly id: string
  readonly intervalMs: number
  readonly timeoutMs?: number
  readonly runOnTransition?: boolean
  runs = 0
  contexts: ProbeContext[] = []
  behaviour: (n: number, context: ProbeContext) => Promise<number> = async (n) => n

  constructor(id: string, intervalMs: number, extra: { timeoutMs?: number; runOnTransition?: boolean } = {}) {
    this.id = id
    this.intervalMs = intervalMs
    if (extra.timeoutMs !== undefined) this.timeoutMs = extra.timeoutMs
    if (extra.runOnTransition !== undefined) this.runOnTransition = extra.runOnTransition
  }

  run(context: ProbeContext): Promise<number> {
    this.contexts.push(context)
    return this.behaviour(++this.runs, context)
  }
}

function logSink(): ProbeRunnerLog & { lines: string[] } {
  const lines: string[] = []
  return { lines, warn: (_f, m) => lines.push(`warn ${m}`), info: (_f, m) => lines.push(`info ${m}`) }
}

t.test('each probe runs at once and then every interval; latest() is the newest result, stamped with its start', async (t) => {
  const clock = new FakeClock()
  const fast = new CountingProbe('fast', 1000)
  const slow = new CountingProbe('slow', 5000)
  const runner = new ProbeRunner({ clock, probes: [fast, slow], rollout: () => rollout(), servedRequests: (side) => (side === 'stable' ? 7 : 3) })
  t.equal(runner.latest('fast'), null, 'nothing before start')
  runner.start()
  await flush()
  t.same([fast.runs, slow.runs], [1, 1])
  const started = clock.now()
  t.same(runner.latest('fast'), { at: started, value: 1, error: null })
  await tick(clock, 5000)
  t.same([fast.runs, slow.runs], [6, 2])
  t.equal(runner.latest<number>('fast')?.value, 6)
  t.equal(runner.latest('fast')?.at, started + 5000)
  t.same([fast.contexts[0]!.servedRequests('stable'), fast.contexts[0]!.servedRequests('canary')], [7, 3], 'the context reads the proxy counts')
  t.equal(fast.contexts[0]!.rollout.weight, 10)
  t.equal(runner.latest('unknown'), null)
  const stats = runner.stats().find((s) => s.id === 'fast')!
  t.match(stats, { runs: 6, failures: 0, overlaps: 0, lastAt: started + 5000, lastError: null })
  await runner.stop()
  t.equal(clock.pendingTimers, 0, 'stop cancels every schedule')
  await tick(clock, 5000)
  t.equal(fast.runs, 6, 'no run after stop')
})

t.test('a probe that throws gives a result with the error; logged once when it starts failing and once when it recovers', async (t) => {
  const clock = new FakeClock()
  const probe = new CountingProbe('p', 1000)
  probe.behaviour = async (n) => {
    if (n === 2 || n === 3) throw new Error(`broken ${n}`)
    return n
  }
  const log = logSink()
  const runner = new ProbeRunner({ clock, probes: [probe], rollout: () => rollout(), servedRequests: () => 0, log })
  runner.start()
  await flush()
  for (let i = 0; i < 3; i++) {
    clock.advance(1000)
    await flush()
  }
  t.same(runner.latest('p'), { at: clock.now(), value: 4, error: null })
  t.same(log.lines, ['warn probe p failed: broken 2', 'info probe p recovered'])
  t.equal(runner.stats()[0]!.failures, 2)
  await runner.stop()
})

t.test('a run that outlives its timeout is aborted and says so; ticks during a run do not start another', async (t) => {
  const clock = new FakeClock()
  const probe = new CountingProbe('hang', 1000, { timeoutMs: 2500 })
  probe.behaviour = (_n, context) => new Promise<number>((_resolve, reject) => context.signal.addEventListener('abort', () => reject(new Error('aborted by the signal'))))
  const runner = new ProbeRunner({ clock, probes: [probe], rollout: () => rollout(), servedRequests: () => 0 })
  runner.start()
  clock.advance(2000)
  await flush()
  t.equal(probe.runs, 1, 'one run at a time')
  t.equal(runner.stats()[0]!.overlaps, 2)
  clock.advance(500)
  await flush()
  t.same(runner.latest('hang'), { at: clock.now() - 2500, value: null, error: 'timed out after 2500ms' })
  clock.advance(500)
  await flush()
  t.equal(probe.runs, 2, 'the next tick runs again')
  await runner.stop()
  t.match(runner.latest('hang')?.error, /the proxy is stopping/, 'stop aborts the run in flight')
})

t.test('results of an earlier rollout are not returned; nothing runs while no rollout is under way', async (t) => {
  const clock = new FakeClock()
  const probe = new CountingProbe('p', 1000)
  let current = rollout()
  const runner = new ProbeRunner({ clock, probes: [probe], rollout: () => current, servedRequests: () => 0 })
  runner.start()
  await flush()
  t.equal(runner.latest<number>('p')?.value, 1)
  current = rollout({ generation: 2 })
  t.equal(runner.latest('p'), null, 'a new rollout starts with no probe results')
  clock.advance(1000)
  await flush()
  t.equal(runner.latest<number>('p')?.value, 2)
  current = rollout({ phase: 'succeeded', weight: 0, generation: 2 })
  await tick(clock, 3000)
  t.equal(probe.runs, 2, 'not run after the rollout ended')
  await runner.stop()

  const always = new CountingProbe('a', 1000)
  const idle = new ProbeRunner({ clock, probes: [always], rollout: () => rollout({ phase: 'idle', weight: 0 }), servedRequests: () => 0, onlyUnderWay: false })
  idle.start()
  await flush()
  t.equal(always.runs, 1, 'onlyUnderWay: false runs in any phase')
  await idle.stop()
})

t.test('a transition kicks the probes marked runOnTransition at once, or right after their run in flight', async (t) => {
  const clock = new FakeClock()
  const gate = new CountingProbe('gate', 60_000, { runOnTransition: true })
  const other = new CountingProbe('other', 60_000)
  let release: (() => void) | null = null
  gate.behaviour = (n) =>
    n === 2
      ? new Promise<number>((resolve) => {
          release = () => resolve(n)
        })
      : Promise.resolve(n)
  const runner = new ProbeRunner({ clock, probes: [gate, other], rollout: () => rollout(), servedRequests: () => 0 })
  const feed = new EventFeed()
  runner.kick()
  t.equal(gate.runs, 0, 'a kick before start does nothing')
  const detach = runner.attach(feed)
  runner.start()
  await flush()
  const transition = { type: 'transition' as const, generation: 1, findings: [], record: { at: 0, actor: 'auto', action: 'advance', from: { phase: 'progressing' as const, weight: 10 }, to: { phase: 'progressing' as const, weight: 50 }, reason: null } }
  feed.emit(transition)
  t.same([gate.runs, other.runs], [2, 1], 'only the gate probe runs on a transition')
  feed.emit(transition)
  t.equal(gate.runs, 2, 'in flight: not a second concurrent run')
  release!()
  await flush()
  t.equal(gate.runs, 3, 'the kick during the run runs once it ends')
  feed.emit({ type: 'configReload', at: 0, ok: true, problems: [] })
  t.equal(gate.runs, 3, 'other events do not kick')
  detach()
  await runner.stop()
  runner.start()
  t.equal(gate.runs, 3, 'a stopped runner does not start again')
})

t.test('probe ids are unique and intervals positive', async (t) => {
  const clock = new FakeClock()
  t.throws(() => new ProbeRunner({ clock, probes: [new CountingProbe('x', 1), new CountingProbe('x', 1)], rollout: () => rollout(), servedRequests: () => 0 }), /two probes with the id x/)
  t.throws(() => new ProbeRunner({ clock, probes: [new CountingProbe('y', 0)], rollout: () => rollout(), servedRequests: () => 0 }), /interval must be > 0/)
  const runner = new ProbeRunner({ clock, probes: [], rollout: () => rollout(), servedRequests: () => 0 })
  await runner.idle()
  t.same(runner.stats(), [])
})
