/** The audit trail: one JSON line per transition and admin action, appended to a file, with the recent ones kept for GET /api/v1/events. */
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { EventView } from '../api/wire.js'
import type { AuditRecord } from '../events/feed.js'

/** As written to the file and served by the events API (the wire's EventView): `at` is an ISO 8601 time. */
export type AuditEvent = EventView

const TAIL_BYTES = 1 << 20

/**
 * Each record is one write() of one whole line to a file opened for append,
 * so lines never interleave. A crash can still leave a torn last line: open()
 * ends it with a newline before appending, and reading skips any line that is
 * not JSON, so one torn line never hides the rest.
 */
export class AuditLog {
  readonly file: string
  readonly #capacity: number
  readonly #recent: AuditEvent[] = []
  #handle: FileHandle | null = null
  #queue: Promise<void> = Promise.resolve()
  writeFailures = 0

  constructor(file: string, capacity = 1000) {
    this.file = file
    this.#capacity = capacity
  }

  /** Opens the file and loads the most recent events from its tail. */
  async open(): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true })
    this.#handle = await open(this.file, 'a+')
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
    if (buffer[length - 1] !== 0x0a) await this.#handle.appendFile('\n')
  }

  append(record: AuditRecord): Promise<void> {
    const event: AuditEvent = { ...record, at: new Date(record.at).toISOString() }
    this.#remember(event)
    const line = `${JSON.stringify(event)}\n`
    const next = this.#queue.then(async () => {
      if (this.#handle === null) return
      try {
        await this.#handle.appendFile(line)
      } catch (error) {
        this.writeFailures++
        throw error
      }
    })
    this.#queue = next.catch(() => undefined)
    return next
  }

  /** Recent events, oldest first. */
  recent(): readonly AuditEvent[] {
    return this.#recent
  }

  async close(): Promise<void> {
    await this.#queue
    await this.#handle?.close()
    this.#handle = null
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
