/** The default bound on client connections (listen.maxConnections), derived from the process's open-file limit. */
import { readFileSync } from 'node:fs'

/**
 * Descriptors kept back whatever the bound: stdio, libuv's epoll/eventfd/
 * signal pipes, the two listeners, admin and /metrics connections, the state
 * file's temp file and directory fsync, the audit log, and a few pools to a
 * previous canary still closing. 128 is several times what they take.
 */
export const FD_RESERVE = 128

/**
 * Descriptors one client connection can tie up: its own, the upstream
 * connection serving its request, and an idle keep-alive connection to the
 * other side's pool left over from a weight change (pools keep idle sockets
 * for 4 s). Client connections beyond (limit - reserve) / 3 would let a flood
 * of clients take the descriptors the upstream connects need, and then
 * `connect EMFILE` fails requests that were already accepted (issue 7, defect 3).
 */
export const FDS_PER_CONNECTION = 3

/**
 * Used when the limit cannot be read (no /proc: macOS, the BSDs): what the
 * formula gives for 1024, the usual soft limit, rounded down. Set
 * listen.maxConnections there.
 */
export const FALLBACK_MAX_CONNECTIONS = 256

/**
 * The soft RLIMIT_NOFILE from /proc/self/limits, or null. Read in-process
 * because Node raises the soft limit to the hard one at start-up, so the
 * shell's `ulimit -Sn` is not what this process has.
 */
export function openFileLimit(limits: string | null = readLimits()): number | null {
  if (limits === null) return null
  const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits)
  if (line === null) return null
  const soft = Number(line[1])
  return Number.isSafeInteger(soft) && soft > 0 ? soft : null
}

export function defaultMaxConnections(fdLimit: number | null): number {
  if (fdLimit === null) return FALLBACK_MAX_CONNECTIONS
  return Math.max(1, Math.floor((fdLimit - FD_RESERVE) / FDS_PER_CONNECTION))
}

function readLimits(): string | null {
  try {
    return readFileSync('/proc/self/limits', 'utf8')
  } catch {
    return null
  }
}
