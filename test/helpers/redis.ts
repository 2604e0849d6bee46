/**
 * A real redis-server for tests. `testRedis(t)` uses the one .ci/run started
 * (CANARY_PROXY_TEST_REDIS) when set, else starts one for the test file; either
 * way the file gets its own key prefix, removed at the end, so files run in
 * parallel without seeing each other's keys. `startRedisServer()` always
 * starts a private one, for tests that stop and restart it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { Redis } from 'ioredis'
import type { Test } from 'tap'

export interface RedisServer {
  readonly url: string
  readonly port: number
  /** PID of the running server; null while stopped. */
  readonly pid: number | null
  /** Stops the server (SIGTERM, by its PID) and waits for it to exit. */
  stop(): Promise<void>
  /** Starts it again on the same port, empty (no persistence). */
  start(): Promise<void>
}

export async function startRedisServer(t: Test): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'canary-proxy-redis-'))
  let child: ChildProcess | null = null
  let port = 0
  const launch = async (): Promise<void> => {
    child = await spawnRedis(port, dir)
  }
  // A free port can be taken between probing and binding: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort()
    try {
      await launch()
      break
    } catch (error) {
      if (attempt >= 4) throw error
    }
  }
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid ?? null
    },
    async stop() {
      const running = child
      child = null
      if (running === null || running.exitCode !== null || running.signalCode !== null) return
      const exited = new Promise((resolve) => running.once('exit', resolve))
      process.kill(running.pid!, 'SIGTERM')
      await exited
    },
    start: launch,
  }
  t.teardown(async () => {
    await server.stop()
    await rm(dir, { recursive: true, force: true })
  })
  return server
}

export interface TestRedis {
  readonly url: string
  /** Unique to this test file (and process); every key a test writes starts with it. */
  readonly prefix: string
  /** A fresh prefix under this file's, for one test or one fixture. */
  nextPrefix(): string
}

let fileCounter = 0

export async function testRedis(t: Test): Promise<TestRedis> {
  const shared = process.env.CANARY_PROXY_TEST_REDIS
  const url = shared !== undefined && shared !== '' ? shared : (await startRedisServer(t)).url
  const prefix = `cpx-test:${basename(process.argv[1] ?? 'test')}:${process.pid}:${fileCounter++}`
  let n = 0
  if (shared !== undefined && shared !== '') t.teardown(() => deleteKeys(url, prefix))
  return { url, prefix, nextPrefix: () => `${prefix}:${n++}` }
}

async function deleteKeys(url: string, prefix: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
      if (keys.length > 0) await client.unlink(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    client.disconnect()
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

/** Runs redis-server in the foreground (so its PID is ours to stop), loopback only, no persistence; resolves once it accepts connections. */
function spawnRedis(port: number, dir: string): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'notice', '--databases', '16']
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  return new Promise((resolve, reject) => {
    let output = ''
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) {
        child.stdout!.off('data', onData)
        child.off('exit', onExit)
        child.stdout!.resume()
        resolve(child)
      }
    }
    const onExit = (code: number | null) => reject(new Error(`redis-server on port ${port} exited (${code}) before it was ready:\n${output.slice(-2000)}`))
    child.stdout!.on('data', onData)
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.once('exit', onExit)
    child.once('error', reject)
  })
}
