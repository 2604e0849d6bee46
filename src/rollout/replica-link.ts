/**
 * ReplicaLink: the DataPlaneLink of a replica sharing its rollout with
 * others. In front of this host's own link (its Backends, or its workers), it
 * publishes what this replica measured in each window slot to the shared
 * windows (every slot, an empty one too), reads the other replicas' slots
 * back, and feeds them into the analysis in the slot they were measured in,
 * so every replica's window (the leader's, which decides) holds the whole
 * traffic. collect() is synchronous: the reads run in the background on the
 * slot clock and collect() feeds what has arrived.
 *
 *     slot k ends - d    collect, publish this replica's slot k ({key, stable, canary})
 *     slot k+1 + lag     read slots [k+1-lateSlots, k] of every replica, keep the new ones of this table's key
 *     collect()          feed them (analysis.addDelta(side, delta, slot)); a canary error among them asks for an early look
 *
 * A delta counts only under the routing table it was measured with (the key:
 * backends and weight): a replica that has not taken up a new weight yet
 * publishes under the old key, and its slots are left out. A replica that
 * stops publishing ages out with its slots.
 */
import type { Logger } from 'pino'
import type { WindowSink } from '../analysis/analysis.js'
import type { Clock, Timer } from '../core/clock.js'
import type { RoutingTable } from '../routing/table.js'
import { EMPTY_DELTA, WindowRecorder, type WindowDelta } from '../stats/recorder.js'
import type { DataPlaneLink } from './ports.js'

/** One replica's measurements in one window slot, as published. */
export interface ReplicaSlot {
  /** The routing table they were measured under (tableKey). */
  readonly key: string
  readonly slotMs: number
  readonly stable: WindowDelta
  readonly canary: WindowDelta
}

/** The shared windows (RedisWindows is one). */
export interface SharedWindows {
  readonly replica: string
  publish(slot: number, delta: ReplicaSlot): Promise<void>
  read(from: number, to: number): Promise<readonly { readonly slot: number; readonly deltas: readonly { readonly replica: string; readonly delta: ReplicaSlot }[] }[]>
}

export interface ReplicaLinkOptions {
  readonly clock: Clock
  /** The analysis the link feeds on its own slot clock (the controller's collects feed it too). */
  readonly sink: WindowSink & { readonly slotMs: number }
  readonly log: Logger
  /** Slots read back each time; a slot published later than this is left out (default 3). */
  readonly lateSlots?: number
}

/** Backends and weight: deltas measured under one key are comparable. */
export function tableKey(table: RoutingTable): string {
  return `${table.stable.id}|${table.canary?.id ?? ''}|${table.weight}`
}

interface Outbox {
  readonly stable: WindowRecorder
  readonly canary: WindowRecorder
}

interface Arrived {
  readonly slot: number
  readonly delta: ReplicaSlot
}

export class ReplicaLink implements DataPlaneLink {
  readonly #inner: DataPlaneLink
  readonly #windows: SharedWindows
  readonly #clock: Clock
  readonly #sink: WindowSink & { readonly slotMs: number }
  readonly #log: Logger
  readonly #lateSlots: number
  #table: RoutingTable | null = null
  #key: string | null = null
  /** This replica's measurements by slot, not yet published. */
  readonly #outbox = new Map<number, Outbox>()
  readonly #spare: Outbox[] = []
  /** Slots whose publication failed (store unreachable): published again on the next slot while they are in the window. */
  readonly #unsent = new Map<number, ReplicaSlot>()
  #published: number
  /** Other replicas' slots read and not yet fed; and which (slot, replica) were already taken, so none counts twice. */
  #arrived: Arrived[] = []
  readonly #taken = new Set<string>()
  /** The first slot of the current key: slots before it were measured under another table. */
  #since: number
  #canaryError: (() => void) | null = null
  #timers: Timer[] = []
  #running = false
  #lastError: string | null = null
  /** Replicas (this one included) seen in the last slot read: the status's replica count. */
  replicasSeen = 1

  constructor(inner: DataPlaneLink, windows: SharedWindows, options: ReplicaLinkOptions) {
    this.#inner = inner
    this.#windows = windows
    this.#clock = options.clock
    this.#sink = options.sink
    this.#log = options.log
    this.#lateSlots = options.lateSlots ?? 3
    this.#published = this.#slotNow() - 1
    this.#since = this.#slotNow()
  }

  publish(table: RoutingTable): void {
    this.#inner.publish(table)
    this.#table = table
    const key = tableKey(table)
    if (key === this.#key) return
    // A new weight or backend: what was measured before is no one's concern any more (every replica's window starts again).
    this.#key = key
    this.#since = this.#slotNow() - 1
    for (const box of this.#outbox.values()) this.#recycle(box)
    this.#outbox.clear()
    this.#unsent.clear()
    this.#arrived = []
    this.#taken.clear()
  }

  collect(sink: WindowSink, table: RoutingTable): void {
    const box = this.#box(Math.max(this.#slotNow(), this.#published + 1))
    this.#inner.collect(
      {
        drain(side, recorder) {
          if (recorder !== null) box[side].add(recorder)
          sink.drain(side, recorder)
        },
        addDelta(side, delta, slotNo) {
          box[side].addDelta(delta)
          sink.addDelta(side, delta, slotNo)
        },
      },
      table,
    )
    if (this.#arrived.length === 0) return
    for (const { slot, delta } of this.#arrived) {
      if (delta.key !== this.#key) continue
      sink.addDelta('stable', delta.stable, slot)
      sink.addDelta('canary', delta.canary, slot)
    }
    this.#arrived = []
  }

  onCanaryError(listener: () => void): void {
    this.#canaryError = listener
    this.#inner.onCanaryError(listener)
  }

  startTimers(): void {
    if (this.#running) return
    this.#running = true
    this.#inner.startTimers?.()
    this.#schedule()
  }

  stopTimers(): void {
    this.#running = false
    for (const timer of this.#timers) timer.cancel()
    this.#timers = []
    this.#inner.stopTimers?.()
  }

  /** Publishes every slot up to the one ending now; resolves when the writes are answered. */
  async publishSlots(): Promise<void> {
    const table = this.#table
    const key = this.#key
    if (table === null || key === null) return
    this.collect(this.#sink, table)
    const now = this.#slotNow()
    const slotMs = this.#sink.slotMs
    const writes: Promise<void>[] = []
    for (const [slot, delta] of this.#unsent) {
      this.#unsent.delete(slot)
      // Readers look this far back only: an older slot would never be read.
      if (slot > now - this.#lateSlots) writes.push(this.#send(slot, delta))
    }
    for (let slot = this.#published + 1; slot <= now; slot++) {
      const box = this.#outbox.get(slot)
      this.#outbox.delete(slot)
      const delta: ReplicaSlot = { key, slotMs, stable: box?.stable.takeDelta() ?? EMPTY_DELTA, canary: box?.canary.takeDelta() ?? EMPTY_DELTA }
      if (box !== undefined) this.#recycle(box)
      writes.push(this.#send(slot, delta))
    }
    this.#published = now
    await Promise.all(writes)
  }

  /** Reads the other replicas' recent slots; the next collect() feeds the new ones. */
  async fetchSlots(): Promise<void> {
    const key = this.#key
    if (key === null) return
    const current = this.#slotNow()
    const from = Math.max(this.#since, current - this.#lateSlots)
    if (from > current - 1) return
    let slots
    try {
      slots = await this.#windows.read(from, current - 1)
    } catch (error) {
      this.#noteError(error)
      return
    }
    if (key !== this.#key) return
    const self = this.#windows.replica
    let canaryErrors = 0
    const seen = new Set<string>([self])
    for (const { slot, deltas } of slots) {
      for (const { replica, delta } of deltas) {
        if (slot === current - 1) seen.add(replica)
        const id = `${slot} ${replica}`
        if (replica === self || this.#taken.has(id) || delta.key !== key || delta.slotMs !== this.#sink.slotMs) continue
        this.#taken.add(id)
        this.#arrived.push({ slot, delta })
        canaryErrors += delta.canary.errors
      }
    }
    this.replicasSeen = seen.size
    for (const id of this.#taken) if (Number(id.slice(0, id.indexOf(' '))) < from) this.#taken.delete(id)
    this.#lastError = null
    if (canaryErrors > 0) this.#canaryError?.()
  }

  /** Releases the outbox's histograms; the link must not be used after. */
  dispose(): void {
    this.stopTimers()
    for (const box of [...this.#outbox.values(), ...this.#spare]) {
      box.stable.dispose()
      box.canary.dispose()
    }
    this.#outbox.clear()
    this.#spare.length = 0
  }

  async #send(slot: number, delta: ReplicaSlot): Promise<void> {
    try {
      await this.#windows.publish(slot, delta)
      this.#lastError = null
    } catch (error) {
      this.#unsent.set(slot, delta)
      this.#noteError(error)
    }
  }

  /**
   * On the slot clock: publish just before a slot ends (so it holds the
   * whole slot), read a fifth of a slot after it ended (every replica has
   * published it by then, their clocks within a slot of each other).
   */
  #schedule(): void {
    const slotMs = this.#sink.slotMs
    const early = Math.min(5, Math.floor(slotMs / 10))
    const lag = Math.max(10, Math.round(slotMs / 5))
    this.#timers = [this.#aligned(-early, () => void this.publishSlots()), this.#aligned(lag, () => void this.fetchSlots())]
  }

  /** Runs `run` at `offset` ms into every slot (negative: before its end), rescheduled each time so it never drifts. */
  #aligned(offset: number, run: () => void): Timer {
    let timer: Timer | null = null
    const next = (): void => {
      const slotMs = this.#sink.slotMs
      const now = this.#clock.now()
      let at = Math.floor(now / slotMs) * slotMs + (((offset % slotMs) + slotMs) % slotMs)
      if (at <= now) at += slotMs
      timer = this.#clock.after(at - now, () => {
        run()
        if (this.#running) next()
      })
    }
    next()
    return { cancel: () => timer?.cancel() }
  }

  #box(slot: number): Outbox {
    let box = this.#outbox.get(slot)
    if (box === undefined) {
      box = this.#spare.pop() ?? { stable: new WindowRecorder(), canary: new WindowRecorder() }
      this.#outbox.set(slot, box)
    }
    return box
  }

  #recycle(box: Outbox): void {
    box.stable.clear()
    box.canary.clear()
    this.#spare.push(box)
  }

  #slotNow(): number {
    return Math.floor(this.#clock.now() / this.#sink.slotMs)
  }

  #noteError(error: unknown): void {
    const message = (error as Error).message
    if (message === this.#lastError) return
    this.#lastError = message
    this.#log.warn({ err: error }, `cannot share window slots with the other replicas: ${message}`)
  }
}
