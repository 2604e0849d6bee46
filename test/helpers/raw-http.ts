/** Raw HTTP/1.1 over a plain socket, for requests no client library will send (absolute-form, bare hop-by-hop headers, Expect), plus a Prometheus text reader. */
import { connect, type Socket } from 'node:net'
import { request } from 'undici'

export interface RawResponse {
  readonly status: number
  readonly statusLine: string
  /** Lower-case names; a repeated header keeps every value, in order. */
  readonly headers: Readonly<Record<string, string[]>>
  readonly body: Buffer
}

/**
 * One client connection that writes bytes exactly as given and parses the
 * responses that come back, interim (1xx) ones included, one at a time.
 * Bodies are framed by Content-Length, chunked encoding, or the close (none for 1xx, 204, 304).
 */
export class RawConnection {
  readonly #socket: Socket
  #buffer = Buffer.alloc(0)
  #ended = false
  #wake: (() => void) | null = null

  private constructor(socket: Socket) {
    this.#socket = socket
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk])
      this.#notify()
    })
    socket.on('error', () => undefined)
    socket.on('close', () => {
      this.#ended = true
      this.#notify()
    })
  }

  static open(url: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url)
    return new Promise((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port) }, () => resolve(new RawConnection(socket)))
      socket.once('error', reject)
    })
  }

  write(data: string | Buffer): void {
    this.#socket.write(data)
  }

  /** True once the server closed the connection (or it was destroyed). */
  get ended(): boolean {
    return this.#ended
  }

  /** Resolves when the connection has closed, or false after timeoutMs. */
  async closed(timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!this.#ended) {
      if (Date.now() >= deadline) return false
      await this.#waitForData(deadline)
    }
    return true
  }

  destroy(): void {
    this.#socket.destroy()
  }

  /** The next complete response on this connection; rejects after timeoutMs or on a close mid-message. */
  async response(timeoutMs = 5_000): Promise<RawResponse> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const parsed = this.#tryParse()
      if (parsed !== null) return parsed
      if (this.#ended) throw new Error(`connection closed before a complete response; received ${JSON.stringify(this.#buffer.toString('latin1'))}`)
      if (Date.now() >= deadline) throw new Error(`no complete response within ${timeoutMs}ms; received ${JSON.stringify(this.#buffer.toString('latin1'))}`)
      await this.#waitForData(deadline)
    }
  }

  #notify(): void {
    const wake = this.#wake
    this.#wake = null
    wake?.()
  }

  #waitForData(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()))
      this.#wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  #tryParse(): RawResponse | null {
    const buf = this.#buffer
    const headEnd = buf.indexOf('\r\n\r\n')
    if (headEnd === -1) return null
    const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n')
    const statusLine = lines[0] ?? ''
    const status = Number(statusLine.split(' ')[1])
    const headers: Record<string, string[]> = {}
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      const name = line.slice(0, colon).trim().toLowerCase()
      ;(headers[name] ??= []).push(line.slice(colon + 1).trim())
    }
    let offset = headEnd + 4
    let body: Buffer
    // RFC 9112 §6.3: 1xx, 204 and 304 end with their head, whatever Content-Length says.
    if (status < 200 || status === 204 || status === 304) {
      body = Buffer.alloc(0)
    } else if (headers['transfer-encoding']?.some((v) => /chunked/i.test(v)) === true) {
      const parts: Buffer[] = []
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', offset)
        if (lineEnd === -1) return null
        const size = parseInt(buf.subarray(offset, lineEnd).toString('latin1'), 16)
        if (size === 0) {
          const trailerEnd = buf.indexOf('\r\n\r\n', lineEnd)
          const bareEnd = buf.subarray(lineEnd, lineEnd + 4).toString('latin1') === '\r\n\r\n'
          if (!bareEnd && trailerEnd === -1) return null
          offset = bareEnd ? lineEnd + 4 : trailerEnd + 4
          break
        }
        if (buf.length < lineEnd + 2 + size + 2) return null
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size))
        offset = lineEnd + 2 + size + 2
      }
      body = Buffer.concat(parts)
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length'][0])
      if (buf.length < offset + length) return null
      body = buf.subarray(offset, offset + length)
      offset += length
    } else {
      if (!this.#ended) return null
      body = buf.subarray(offset)
      offset = buf.length
    }
    this.#buffer = buf.subarray(offset)
    return { status, statusLine, headers, body: Buffer.from(body) }
  }
}

/** Sends one raw request on a fresh connection and returns the first final (non-1xx) response. */
export async function rawRequest(url: string, raw: string | Buffer, timeoutMs = 5_000): Promise<RawResponse> {
  const conn = await RawConnection.open(url)
  try {
    conn.write(raw)
    for (;;) {
      const res = await conn.response(timeoutMs)
      if (res.status >= 200) return res
    }
  } finally {
    conn.destroy()
  }
}

/** The host:port part of a URL, for a Host header. */
export function authority(url: string): string {
  return new URL(url).host
}

/**
 * The value of one sample in the admin /metrics text: `name` with at least the
 * given labels (in any order). Undefined when no such series is exposed.
 */
export function sample(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const brace = line.indexOf('{')
    const space = line.lastIndexOf(' ')
    const metric = brace === -1 ? line.slice(0, space) : line.slice(0, brace)
    if (metric !== name) continue
    const labelText = brace === -1 ? '' : line.slice(brace + 1, line.lastIndexOf('}'))
    const have = new Map<string, string>()
    for (const m of labelText.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have.set(m[1]!, m[2]!)
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(line.slice(space + 1))
  }
  return undefined
}

/** Reads the admin /metrics text. */
export async function scrape(adminUrl: string): Promise<string> {
  const res = await request(`${adminUrl}/metrics`)
  return res.body.text()
}
