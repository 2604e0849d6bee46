/** The microbench harness: interleaved rounds of fixed-size loops, timed by CPU time (and wall time beside it). */

export interface Case {
  readonly name: string
  readonly note: string
  /** Runs n operations and returns something derived from them (so the work cannot be dropped). */
  readonly run: (n: number) => number
}

export interface MicroCase {
  readonly name: string
  readonly note: string
  /** ns of this process's CPU time per operation, one entry per round. */
  readonly nsPerOp: number[]
  /** ns of wall-clock time per operation, one entry per round (inflated when other processes share the CPU). */
  readonly wallNsPerOp: number[]
}

export interface Measured {
  readonly cases: MicroCase[]
  readonly checksum: number
}

/**
 * A warm-up pass for the optimizing compiler, then `rounds` rounds of
 * A B C …, A B C …, so a noisy moment hits every case alike. CPU time
 * (getrusage via process.cpuUsage) is the figure: on a shared machine wall
 * time also counts the slices other processes ran in; both are kept.
 */
export function measure(list: readonly Case[], opsPerRound: number, warmupOps: number, rounds: number): Measured {
  let checksum = 0
  for (const c of list) checksum += c.run(warmupOps)
  const cases = list.map((c) => ({ name: c.name, note: c.note, nsPerOp: [] as number[], wallNsPerOp: [] as number[] }))
  for (let r = 0; r < rounds; r++) {
    list.forEach((c, k) => {
      const cpu0 = process.cpuUsage()
      const t0 = process.hrtime.bigint()
      checksum += c.run(opsPerRound)
      const wallNs = Number(process.hrtime.bigint() - t0)
      const cpu = process.cpuUsage(cpu0)
      cases[k]!.nsPerOp.push(((cpu.user + cpu.system) * 1000) / opsPerRound)
      cases[k]!.wallNsPerOp.push(wallNs / opsPerRound)
    })
  }
  return { cases, checksum }
}

