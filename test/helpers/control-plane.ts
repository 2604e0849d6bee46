/** The real control plane over real backends, without listeners, on a fake clock: for controller tests that drive outcomes by hand. */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import type { StatusView } from '../../src/api/wire.js'
import { configFromObject } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { buildControlPlane, type ControlPlane } from '../../src/control-plane.js'
import { createLogger } from '../../src/log.js'
import { UpstreamPools } from '../../src/proxy/upstreams.js'
import type { RolloutController } from '../../src/rollout/controller.js'
import type { SideName } from '../../src/routing/snapshot.js'
import { MemoryStateStore } from '../../src/state/memory-store.js'
import type { StateStore } from '../../src/state/store.js'
import { FakeClock } from './fake-clock.js'

export interface Plane {
  readonly plane: ControlPlane
  readonly controller: RolloutController
  readonly clock: FakeClock
  readonly config: Config
  status(): StatusView
  /** Records outcomes on the backend a side routes to now, as an exchange would. */
  record(side: SideName, status: number | 'failure', latencyUs?: number, times?: number): void
}

export async function controlPlane(t: Test, over: Record<string, unknown>, store: StateStore = new MemoryStateStore(), clock = new FakeClock()): Promise<Plane> {
  const dir = await mkdtemp(join(tmpdir(), 'canary-proxy-controller-'))
  const parsed = configFromObject({ audit: { file: join(dir, 'audit.jsonl') }, ...over })
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error))
  const config = parsed.value
  const pools = new UpstreamPools({ connectTimeoutMs: 1000 })
  const plane = await buildControlPlane({ config, clock, store, pools, log: createLogger('silent') })
  t.teardown(async () => {
    plane.controller.stopTimers()
    await pools.close()
    plane.dispose()
  })
  return {
    plane,
    controller: plane.controller,
    clock,
    config,
    status: () => plane.status(),
    record(side, status, latencyUs = 1000, times = 1) {
      const target = plane.backends.ref.current[side]
      if (target === null) throw new Error(`no ${side} backend to record on`)
      for (let i = 0; i < times; i++) {
        if (status === 'failure') target.stats.recordFailure()
        else target.stats.recordResponse(status, latencyUs)
      }
    },
  }
}

/** Lets the data plane's messages (the canary error signal) reach the control plane. */
export function messages(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
