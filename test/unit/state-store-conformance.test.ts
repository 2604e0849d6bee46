import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileStateStore } from '../../src/state/file-store.js'
import { MemoryBacking, MemoryLease, MemoryStateStore } from '../../src/state/memory-store.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { leaseConformance, stateStoreConformance } from '../conformance/state-store.js'

stateStoreConformance(t, 'file store', async () => {
  const file = join(await mkdtemp(join(tmpdir(), 'canary-proxy-conformance-')), 'state.json')
  return { a: new FileStateStore(file), b: new FileStateStore(file), watches: false, corrupt: () => writeFile(file, '{"version": 1, "state": ') }
})

stateStoreConformance(t, 'memory store', async () => {
  const backing = new MemoryBacking()
  return { a: new MemoryStateStore(backing), b: new MemoryStateStore(backing), watches: true, corrupt: null }
})

leaseConformance(t, 'memory lease', async () => {
  const backing = new MemoryBacking()
  const clock = new FakeClock()
  return { a: new MemoryLease(backing, clock, 1_000), b: new MemoryLease(backing, clock, 1_000), advance: async (ms) => clock.advance(ms) }
})
