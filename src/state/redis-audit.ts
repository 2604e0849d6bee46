/**
 * The audit trail in a Redis stream shared by every replica: XADD per record
 * (capped with MAXLEN ~), XREVRANGE for the recent ones. Each entry holds the
 * record as the audit file's line would, and the replica that wrote it.
 */
import type { AuditRecord } from '../events/feed.js'
import { parseEvent, type AuditEvent, type AuditSink } from './audit-log.js'
import type { RedisConnection } from './redis-connection.js'

export interface RedisAuditOptions {
  /** The stream's key (createRedisBackend: `<prefix>:audit`). */
  readonly key: string
  /** The writing replica's id, kept beside each record. */
  readonly replica: string
  /** About this many entries are kept (MAXLEN ~ trims whole macro-nodes, so a few more may stay); default 10,000. */
  readonly maxLength?: number
  /** recent() without a limit returns this many; default 1000, as the file log keeps. */
  readonly capacity?: number
}

/**
 * A failed append (Redis unreachable) rejects and is counted; it is not kept
 * for later: while Redis is down nothing progresses (the rollout is shared
 * there), so what is lost is an attempt the caller already reports. The local
 * audit file can be written beside the stream for a per-replica copy.
 */
export class RedisAuditTrail implements AuditSink {
  readonly name: string
  readonly #connection: RedisConnection
  readonly #key: string
  readonly #replica: string
  readonly #maxLength: number
  readonly #capacity: number
  writeFailures = 0

  constructor(connection: RedisConnection, options: RedisAuditOptions) {
    this.#connection = connection
    this.#key = options.key
    this.#replica = options.replica
    this.#maxLength = options.maxLength ?? 10_000
    this.#capacity = options.capacity ?? 1000
    this.name = `${connection.name} ${options.key}`
  }

  /** Appends in call order: one connection sends commands in order, and the stream's ids only grow. */
  async append(record: AuditRecord): Promise<void> {
    const event: AuditEvent = { ...record, at: new Date(record.at).toISOString() }
    try {
      await this.#connection.run((c) => c.xadd(this.#key, 'MAXLEN', '~', this.#maxLength, '*', 'event', JSON.stringify(event), 'replica', this.#replica))
    } catch (error) {
      this.writeFailures++
      throw error
    }
  }

  /** The newest `limit` events of every replica, oldest first; an entry that cannot be read is skipped. */
  async recent(limit = this.#capacity): Promise<readonly AuditEvent[]> {
    const count = Math.max(0, Math.floor(limit))
    if (count === 0) return []
    const entries = await this.#connection.run((c) => c.xrevrange(this.#key, '+', '-', 'COUNT', count))
    const events: AuditEvent[] = []
    for (let i = entries.length - 1; i >= 0; i--) {
      const fields = entries[i]![1]
      const at = fields.indexOf('event')
      const event = at === -1 || at % 2 === 1 ? null : parseEvent(fields[at + 1] ?? '')
      if (event !== null) events.push(event)
    }
    return events
  }

  /**
   * The entries after stream id `after` (all of them from '0'), oldest first,
   * at most `limit`: with their ids, for a reader that follows the trail.
   */
  async since(after: string, limit = this.#capacity): Promise<readonly { readonly id: string; readonly replica: string; readonly event: AuditEvent }[]> {
    const entries = await this.#connection.run((c) => c.xrange(this.#key, after === '0' ? '-' : `(${after}`, '+', 'COUNT', Math.max(1, Math.floor(limit))))
    const out: { id: string; replica: string; event: AuditEvent }[] = []
    for (const [id, fields] of entries) {
      const event = parseEvent(fieldOf(fields, 'event') ?? '')
      if (event !== null) out.push({ id, replica: fieldOf(fields, 'replica') ?? '', event })
    }
    return out
  }

  /** The id of the newest entry ('0' when the stream is empty): where a reader that wants only new entries starts. */
  async newestId(): Promise<string> {
    const entries = await this.#connection.run((c) => c.xrevrange(this.#key, '+', '-', 'COUNT', 1))
    return entries[0]?.[0] ?? '0'
  }

  async close(): Promise<void> {}
}

/** A stream entry's field (fields alternate name, value). */
function fieldOf(fields: readonly string[], name: string): string | null {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1] ?? null
  return null
}
