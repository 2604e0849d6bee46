import t from 'tap'
import { initialState, restore, transition } from '../../src/rollout/machine.js'
import type { Decision, Phase, RolloutEvent, RolloutSettings, RolloutState } from '../../src/rollout/phase.js'

const settings: RolloutSettings = { steps: [5, 25, 50, 100], stepDurationMs: 1000, bakeMs: 2000 }
const STABLE = 'http://stable.test:9001'
const CANARY = 'http://canary.test:9002'
const T0 = 1_000_000

const pass = (at: number): Decision => ({ at, verdict: 'pass', reason: 'fine', findings: [] })
const fail = (at: number): Decision => ({ at, verdict: 'fail', reason: 'canary error rate 12.0% over 240 requests > max 1.0%', findings: [] })
const hold = (at: number): Decision => ({ at, verdict: 'insufficient', reason: 'holding: 3 of 50', findings: [] })

function step(state: RolloutState, event: RolloutEvent, now: number, actor = 'tester'): RolloutState {
  const r = transition(state, event, now, settings, actor)
  if (!r.ok) throw new Error(`refused: ${r.conflict}`)
  return r.state
}

/** A state in each phase, reached through real transitions. */
function inPhase(phase: Phase): RolloutState {
  const idle = initialState(STABLE, CANARY, T0)
  const progressing = step(idle, { type: 'start', canary: null }, T0)
  switch (phase) {
    case 'idle':
      return idle
    case 'progressing':
      return progressing
    case 'paused':
      return step(progressing, { type: 'pause' }, T0 + 10)
    case 'baking':
      return step(step(progressing, { type: 'setWeight', weight: 100 }, T0 + 10), { type: 'resume' }, T0 + 20)
    case 'succeeded':
      return step(progressing, { type: 'promote' }, T0 + 10)
    case 'rolled_back':
      return step(progressing, { type: 'analysis', verdict: fail(T0 + 10) }, T0 + 10)
    case 'aborted':
      return step(progressing, { type: 'abort', reason: null }, T0 + 10)
  }
}

const PHASES: Phase[] = ['idle', 'progressing', 'paused', 'baking', 'succeeded', 'rolled_back', 'aborted']

t.test('each helper state is in the phase it claims', async (t) => {
  for (const phase of PHASES) t.equal(inPhase(phase).phase, phase)
})

t.test('every operator action in every phase', async (t) => {
  // expected phase after the action, or 409 when refused
  const table: Record<string, Record<Phase, Phase | 409>> = {
    start: { idle: 'progressing', progressing: 409, paused: 409, baking: 409, succeeded: 409, rolled_back: 'progressing', aborted: 'progressing' },
    pause: { idle: 409, progressing: 'paused', paused: 409, baking: 'paused', succeeded: 409, rolled_back: 409, aborted: 409 },
    resume: { idle: 409, progressing: 409, paused: 'progressing', baking: 409, succeeded: 409, rolled_back: 409, aborted: 409 },
    promote: { idle: 'succeeded', progressing: 'succeeded', paused: 'succeeded', baking: 'succeeded', succeeded: 409, rolled_back: 409, aborted: 409 },
    abort: { idle: 409, progressing: 'aborted', paused: 'aborted', baking: 'aborted', succeeded: 409, rolled_back: 409, aborted: 409 },
    setWeight: { idle: 'paused', progressing: 'paused', paused: 'paused', baking: 'paused', succeeded: 409, rolled_back: 'paused', aborted: 'paused' },
  }
  const events: Record<string, RolloutEvent> = {
    start: { type: 'start', canary: null },
    pause: { type: 'pause' },
    resume: { type: 'resume' },
    promote: { type: 'promote' },
    abort: { type: 'abort', reason: null },
    setWeight: { type: 'setWeight', weight: 30 },
  }
  for (const [action, row] of Object.entries(table)) {
    for (const phase of PHASES) {
      const before = inPhase(phase)
      const r = transition(before, events[action]!, T0 + 100, settings, 'tester')
      const expected = row[phase]
      if (expected === 409) {
        t.notOk(r.ok, `${action} in ${phase} is refused`)
        if (!r.ok) t.ok(r.conflict.length > 10, `${action} in ${phase} explains why: ${r.conflict}`)
      } else {
        t.ok(r.ok, `${action} in ${phase} is accepted`)
        if (!r.ok) continue
        t.equal(r.state.phase, expected, `${action} in ${phase} -> ${expected}`)
        const audit = r.effects.find((e) => e.type === 'audit')
        t.ok(audit, `${action} in ${phase} is audited`)
        if (audit?.type === 'audit') {
          t.equal(audit.record.actor, 'tester')
          t.same(audit.record.from, { phase: before.phase, weight: before.weight })
          t.same(audit.record.to, { phase: r.state.phase, weight: r.state.weight })
        }
        t.ok(r.effects.some((e) => e.type === 'persist'), `${action} in ${phase} is persisted`)
      }
    }
  }
})

t.test('start from succeeded needs a canary URL, and a new rollout gets a new generation', async (t) => {
  const done = inPhase('succeeded')
  t.equal(done.canaryUrl, null)
  t.equal(done.stableUrl, CANARY, 'the promoted canary is the new stable')
  const r = transition(done, { type: 'start', canary: 'http://next.test:9003' }, T0 + 500, settings, 'ci')
  t.ok(r.ok)
  if (!r.ok) return
  t.equal(r.state.phase, 'progressing')
  t.equal(r.state.canaryUrl, 'http://next.test:9003')
  t.equal(r.state.generation, done.generation + 1)
  t.ok(r.effects.some((e) => e.type === 'resetWindows'), 'a new rollout starts with empty canary figures')
})

t.test('a full healthy rollout: steps advance only after their duration with a passing verdict, then the bake, then success', async (t) => {
  let s = step(initialState(STABLE, CANARY, T0), { type: 'start', canary: null }, T0)
  t.same([s.phase, s.weight], ['progressing', 5])
  s = step(s, { type: 'analysis', verdict: pass(T0 + 999) }, T0 + 999)
  t.same([s.phase, s.weight], ['progressing', 5], 'a pass before the step duration does not advance')
  s = step(s, { type: 'analysis', verdict: hold(T0 + 1500) }, T0 + 1500)
  t.same([s.phase, s.weight], ['progressing', 5], 'too little traffic holds the step even after its duration')
  t.equal(s.lastDecision?.verdict, 'insufficient', 'and says so')
  s = step(s, { type: 'analysis', verdict: pass(T0 + 1600) }, T0 + 1600)
  t.same([s.phase, s.weight], ['progressing', 25])
  s = step(s, { type: 'analysis', verdict: pass(T0 + 2600) }, T0 + 2600)
  t.same([s.phase, s.weight], ['progressing', 50])
  s = step(s, { type: 'analysis', verdict: pass(T0 + 3600) }, T0 + 3600)
  t.same([s.phase, s.weight], ['baking', 100], 'reaching 100% starts the bake')
  if (s.phase === 'baking') t.equal(s.stepIndex, 3)
  s = step(s, { type: 'analysis', verdict: pass(T0 + 5500) }, T0 + 5500)
  t.equal(s.phase, 'baking', 'the bake lasts its full duration')
  const r = transition(s, { type: 'analysis', verdict: pass(T0 + 5600) }, T0 + 5600, settings)
  t.ok(r.ok)
  if (!r.ok) return
  t.equal(r.state.phase, 'succeeded')
  t.equal(r.state.stableUrl, CANARY)
  t.equal(r.state.canaryUrl, null)
  t.equal(r.state.weight, 0)
  t.ok(r.effects.some((e) => e.type === 'promoted'))
  t.ok(r.effects.some((e) => e.type === 'publish'))
})

t.test('a last step below 100 is followed by 100 and the bake', async (t) => {
  const short: RolloutSettings = { steps: [10, 50], stepDurationMs: 100, bakeMs: 100 }
  const run = (state: RolloutState, event: RolloutEvent, now: number): RolloutState => {
    const r = transition(state, event, now, short)
    if (!r.ok) throw new Error(r.conflict)
    return r.state
  }
  let s = run(initialState(STABLE, CANARY, T0), { type: 'start', canary: null }, T0)
  s = run(s, { type: 'analysis', verdict: pass(T0 + 100) }, T0 + 100)
  t.same([s.phase, s.weight], ['progressing', 50])
  s = run(s, { type: 'analysis', verdict: pass(T0 + 200) }, T0 + 200)
  t.same([s.phase, s.weight], ['baking', 100])
  t.equal(s.phase === 'baking' ? s.stepIndex : 'x', null, '100 is not one of the configured steps')
})

t.test('a single step of 100 bakes at once', async (t) => {
  const r = transition(initialState(STABLE, CANARY, T0), { type: 'start', canary: null }, T0, { ...settings, steps: [100] })
  t.ok(r.ok && r.state.phase === 'baking' && r.state.weight === 100)
})

t.test('a breach rolls back at once: at every step, while paused, in the bake, mid-step', async (t) => {
  let s = step(initialState(STABLE, CANARY, T0), { type: 'start', canary: null }, T0)
  const states: RolloutState[] = [s]
  for (let i = 1; i <= 3; i++) {
    s = step(s, { type: 'analysis', verdict: pass(T0 + i * 1000) }, T0 + i * 1000)
    states.push(s)
  }
  states.push(step(states[1]!, { type: 'pause' }, T0 + 1100))
  t.same(
    states.map((x) => `${x.phase}@${x.weight}`),
    ['progressing@5', 'progressing@25', 'progressing@50', 'baking@100', 'paused@25'],
  )
  for (const before of states) {
    // 1 ms into the step: no waiting for the step to end.
    const at = before.updatedAt + 1
    const r = transition(before, { type: 'analysis', verdict: fail(at) }, at, settings)
    t.ok(r.ok)
    if (!r.ok) continue
    t.equal(r.state.phase, 'rolled_back', `breach in ${before.phase}@${before.weight} rolls back`)
    t.equal(r.state.weight, 0)
    t.equal(r.state.canaryUrl, CANARY, 'the failed canary stays in the slot for debugging')
    if (r.state.phase === 'rolled_back') t.match(r.state.reason, /12\.0% over 240 requests/, 'the reason is kept')
    t.ok(r.effects.some((e) => e.type === 'rolledBack'))
    const audit = r.effects.find((e) => e.type === 'audit')
    t.equal(audit?.type === 'audit' ? audit.record.actor : '', 'auto')
  }
})

t.test('verdicts do nothing when no rollout is under way', async (t) => {
  for (const phase of ['idle', 'succeeded', 'rolled_back', 'aborted'] as const) {
    const before = inPhase(phase)
    const r = transition(before, { type: 'analysis', verdict: fail(T0 + 5) }, T0 + 5, settings)
    t.ok(r.ok && r.state === before && r.effects.length === 0, `${phase} ignores verdicts`)
  }
})

t.test('paused holds the weight: passes never advance it', async (t) => {
  const paused = inPhase('paused')
  const r = transition(paused, { type: 'analysis', verdict: pass(T0 + 100_000) }, T0 + 100_000, settings)
  t.ok(r.ok && r.state.phase === 'paused' && r.state.weight === 5)
})

t.test('set-weight between steps, then resume: progression continues from the step above', async (t) => {
  let s = step(inPhase('progressing'), { type: 'setWeight', weight: 30 }, T0 + 10)
  t.same([s.phase, s.weight], ['paused', 30])
  if (s.phase === 'paused') t.equal(s.stepIndex, 1, 'the highest step at or below 30 is 25 (index 1)')
  s = step(s, { type: 'resume' }, T0 + 20)
  t.same([s.phase, s.weight], ['progressing', 30], 'resume keeps the weight and observes it afresh')
  s = step(s, { type: 'analysis', verdict: pass(T0 + 1020) }, T0 + 1020)
  t.same([s.phase, s.weight], ['progressing', 50])
})

t.test('set-weight below the first step, or 0, then resume starts at the first step', async (t) => {
  for (const w of [0, 1]) {
    let s = step(inPhase('idle'), { type: 'setWeight', weight: w }, T0 + 10)
    if (s.phase === 'paused') t.equal(s.stepIndex, null)
    s = step(s, { type: 'resume' }, T0 + 20)
    t.same([s.phase, s.weight], ['progressing', 5])
  }
})

t.test('set-weight 100 and resume bakes; lowering the weight is allowed in any phase with a canary', async (t) => {
  const baking = inPhase('baking')
  t.same([baking.phase, baking.weight], ['baking', 100])
  const lowered = step(baking, { type: 'setWeight', weight: 0.5 }, T0 + 50)
  t.same([lowered.phase, lowered.weight], ['paused', 0.5])
})

t.test('abort keeps an operator reason; promote names the actor', async (t) => {
  const a = step(inPhase('progressing'), { type: 'abort', reason: 'bad deploy' }, T0 + 10, 'alice')
  t.equal(a.phase === 'aborted' ? a.reason : '', 'bad deploy')
  const b = step(inPhase('progressing'), { type: 'abort', reason: null }, T0 + 10, 'alice')
  t.match(b.phase === 'aborted' ? b.reason : '', /alice/)
  const p = step(inPhase('paused'), { type: 'promote' }, T0 + 10, 'bob')
  t.match(p.phase === 'succeeded' ? p.reason : '', /bob/)
})

t.test('resume without a canary is refused', async (t) => {
  const paused: RolloutState = { ...initialState(STABLE, null, T0), phase: 'paused', weight: 0, stepIndex: null }
  const r = transition(paused, { type: 'resume' }, T0, settings)
  t.notOk(r.ok)
})

t.test('start is allowed from the safe paused state that has no canary', async (t) => {
  const safe: RolloutState = { ...initialState(STABLE, null, T0), phase: 'paused', weight: 0, stepIndex: null }
  const r = transition(safe, { type: 'start', canary: CANARY }, T0, settings)
  t.ok(r.ok && r.state.phase === 'progressing' && r.state.canaryUrl === CANARY)
})

t.test('set-weight from idle or an ended rollout is a new rollout', async (t) => {
  const ended = inPhase('rolled_back')
  const s = step(ended, { type: 'setWeight', weight: 10 }, T0 + 50)
  t.equal(s.generation, ended.generation + 1)
  t.equal(s.lastDecision, null, 'the last rollout\'s decision does not carry over')
  const under = step(inPhase('progressing'), { type: 'setWeight', weight: 10 }, T0 + 50)
  t.equal(under.generation, inPhase('progressing').generation, 'within a rollout the generation stays')
})

t.test('restore: every start-up case is an event of the machine', async (t) => {
  const upstreams = { stable: STABLE, canary: CANARY, autoStart: false }
  const empty = restore({ kind: 'empty' }, upstreams, T0, settings)
  t.same([empty.state.phase, empty.state.weight], ['idle', 0], 'an empty store: idle')
  t.same(empty.effects.map((e) => e.type), ['persist', 'publish'], 'saved once, and the routing table published')
  const auto = restore({ kind: 'empty' }, { ...upstreams, autoStart: true }, T0, settings)
  t.same([auto.state.phase, auto.state.weight], ['progressing', 5], 'autoStart with a canary: the rollout begins')

  const corrupt = restore({ kind: 'corrupt', problem: 'cannot parse', keptAs: '/x/state.json.corrupt-1' }, { ...upstreams, autoStart: true }, T0, settings)
  t.same([corrupt.state.phase, corrupt.state.weight, corrupt.state.canaryUrl], ['paused', 0, CANARY], 'a corrupt store starts safe: paused at 0%, autoStart or not')
  const note = corrupt.effects.find((e) => e.type === 'audit')
  t.match(note?.type === 'audit' ? note.record : {}, { action: 'recover', reason: /cannot parse.*kept as \/x\/state\.json\.corrupt-1/ })

  const stored = step(step(inPhase('progressing'), { type: 'analysis', verdict: pass(T0 + 1000) }, T0 + 1000), { type: 'pause' }, T0 + 1100)
  const again = restore({ kind: 'loaded', state: stored }, upstreams, T0 + 9000, settings)
  t.same([again.state.phase, again.state.weight], ['paused', 25], 'a stored state resumes its phase and weight')
  t.notOk(again.effects.some((e) => e.type === 'persist' || e.type === 'audit'), 'nothing to save or note when nothing changed')

  const running = step(inPhase('progressing'), { type: 'analysis', verdict: pass(T0 + 1000) }, T0 + 1000)
  const fresh = restore({ kind: 'loaded', state: running }, upstreams, T0 + 9000, settings)
  t.equal(fresh.state.phase === 'progressing' ? fresh.state.stepStartedAt : 0, T0 + 9000, 'the step is observed afresh after a restart')
})

t.test('config events: a changed stable is adopted, a new canary starts over, steps are found again from the weight', async (t) => {
  const running = step(inPhase('progressing'), { type: 'analysis', verdict: pass(T0 + 1000) }, T0 + 1000) // 25%
  const moved = transition(running, { type: 'config', upstreams: { stable: 'http://stable2.test', canary: CANARY, autoStart: false } }, T0 + 2000, settings)
  t.ok(moved.ok)
  if (!moved.ok) return
  t.same([moved.state.phase, moved.state.weight, moved.state.stableUrl], ['progressing', 25, 'http://stable2.test'], 'the rollout goes on against the new stable')
  t.ok(moved.effects.some((e) => e.type === 'audit' && e.record.action === 'config'), 'and the change is in the audit trail')

  const replaced = transition(running, { type: 'config', upstreams: { stable: STABLE, canary: 'http://canary2.test', autoStart: true } }, T0 + 2000, settings)
  t.ok(replaced.ok && replaced.state.canaryUrl === 'http://canary2.test' && replaced.state.phase === 'progressing' && replaced.state.weight === 5, 'a new canary: a new rollout from the first step')
  t.ok(replaced.ok && replaced.state.generation === running.generation + 1, 'with a new generation (empty figures)')

  const same = transition(running, { type: 'config', upstreams: { stable: STABLE, canary: CANARY, autoStart: true } }, T0 + 2000, { ...settings, steps: [10, 25, 75, 100] })
  t.ok(same.ok)
  if (!same.ok) return
  t.same([same.state.phase, same.state.weight, same.state.phase === 'progressing' ? same.state.stepIndex : -2], ['progressing', 25, 1], 'new steps: 25% is step 1 of the new list, nothing else moves')
  t.same(same.effects.map((e) => e.type), ['publish'], 'no note, no save: only the table is published again (routing rules may have changed)')
})

t.test('step objects: a step with its own duration is observed that long (issue 9)', async (t) => {
  const own: RolloutSettings = { ...settings, steps: [10, 50, 100], stepDurationsMs: [5000, undefined, undefined] }
  const go = (s: RolloutState, e: RolloutEvent, now: number): RolloutState => {
    const r = transition(s, e, now, own, 'tester')
    if (!r.ok) throw new Error(r.conflict)
    return r.state
  }
  let s = go(initialState(STABLE, CANARY, T0), { type: 'start', canary: null }, T0)
  s = go(s, { type: 'analysis', verdict: pass(T0 + 1000) }, T0 + 1000)
  t.equal(s.weight, 10, 'the default 1s is not enough for a 5s step')
  s = go(s, { type: 'analysis', verdict: pass(T0 + 5000) }, T0 + 5000)
  t.equal(s.weight, 50, 'after its own 5s it advances')
  s = go(s, { type: 'analysis', verdict: pass(T0 + 6000) }, T0 + 6000)
  t.equal(s.phase, 'baking', 'the next step has the default 1s')
})

t.test('a pause step waits for resume with checks still running, then goes on', async (t) => {
  const paused: RolloutSettings = { ...settings, steps: [10, 50, 100], pauseSteps: [false, true, false] }
  const go = (s: RolloutState, e: RolloutEvent, now: number): RolloutState => {
    const r = transition(s, e, now, paused, 'tester')
    if (!r.ok) throw new Error(r.conflict)
    return r.state
  }
  let s = go(initialState(STABLE, CANARY, T0), { type: 'start', canary: null }, T0)
  s = go(s, { type: 'analysis', verdict: pass(T0 + 1000) }, T0 + 1000)
  t.match(s, { phase: 'paused', weight: 50, stepIndex: 1 }, 'reaching the pause step pauses there')
  const r = transition(s, { type: 'analysis', verdict: pass(T0 + 60_000) }, T0 + 60_000, paused)
  t.ok(r.ok && r.state.phase === 'paused' && r.state.weight === 50, 'passes never move it on')
  const broken = transition(s, { type: 'analysis', verdict: fail(T0 + 61_000) }, T0 + 61_000, paused)
  t.ok(broken.ok && broken.state.phase === 'rolled_back', 'a breach while waiting rolls back')
  s = go(s, { type: 'resume' }, T0 + 70_000)
  t.match(s, { phase: 'progressing', weight: 50, stepIndex: 1 }, 'resume observes the step afresh')
  s = go(s, { type: 'analysis', verdict: pass(T0 + 71_000) }, T0 + 71_000)
  t.equal(s.phase, 'baking', 'then it advances like any step')
})

t.test('progressDeadline: a step that cannot finish pauses (default) or rolls back, and says why', async (t) => {
  for (const onDeadline of ['pause', 'rollback'] as const) {
    const withDeadline: RolloutSettings = { ...settings, progressDeadlineMs: 10_000, onDeadline }
    let s = step(initialState(STABLE, CANARY, T0), { type: 'start', canary: null }, T0)
    const early = transition(s, { type: 'analysis', verdict: hold(T0 + 9_999) }, T0 + 9_999, withDeadline)
    t.ok(early.ok && early.state.phase === 'progressing', `${onDeadline}: before the deadline it holds`)
    const late = transition(s, { type: 'analysis', verdict: hold(T0 + 10_000) }, T0 + 10_000, withDeadline)
    if (!late.ok) throw new Error(late.conflict)
    s = late.state
    t.equal(s.phase, onDeadline === 'pause' ? 'paused' : 'rolled_back', `${onDeadline}: at the deadline`)
    t.equal(s.weight, onDeadline === 'pause' ? 5 : 0)
    const audit = late.effects.find((e) => e.type === 'audit')
    t.match(audit?.type === 'audit' ? audit.record.reason : '', /progress deadline: step 1 \(5%\) did not finish within 10s \(last verdict insufficient: holding: 3 of 50\)/)
  }
  const bake: RolloutSettings = { ...settings, bakeMs: 60_000, progressDeadlineMs: 10_000 }
  const baking = step(step(inPhase('progressing'), { type: 'setWeight', weight: 100 }, T0 + 10), { type: 'resume' }, T0 + 20)
  const r = transition(baking, { type: 'analysis', verdict: hold(T0 + 10_020) }, T0 + 10_020, bake)
  t.ok(r.ok && r.state.phase === 'paused' && r.state.weight === 100, 'the bake has the deadline too')
  const none = transition(inPhase('progressing'), { type: 'analysis', verdict: hold(T0 + 1e9) }, T0 + 1e9, settings)
  t.ok(none.ok && none.state.phase === 'progressing', 'no deadline configured: it holds for ever')
})

t.test('pre-rollout gates: a rollout starts at 0% and enters its first step once every gate passed', async (t) => {
  const gated: RolloutSettings = { ...settings, preRolloutChecks: ['webhook.a', 'webhook.b'] }
  const go = (s: RolloutState, e: RolloutEvent, now: number): RolloutState => {
    const r = transition(s, e, now, gated, 'tester')
    if (!r.ok) throw new Error(r.conflict)
    return r.state
  }
  const finding = (check: string, verdict: 'pass' | 'insufficient') => ({ check, verdict, observed: null, threshold: null, n: 0, reason: check })
  const decision = (at: number, a: 'pass' | 'insufficient', b: 'pass' | 'insufficient'): Decision => ({ at, verdict: 'insufficient', reason: 'holding', findings: [finding('webhook.a', a), finding('webhook.b', b)] })
  let s = go(initialState(STABLE, CANARY, T0), { type: 'start', canary: null }, T0)
  t.match(s, { phase: 'progressing', weight: 0, stepIndex: -1 })
  s = go(s, { type: 'analysis', verdict: decision(T0 + 100, 'pass', 'insufficient') }, T0 + 100)
  t.equal(s.weight, 0, 'one gate of two is not enough')
  s = go(s, { type: 'analysis', verdict: decision(T0 + 200, 'pass', 'pass') }, T0 + 200)
  t.match(s, { phase: 'progressing', weight: 5, stepIndex: 0 }, 'both passed: the first step, at once')
  const r = transition(go(initialState(STABLE, CANARY, T0), { type: 'start', canary: null }, T0), { type: 'analysis', verdict: fail(T0 + 50) }, T0 + 50, gated)
  t.ok(r.ok && r.state.phase === 'rolled_back', 'a proven fail still rolls back while waiting')
})

t.test('resuming a rollout paused before its first step goes back to the pre-rollout gates', async (t) => {
  const gated: RolloutSettings = { ...settings, preRolloutChecks: ['webhook.a'], progressDeadlineMs: 1000 }
  const started = transition(initialState(STABLE, CANARY, T0), { type: 'start', canary: null }, T0, gated)
  if (!started.ok) throw new Error(started.conflict)
  const late = transition(started.state, { type: 'analysis', verdict: hold(T0 + 1000) }, T0 + 1000, gated)
  if (!late.ok) throw new Error(late.conflict)
  t.match(late.state, { phase: 'paused', weight: 0 }, 'the gate did not answer by the deadline')
  const audit = late.effects.find((e) => e.type === 'audit')
  t.match(audit?.type === 'audit' ? audit.record.reason : '', /the pre-rollout stage \(0%\) did not finish within 1s/)
  const resumed = transition(late.state, { type: 'resume' }, T0 + 2000, gated)
  t.ok(resumed.ok && resumed.state.phase === 'progressing' && resumed.state.weight === 0 && resumed.state.stepIndex === -1, 'still at 0%, waiting for the gate')
})
