/** The only module that calls Math.random: the source of weighted picks, injectable for tests. */

/** Returns a number in [0, 1). */
export type Random = () => number

export const systemRandom: Random = Math.random
