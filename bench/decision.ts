/** Decision-speed benchmark: how fast and with how much blast radius a breach is rolled back, beside a Flagger-style policy. */

export interface DecisionBenchOptions {
  /** Fewer and shorter runs, for trying the harness out. */
  readonly quick: boolean
}

/** Runs every scenario and returns the markdown section for bench/RESULTS.md. */
export async function runDecisionBench(options: DecisionBenchOptions): Promise<string> {
  return `## Decision speed\n\nNot measured yet (quick=${String(options.quick)}).\n`
}
