/** Streaming: 100 MiB each way through the proxy with bounded memory, because backpressure reaches the fast side when the other side is slow. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startApp } from '../helpers/app.js'
import { sample, scrape } from '../helpers/raw-http.js'

const MiB = 1024 * 1024
const TOTAL = 100 * MiB
const CHUNK = Buffer.alloc(64 * 1024, 0x61)
/** A proxy that read on while the far side stalls would hold most of the 100 MiB; one that pauses holds a few socket buffers. */
const LIMIT = 40 * MiB
/**
 * rss also holds allocator slack from the client, the proxy and the upstream
 * (all in this process): up to ~45 MiB was seen with backpressure working,
 * while buffering the whole transfer adds ~100 MiB. The byte-exact measures
 * are the in-flight count and arrayBuffers, held to LIMIT.
 */
const RSS_LIMIT = 80 * MiB

// Garbage that V8 has not collected yet counts in rss and arrayBuffers too
// (it collects external memory only every ~64 MiB of growth), so each memory
// sample follows a young-generation GC: what remains is what is referenced.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void

interface Peak {
  rss: number
  arrayBuffers: number
}

/** Samples memory every 200ms (after a minor GC) until stopped; returns the peak growth over the baseline. */
function watchMemory(): { stop: () => Promise<Peak> } {
  gc({ type: 'minor' })
  const base = process.memoryUsage()
  const peak: Peak = { rss: 0, arrayBuffers: 0 }
  let running = true
  const loop = (async () => {
    while (running) {
      await sleep(200)
      gc({ type: 'minor' })
      // Backing stores are freed by a background sweeper after the GC.
      await new Promise((resolve) => setImmediate(resolve))
      const m = process.memoryUsage()
      peak.rss = Math.max(peak.rss, m.rss - base.rss)
      peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers - base.arrayBuffers)
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
      return peak
    },
  }
}

/** Bytes handed over by the producer vs bytes taken by the consumer at the far end; the largest difference is what sat in between. */
class Flow {
  produced = 0
  consumed = 0
  maxInFlight = 0

  consume(bytes: number): void {
    this.consumed += bytes
    this.maxInFlight = Math.max(this.maxInFlight, this.produced - this.consumed)
  }
}

/** A consumer slower than loopback: it pauses 10ms after every MiB, so a producer that was not held back would pile bytes up in between. */
async function slowDrain(source: AsyncIterable<Buffer>, flow: Flow): Promise<number> {
  let bytes = 0
  let mark = 0
  for await (const chunk of source) {
    bytes += chunk.length
    flow.consume(chunk.length)
    if (bytes - mark >= MiB) {
      mark = bytes
      await sleep(10)
    }
  }
  return bytes
}

/** 100 MiB from one reused 64 KiB buffer, produced only as fast as the reader pulls it. */
async function* generate(total: number, flow: Flow): AsyncGenerator<Buffer> {
  for (let sent = 0; sent < total; sent += CHUNK.length) {
    flow.produced += CHUNK.length
    yield CHUNK
  }
}

/** POST: drains the body slowly and answers its size; GET: sends 100 MiB, respecting backpressure. */
async function startStreamingUpstream(t: Test, flows: { upload: Flow; download: Flow }): Promise<string> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'POST') {
      slowDrain(req, flows.upload).then(
        (bytes) => {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ bytes }))
        },
        () => res.destroy(),
      )
      return
    }
    req.resume()
    const total = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('bytes') ?? TOTAL)
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total })
    let sent = 0
    const pump = (): void => {
      while (sent < total) {
        sent += CHUNK.length
        flows.download.produced += CHUNK.length
        if (!res.write(CHUNK)) {
          res.once('drain', pump)
          return
        }
      }
      res.end()
    }
    pump()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`

t.test('100 MiB upload and download with bounded memory', async (t) => {
  const flows = { upload: new Flow(), download: new Flow() }
  const upstream = await startStreamingUpstream(t, flows)
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: upstream } })
  // Warm up with 16 MiB each way, so the heap and code are at their working
  // size and the baseline is not taken cold.
  const warm = { upload: new Flow(), download: new Flow() }
  await (await request(`${proxyUrl}/warm`, { method: 'POST', body: Readable.from(generate(16 * MiB, warm.upload)) })).body.dump()
  // (dump() would stop reading after 128 KiB and count as a client abort.)
  await (await request(`${proxyUrl}/warm?bytes=${16 * MiB}`)).body.arrayBuffer()
  flows.upload.produced = flows.upload.consumed = flows.download.produced = 0

  await t.test('upload to a slow upstream', async (t) => {
    const memory = watchMemory()
    const res = await request(`${proxyUrl}/upload`, { method: 'POST', body: Readable.from(generate(TOTAL, flows.upload)), headers: { 'content-type': 'application/octet-stream' } })
    const body = (await res.body.json()) as { bytes: number }
    const peak = await memory.stop()
    t.equal(res.statusCode, 200)
    t.equal(body.bytes, TOTAL, 'the upstream received every byte')
    t.ok(flows.upload.maxInFlight < LIMIT, `at most ${mib(flows.upload.maxInFlight)} between client and upstream (limit ${mib(LIMIT)})`)
    t.ok(peak.rss < RSS_LIMIT, `rss grew ${mib(peak.rss)} (limit ${mib(RSS_LIMIT)})`)
    t.ok(peak.arrayBuffers < LIMIT, `arrayBuffers grew ${mib(peak.arrayBuffers)} (limit ${mib(LIMIT)})`)
  })

  await t.test('download by a slow client', async (t) => {
    const memory = watchMemory()
    const res = await request(`${proxyUrl}/download`)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-length'], String(TOTAL), 'the upstream framing is kept')
    const bytes = await slowDrain(res.body, flows.download)
    const peak = await memory.stop()
    t.equal(bytes, TOTAL, 'the client received every byte')
    t.ok(flows.download.maxInFlight < LIMIT, `at most ${mib(flows.download.maxInFlight)} between upstream and client (limit ${mib(LIMIT)})`)
    t.ok(peak.rss < RSS_LIMIT, `rss grew ${mib(peak.rss)} (limit ${mib(RSS_LIMIT)})`)
    t.ok(peak.arrayBuffers < LIMIT, `arrayBuffers grew ${mib(peak.arrayBuffers)} (limit ${mib(LIMIT)})`)
  })

  const metrics = await scrape(adminUrl)
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'stable', status_class: '2xx' }), 4, 'the warm-ups and both transfers recorded once each, as 2xx')
})
