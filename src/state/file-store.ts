/** The rollout state as a JSON file, written atomically (temp file, fsync, rename) so a crash leaves the old or the new state, never half. */
import { mkdir, open, readFile, rename } from 'node:fs/promises'
import { dirname, basename, join } from 'node:path'
import type { RolloutState } from '../rollout/phase.js'
import { stateProblem, type LoadResult, type StateStore } from './store.js'

export class FileStateStore implements StateStore {
  readonly name: string
  readonly #file: string
  #queue: Promise<void> = Promise.resolve()
  #pending: RolloutState | null = null
  #dirReady = false

  constructor(file: string) {
    this.#file = file
    this.name = file
  }

  async load(): Promise<LoadResult> {
    let text: string
    try {
      text = await readFile(this.#file, 'utf8')
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return { kind: 'empty' }
      return this.#keepBad(`cannot read ${this.#file}: ${code ?? String(error)}`)
    }
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch (error) {
      return this.#keepBad(`cannot parse ${this.#file}: ${(error as Error).message}`)
    }
    const problem = stateProblem(doc)
    if (problem !== null) return this.#keepBad(`${this.#file} is not a rollout state: ${problem}`)
    return { kind: 'loaded', state: (doc as { state: RolloutState }).state }
  }

  /**
   * Saves are chained so they land in call order; when several are queued
   * behind a slow disk only the newest is written (each resolves once a state
   * at least that new is durable).
   */
  save(state: RolloutState): Promise<void> {
    this.#pending = state
    const next = this.#queue.then(async () => {
      const latest = this.#pending
      if (latest === null) return
      this.#pending = null
      await this.#write(latest)
    })
    // One failed write must not poison the chain for the next one.
    this.#queue = next.catch(() => undefined)
    return next
  }

  async close(): Promise<void> {
    await this.#queue
  }

  async #write(state: RolloutState): Promise<void> {
    const dir = dirname(this.#file)
    if (!this.#dirReady) {
      await mkdir(dir, { recursive: true })
      this.#dirReady = true
    }
    const temp = join(dir, `.${basename(this.#file)}.${process.pid}.tmp`)
    const body = `${JSON.stringify({ version: 1, savedAt: new Date(state.updatedAt).toISOString(), state }, null, 2)}\n`
    const handle = await open(temp, 'w')
    try {
      await handle.writeFile(body)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, this.#file)
    // The rename is durable only once the directory entry is; best effort,
    // as some filesystems refuse to fsync a directory.
    try {
      const d = await open(dir, 'r')
      try {
        await d.sync()
      } finally {
        await d.close()
      }
    } catch {
      /* not supported here */
    }
  }

  /** Moves an unusable state file aside under a new name, so nothing is lost and the next save starts clean. */
  async #keepBad(problem: string): Promise<LoadResult> {
    const keptAs = `${this.#file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`
    try {
      await rename(this.#file, keptAs)
      return { kind: 'corrupt', problem, keptAs }
    } catch {
      return { kind: 'corrupt', problem, keptAs: null }
    }
  }
}
