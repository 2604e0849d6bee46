/** The small message protocol between the runner and its child processes (servers, load generator, microbench). */

/** A child tells the runner it is listening (or done starting) with this first message. */
export interface ReadyMessage {
  readonly type: 'ready'
  /** Base URL the candidate serves on, when it is a server. */
  readonly url?: string
  readonly [key: string]: unknown
}

/** The runner asks; the child answers with a ReplyMessage carrying the same id. */
export interface CallMessage {
  readonly type: 'call'
  readonly id: number
  readonly method: string
  readonly params: unknown
}

export type ReplyMessage = { readonly type: 'reply'; readonly id: number; readonly ok: true; readonly result: unknown } | { readonly type: 'reply'; readonly id: number; readonly ok: false; readonly error: string }

export type Handlers = Record<string, (params: never) => unknown>

/**
 * Child side: announce readiness, answer calls, and exit when the runner goes
 * away (the IPC channel closes), so no child outlives a crashed runner.
 */
export function serveCalls(handlers: Handlers, ready: Omit<ReadyMessage, 'type'> = {}): void {
  const send = process.send?.bind(process)
  if (send === undefined) throw new Error('this script is a bench child process: start it with `npm run bench`')
  process.on('disconnect', () => process.exit(0))
  process.on('message', (raw: unknown) => {
    const msg = raw as CallMessage
    if (msg.type !== 'call') return
    const handler = handlers[msg.method]
    const reply = (r: ReplyMessage): void => void send(r)
    if (handler === undefined) return reply({ type: 'reply', id: msg.id, ok: false, error: `unknown method ${msg.method}` })
    Promise.resolve()
      .then(() => handler(msg.params as never))
      .then(
        (result) => reply({ type: 'reply', id: msg.id, ok: true, result: result ?? null }),
        (error: unknown) => reply({ type: 'reply', id: msg.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      )
  })
  send({ type: 'ready', ...ready })
}
