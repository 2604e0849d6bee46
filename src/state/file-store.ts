/**
 * The rollout state as a JSON file, written atomically (temp file, fsync,
 * rename, directory fsync) so a crash leaves the old or the new state, never
 * half. Compare-and-set against the file's own revision; temp files a killed
 * process left behind are removed when the store is loaded.
 */
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { RolloutState } from '../rollout/phase.js'
import { decodeState, encodeState } from './codec.js'
import type { LoadResult, SaveResult, StateStore, StoredChange } from './store.js'

export class FileStateStore implements StateStore {
  readonly name: string
  readonly #file: string
  #queue: Promise<unknown> = Promise.resolve()
  #dirReady = false

  constructor(file: string) {
    this.#file = file
    this.name = file
  }

  async load(): Promise<LoadResult> {
    await this.#removeStaleTemps()
    let text: string
    try {
      text = await readFile(this.#file, 'utf8')
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return { kind: 'empty', version: 0 }
      return this.#keepBad(`cannot read ${this.#file}: ${code ?? String(error)}`)
    }
    const decoded = decodeState(text)
    if (!decoded.ok) return this.#keepBad(`${this.#file}: ${decoded.problem}`)
    return { kind: 'loaded', state: decoded.stored.state, version: decoded.stored.revision }
  }

  /** Saves run one at a time, in call order; each compares against the file as it is on disk then. */
  save(state: RolloutState, expected: number, fence: number | null = null): Promise<SaveResult> {
    const next = this.#queue.then(() => this.#save(state, expected, fence))
    // One failed write must not poison the chain for the next one.
    this.#queue = next.catch(() => undefined)
    return next
  }

  /** One process owns the file: there is no other writer to watch. */
  watch(_listener: (change: StoredChange) => void): () => void {
    return () => {}
  }

  async close(): Promise<void> {
    await this.#queue
  }

  async #save(state: RolloutState, expected: number, fence: number | null): Promise<SaveResult> {
    const current = await this.#current()
    if (fence !== null && current.fence !== null && fence < current.fence) return { ok: false, reason: 'fenced', version: current.revision }
    if (current.revision !== expected) return { ok: false, reason: 'conflict', version: current.revision }
    const revision = expected + 1
    await this.#write(encodeState(state, revision, fence ?? current.fence))
    return { ok: true, version: revision }
  }

  /** The revision and fence on disk; a missing file is revision 0, and so is one that cannot be read as a state (it is ours to overwrite). */
  async #current(): Promise<{ revision: number; fence: number | null }> {
    let text: string
    try {
      text = await readFile(this.#file, 'utf8')
    } catch {
      return { revision: 0, fence: null }
    }
    const decoded = decodeState(text)
    return decoded.ok ? { revision: decoded.stored.revision, fence: decoded.stored.fence } : { revision: 0, fence: null }
  }

  async #write(body: string): Promise<void> {
    const dir = dirname(this.#file)
    if (!this.#dirReady) {
      await mkdir(dir, { recursive: true })
      this.#dirReady = true
    }
    const temp = join(dir, `${this.#tempPrefix()}${process.pid}.tmp`)
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

  #tempPrefix(): string {
    return `.${basename(this.#file)}.`
  }

  /** A process killed during a save leaves its temp file (`.state.json.<pid>.tmp`); none is ever read, so each is removed. */
  async #removeStaleTemps(): Promise<void> {
    const prefix = this.#tempPrefix()
    let names: string[]
    try {
      names = await readdir(dirname(this.#file))
    } catch {
      return
    }
    for (const name of names) {
      if (name.startsWith(prefix) && /^\d+\.tmp$/.test(name.slice(prefix.length))) await unlink(join(dirname(this.#file), name)).catch(() => undefined)
    }
  }

  /** Moves an unusable state file aside under a new name, so nothing is lost and the next save starts clean. */
  async #keepBad(problem: string): Promise<LoadResult> {
    const keptAs = `${this.#file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`
    try {
      await rename(this.#file, keptAs)
      return { kind: 'corrupt', problem, keptAs, version: 0 }
    } catch {
      // It could not be moved: the next save still overwrites it (an undecodable file is revision 0).
      return { kind: 'corrupt', problem, keptAs: null, version: 0 }
    }
  }
}
