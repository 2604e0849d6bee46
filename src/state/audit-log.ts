/** The audit trail: one JSON line per transition and admin action, appended to a file (whole lines only, even after a full disk), with the recent ones kept for GET /api/v1/events. */
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { EventView } from '../api/wire.js'
import type { AuditRecord } from '../events/feed.js'

/** As written to the file and served by the events API (the wire's EventView): `at` is an ISO 8601 time. */
export type AuditEvent = EventView

/**
 * Where audit records go: the file below (one process), or a Redis stream
 * shared by every replica (redis-audit.ts). `recent` is synchronous for the
 * file, which keeps the recent events in memory, and a promise for Redis:
 * callers await it either way.
 */
export interface AuditSink {
  /** For logs: the file path, the Redis key. */
  readonly name: string
  /** Appends that failed so far (canary_proxy_audit_write_failures_total). */
  readonly writeFailures: number
  /** Resolves once written; rejects (and counts a failure) when the write failed. The record is in `recent` either way. */
  append(record: AuditRecord): Promise<void>
  /** The most recent events (at most `limit`), oldest first. */
  recent(limit?: number): readonly AuditEvent[] | Promise<readonly AuditEvent[]>
  close(): Promise<void>
}

const TAIL_BYTES = 1 << 20
const SCAN_BYTES = 1 << 16

/**
 * Each record is one write() of one whole line to a file opened for append,
 * so lines never interleave. A write can still stop part-way (a full disk, a
 * file size limit, a crash), leaving a torn line without its newline: the
 * next record would be glued to it and both lost to every reader. So the
 * file's tail is repaired before the first append after a failed one, at
 * open() and at close(): a torn last line is cut off (a whole record that
 * only lacks its newline gets one), and the file holds whole lines only.
 * One process writes the file (the control plane's); readers skip any line
 * that is not JSON, so one bad line never hides the rest.
 */
export class AuditLog implements AuditSink {
  readonly file: string
  readonly #capacity: number
  readonly #recent: AuditEvent[] = []
  #handle: FileHandle | null = null
  #queue: Promise<void> = Promise.resolve()
  /** A write failed part-way or not at all: the tail must be repaired before the next line goes on. */
  #torn = false
  writeFailures = 0

  constructor(file: string, capacity = 1000) {
    this.file = file
    this.#capacity = capacity
  }

  get name(): string {
    return this.file
  }

  /** Opens the file, repairs a torn tail, and loads the most recent events from it. */
  async open(): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true })
    this.#handle = await open(this.file, 'a+')
    try {
      await this.#repairTail(this.#handle)
    } catch {
      // Not repairable now (the disk is still full): the first append tries again.
      this.#torn = true
    }
    const { size } = await this.#handle.stat()
    if (size === 0) return
    const length = Math.min(size, TAIL_BYTES)
    const buffer = Buffer.alloc(length)
    await this.#handle.read(buffer, 0, length, size - length)
    const lines = buffer.toString('utf8').split('\n')
    if (length < size) lines.shift() // the first line may start mid-record
    for (const line of lines) {
      const event = parseEvent(line)
      if (event !== null) this.#remember(event)
    }
  }

  append(record: AuditRecord): Promise<void> {
    const event: AuditEvent = { ...record, at: new Date(record.at).toISOString() }
    this.#remember(event)
    const line = `${JSON.stringify(event)}\n`
    const next = this.#queue.then(async () => {
      const handle = this.#handle
      if (handle === null) return
      try {
        if (this.#torn) await this.#repairTail(handle)
        this.#torn = true
        await handle.appendFile(line)
        this.#torn = false
      } catch (error) {
        this.writeFailures++
        throw error
      }
    })
    this.#queue = next.catch(() => undefined)
    return next
  }

  /** Recent events, oldest first (the last `limit` of them). */
  recent(limit?: number): readonly AuditEvent[] {
    return limit === undefined || limit >= this.#recent.length ? this.#recent : this.#recent.slice(this.#recent.length - limit)
  }

  async close(): Promise<void> {
    await this.#queue
    const handle = this.#handle
    this.#handle = null
    if (handle === null) return
    try {
      if (this.#torn) await this.#repairTail(handle).catch(() => undefined)
    } finally {
      await handle.close()
    }
  }

  /**
   * Cuts the file back to its last newline. The cut-off part is what a failed
   * write left: one line's beginning, as every line is written whole and ends
   * with its only newline. If that part still reads as a record (only the
   * newline was lost), the newline is added instead.
   */
  async #repairTail(handle: FileHandle): Promise<void> {
    const { size } = await handle.stat()
    let end = 0
    const chunk = Buffer.alloc(Math.min(SCAN_BYTES, size))
    for (let stop = size; stop > 0; ) {
      const start = Math.max(0, stop - chunk.length)
      const { bytesRead } = await handle.read(chunk, 0, stop - start, start)
      const at = chunk.subarray(0, bytesRead).lastIndexOf(0x0a)
      if (at !== -1) {
        end = start + at + 1
        break
      }
      stop = start
    }
    if (end < size) {
      const tail = Buffer.alloc(size - end)
      await handle.read(tail, 0, tail.length, end)
      if (parseEvent(tail.toString('utf8')) !== null) await handle.appendFile('\n')
      else await handle.truncate(end)
    }
    this.#torn = false
  }

  #remember(event: AuditEvent): void {
    this.#recent.push(event)
    if (this.#recent.length > this.#capacity) this.#recent.splice(0, this.#recent.length - this.#capacity)
  }
}

export function parseEvent(line: string): AuditEvent | null {
  if (line.trim() === '') return null
  try {
    const value = JSON.parse(line) as Partial<AuditEvent>
    if (typeof value.at !== 'string' || typeof value.action !== 'string' || typeof value.actor !== 'string') return null
    return value as AuditEvent
  } catch {
    return null
  }
}
