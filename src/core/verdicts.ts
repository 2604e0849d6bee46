/** A check's possible verdicts: shared by the gate, the wire schema and the metrics, which sit in different planes. */
export const VERDICTS = ['pass', 'fail', 'insufficient'] as const

/** pass: within the threshold (with enough data); fail: a proven breach; insufficient: not enough, missing or stale data, or a breach not yet proven (holds the step). */
export type Verdict = (typeof VERDICTS)[number]
