/** StateStore: where the rollout state lives between runs; load() reports a corrupt store instead of guessing. */
import type { RolloutState } from '../rollout/phase.js'

export type LoadResult =
  | { readonly kind: 'empty' }
  | { readonly kind: 'loaded'; readonly state: RolloutState }
  /** Unreadable or unparsable: the bad copy was kept as `keptAs` (null when even that failed). */
  | { readonly kind: 'corrupt'; readonly problem: string; readonly keptAs: string | null }

export interface StateStore {
  /** Human name of the store for logs, e.g. the file path. */
  readonly name: string
  load(): Promise<LoadResult>
  /** Resolves once the state is durable; saves are applied in call order. */
  save(state: RolloutState): Promise<void>
  close(): Promise<void>
}

const PHASES = new Set(['idle', 'progressing', 'paused', 'baking', 'succeeded', 'rolled_back', 'aborted'])

/**
 * Checks a parsed document is a state this version can resume from; returns
 * the problem in words, or null. Hand-checked because it is our own format,
 * versioned by `version`.
 */
export function stateProblem(doc: unknown): string | null {
  if (doc === null || typeof doc !== 'object') return 'not a JSON object'
  const d = doc as Record<string, unknown>
  if (d.version !== 1) return `unknown format version ${JSON.stringify(d.version)}`
  const s = d.state as Record<string, unknown> | undefined
  if (s === undefined || s === null || typeof s !== 'object') return 'no "state" object'
  if (typeof s.phase !== 'string' || !PHASES.has(s.phase)) return `unknown phase ${JSON.stringify(s.phase)}`
  if (typeof s.stableUrl !== 'string') return 'state.stableUrl is missing'
  if (s.canaryUrl !== null && typeof s.canaryUrl !== 'string') return 'state.canaryUrl must be a string or null'
  if (typeof s.weight !== 'number' || !(s.weight >= 0 && s.weight <= 100)) return 'state.weight must be a number 0..100'
  if (typeof s.generation !== 'number') return 'state.generation is missing'
  return null
}
