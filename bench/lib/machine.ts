/** What machine the figures come from, and how busy its CPUs were apart from the bench. */
import { readFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem, type } from 'node:os'

export interface Machine {
  readonly cpuModel: string
  readonly cores: number
  readonly ramBytes: number
  readonly os: string
  readonly node: string
}

export function machine(): Machine {
  const list = cpus()
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    ramBytes: totalmem(),
    os: `${type()} ${release()}`,
    node: process.version,
  }
}

export function loadAverage(): string {
  return loadavg()
    .map((n) => n.toFixed(2))
    .join(' / ')
}

/**
 * Busy time (seconds) of one CPU so far, from /proc/stat: everything but idle
 * and iowait. Null where /proc is not available.
 */
export function cpuBusySeconds(cpu: number): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`cpu${cpu} `))
    if (line === undefined) return null
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0)
    const idle = (f[3] ?? 0) + (f[4] ?? 0)
    // /proc/stat counts in USER_HZ, which Linux fixes at 100.
    return (total - idle) / 100
  } catch {
    return null
  }
}
