/** The DataPlaneLink of a single process: the control plane and the data plane share the Backends registry, no IPC. */
import type { Analysis } from '../analysis/analysis.js'
import type { Backends } from '../proxy/backends.js'
import type { RoutingTable } from '../routing/table.js'
import type { DataPlaneLink } from './controller.js'

export class LocalLink implements DataPlaneLink {
  readonly #backends: Backends

  constructor(backends: Backends) {
    this.#backends = backends
  }

  publish(table: RoutingTable): void {
    this.#backends.apply(table)
  }

  collect(analysis: Analysis, table: RoutingTable): void {
    const backends = this.#backends
    analysis.drain('stable', backends.recorderOf(table.stable.id))
    if (table.canary !== null) analysis.drain('canary', backends.recorderOf(table.canary.id))
    backends.sweep()
  }

  onCanaryError(listener: () => void): void {
    this.#backends.canaryErrors.listen(listener)
  }
}
