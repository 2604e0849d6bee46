/** Keep-alive undici pools, one per upstream origin, cached apart from weights so a weight change keeps its connections. */
import { Pool } from 'undici'

export interface PoolOptions {
  readonly connectTimeoutMs: number
}

export class UpstreamPools {
  readonly #pools = new Map<string, Pool>()
  readonly #options: PoolOptions

  constructor(options: PoolOptions) {
    this.#options = options
  }

  /** The pool for an upstream URL's origin, created on first use. */
  get(url: string): Pool {
    const origin = new URL(url).origin
    let pool = this.#pools.get(origin)
    if (pool === undefined) {
      pool = new Pool(origin, {
        connect: { timeout: this.#options.connectTimeoutMs },
        // A request on a kept-alive socket the upstream has just closed fails
        // with "other side closed"; keep our idle timeout below the common
        // server default (Node: 5s) and honour the server's Keep-Alive hint.
        keepAliveTimeout: 4_000,
        keepAliveTimeoutThreshold: 1_000,
        pipelining: 1,
      })
      this.#pools.set(origin, pool)
    }
    return pool
  }

  /** Closes the pools of origins no longer in use, after their requests in flight finish. */
  async retain(urls: Iterable<string>): Promise<void> {
    const keep = new Set<string>()
    for (const url of urls) keep.add(new URL(url).origin)
    const closing: Promise<void>[] = []
    for (const [origin, pool] of this.#pools) {
      if (!keep.has(origin)) {
        this.#pools.delete(origin)
        closing.push(pool.close())
      }
    }
    await Promise.all(closing)
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.all(pools.map((p) => p.close()))
  }
}
