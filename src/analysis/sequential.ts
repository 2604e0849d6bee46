/** Anytime-valid sequential tests on counts: e-values (in logs) that a gate may look at after every request and still keep its error bound. */

/*
 * Every function here returns ln E, the natural log of an e-value: a
 * nonnegative statistic that starts at 1 and is a supermartingale under the
 * null (its expected next value, given everything so far, is at most its
 * current one). By Ville's inequality the chance that it EVER reaches 1/α,
 * however often and whenever it is looked at, is at most α. So "reject when
 * ln E >= ln(1/α)" is a test whose error bound survives unlimited looks.
 * (Ville 1939; Howard, Ramdas, McAuliffe, Sekhon 2021; Lindon et al. 2022.)
 *
 * Each statistic is a mixture of products of per-request factors that depend
 * only on the counts (not on their order), so a look costs O(components), in
 * logs, for any n: no overflow at a billion requests.
 */

/**
 * Alternatives of the Bernoulli mixtures, as log-odds above the null's:
 * q_i = expit(logit(p0) + d_i). The main grid is geometric from 0.2 to ~8
 * (q from 1.2x p0 to ~0.97 when p0 = 1%) and carries 90% of the weight.
 * Measured (scratch simulation, 400 streams each, p0 = 1%, α = 1.85e-4): a
 * grid of 8, 12 or 16 such offsets detects a 3% error rate after the same
 * ~770 requests (the floor is ln(1/α)/KL = 660); 20 linear offsets need 806.
 * A dead canary (every request fails) crosses after 3 requests with any of
 * them. Eight finer offsets (0.014 to 0.14, q down to 1.014x p0) share the
 * other 10%, so that an excess too small for the main grid (1.1% against 1%)
 * is still proven given enough requests, instead of never; they cost the
 * common cases ln(1/0.9) = 0.1 of evidence.
 */
export const LOG_ODDS_OFFSETS: readonly number[] = Array.from({ length: 20 }, (_, i) => 0.2 * 1.4 ** (i - 8))
const LOG_OFFSET_WEIGHTS: readonly number[] = LOG_ODDS_OFFSETS.map((_, i) => Math.log(i < 8 ? 0.1 / 8 : 0.9 / 12))

/**
 * Bets of the difference e-process, as fractions of the largest bet that
 * keeps every factor positive: 0.9 x 0.6^i, i = 0..11 (0.9 down to 0.0033):
 * a dead canary wants the largest, a difference just above the limit the
 * smallest.
 */
export const BET_FRACTIONS: readonly number[] = Array.from({ length: 12 }, (_, i) => 0.9 * 0.6 ** i)
const LOG_BET_WEIGHT = -Math.log(BET_FRACTIONS.length)

/** ln(1 + e^x) without overflow. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x))
}

/** ln Σ e^(x_i) without overflow; -Infinity for none. */
export function logSumExp(values: readonly number[]): number {
  let max = -Infinity
  for (const v of values) if (v > max) max = v
  if (max === -Infinity || max === Infinity) return max
  let sum = 0
  for (const v of values) sum += Math.exp(v - max)
  return max + Math.log(sum)
}

function clampCount(k: number, n: number): { k: number; n: number } {
  const nn = Number.isFinite(n) && n > 0 ? n : 0
  const kk = Number.isFinite(k) && k > 0 ? Math.min(k, nn) : 0
  return { k: kk, n: nn }
}

/**
 * One side against a limit: ln E for "the share p of events is at most p0",
 * from k events in n trials (a mixture SPRT; Robbins 1970).
 *
 * For any q > p0, the per-trial factor (q/p0)^x ((1-q)/(1-p0))^(1-x) has
 * expectation (q/p0)p + ((1-q)/(1-p0))(1-p) <= 1 whenever p <= p0, given the
 * past: the product is a supermartingale under the whole null, even when p
 * changes from trial to trial, as long as it stays at or under p0. The mixture
 * over the grid is one too.
 *
 * `gridBase` (default p0) anchors the grid: with p0 >= gridBase, components
 * whose q is not above p0 are dropped and the others keep their weights (not
 * renormalized). That statistic is, wherever it exceeds 1, at most the one
 * computed at gridBase (each factor's log decreases in p0 once k/n > p0), so a
 * test that raises p0 from the data above a valid gridBase stays valid; the
 * two-sample tests use that to stay safe when the traffic share drifts.
 */
export function bernoulliLogE(k: number, n: number, p0: number, gridBase: number = p0): number {
  const c = clampCount(k, n)
  if (c.n === 0) return 0
  if (!(p0 < 1)) return -Infinity
  if (!(p0 > 0)) return c.k > 0 ? Infinity : 0
  const g = grid(p0, Math.min(Math.max(gridBase, Number.MIN_VALUE), p0))
  let max = -Infinity
  const terms = g.terms
  for (let i = 0; i < g.size; i++) {
    const t = g.logWeight[i]! + c.k * g.onEvent[i]! + (c.n - c.k) * g.onNone[i]!
    terms[i] = t
    if (t > max) max = t
  }
  if (max === -Infinity || max === Infinity) return max
  let sum = 0
  for (let i = 0; i < g.size; i++) sum += Math.exp(terms[i]! - max)
  return max + Math.log(sum)
}

/** One mixture's per-component constants: ln(q/p0) per event, ln((1-q)/(1-p0)) per non-event, and the weight. */
interface Grid {
  readonly size: number
  readonly logWeight: Float64Array
  readonly onEvent: Float64Array
  readonly onNone: Float64Array
  /** Scratch for one evaluation. */
  readonly terms: Float64Array
}

/*
 * The constants depend on (p0, gridBase) only, and a check asks with the same
 * ones at every look (its limit, or the routing weight): computed once, they
 * turn a look into 20 multiply-adds and one log-sum-exp (measured: the
 * transcendental functions were 60% of a look's time before).
 */
const grids = new Map<string, Grid>()
const GRID_CACHE = 256

function grid(p0: number, base: number): Grid {
  const key = `${p0}|${base}`
  const hit = grids.get(key)
  if (hit !== undefined) return hit
  const l0 = Math.log(p0 / (1 - p0))
  const lb = Math.log(base / (1 - base))
  const logP0 = -softplus(-l0)
  const logQ0 = -softplus(l0)
  const logWeight: number[] = []
  const onEvent: number[] = []
  const onNone: number[] = []
  for (let i = 0; i < LOG_ODDS_OFFSETS.length; i++) {
    const l = lb + LOG_ODDS_OFFSETS[i]!
    if (!(l > l0)) continue
    logWeight.push(LOG_OFFSET_WEIGHTS[i]!)
    onEvent.push(-softplus(-l) - logP0)
    onNone.push(-softplus(l) - logQ0)
  }
  const g: Grid = { size: logWeight.length, logWeight: Float64Array.from(logWeight), onEvent: Float64Array.from(onEvent), onNone: Float64Array.from(onNone), terms: new Float64Array(logWeight.length) }
  if (grids.size >= GRID_CACHE) grids.clear()
  grids.set(key, g)
  return g
}

/**
 * The canary share a two-sample test takes as its null: the routing weight,
 * raised to the share of requests the canary actually got when that is
 * higher than random routing at the weight explains (by 3 standard
 * deviations). With random routing it is the weight, nearly always; with
 * sticky routing, whose user buckets need not carry exactly the weight's
 * share of requests, a canary that got a heavier share of the traffic is
 * not charged for the events that extra traffic brings. Any value at or above
 * the weight keeps the tests valid (bernoulliLogE's gridBase rule, and
 * differenceLogE's factors, which only shrink as it grows).
 */
export function effectiveShare(weight: number, nCanary: number, nStable: number): number {
  const total = nCanary + nStable
  if (!(total > 0)) return weight
  const noise = 3 * Math.sqrt((weight * (1 - weight)) / total)
  return Math.min(1, Math.max(weight, nCanary / total - noise))
}

/**
 * Canary against stable by the labels of events (the share test): among the
 * K = kCanary + kStable events (errors, or responses slower than a bound),
 * how many are the canary's, tested against the canary's share of traffic.
 *
 * Why it is exact: each request goes to the canary with probability w,
 * independently of everything else (random routing). If, at every moment, a
 * canary request is no more likely to be an event than a stable one, then
 * each event is the canary's with probability w·pc/(w·pc + (1-w)·ps) <= w,
 * given all that came before: the labels form the Bernoulli stream of
 * bernoulliLogE with p0 = w. It holds whatever both sides do together: a host
 * stall, a shared dependency failing, a traffic burst change pc and ps at once
 * and cancel out. (Lindon et al. 2022 condition count metrics the same way.)
 *
 * `weight` is the routing share w (0..1); nCanary and nStable, the requests
 * (or measured responses) of each side, raise p0 by effectiveShare.
 */
export function shareLogE(kCanary: number, kStable: number, weight: number, nCanary = 0, nStable = 0): number {
  // No stable traffic (weight 1) or no canary traffic (weight 0): nothing to compare, no evidence.
  if (!(weight > 0) || !(weight < 1)) return weight >= 1 ? -Infinity : 0
  return bernoulliLogE(kCanary, kCanary + kStable, effectiveShare(weight, nCanary, nStable), weight)
}

/**
 * Canary against stable plus a margin (the additive null of
 * maxErrorRateIncrease: pc - ps <= delta), by a betting e-process on the
 * randomization itself.
 *
 * Each request i gives X_i = Y_i (Z_i/w - (1 - Z_i)/(1 - w)), where Z_i is 1
 * when it went to the canary (probability w, independent) and Y_i when it
 * failed. Given the past, E[X_i] = pc - ps at that moment (inverse probability
 * weighting), so for any bet 0 <= λ < 1/(1/(1-w) + delta) the factor
 * 1 + λ(X_i - delta) is positive and has expectation <= 1 under the null: the
 * product is a supermartingale (Waudby-Smith & Ramdas 2023 build confidence
 * sequences from such bets). With a constant λ the product depends only on the
 * counts:
 *
 *     (1 + λ(1/w - δ))^kc · (1 - λ(1/(1-w) + δ))^ks · (1 - λδ)^(N - kc - ks)
 *
 * and the mixture over the bets of BET_FRACTIONS is a supermartingale too.
 *
 * Why not two one-sided confidence sequences (the canary's lower bound against
 * the stable's upper bound, each at α/2)? Their margins add (a + b), while
 * this test pays for the combined noise (√(a² + b²)) at the full α: at 50%
 * weight it needs about half the requests. And it stays exact when both sides'
 * error rates move together over time (a shared dependency, a burst), where
 * two separate sequences each assume their own side's rate stands still.
 *
 * As in shareLogE, w is raised by effectiveShare: every factor then shrinks
 * (canary errors weigh less, stable errors more) while the bets stay those
 * of the weight, so the statistic is pointwise at most the one at w, and
 * valid.
 */
export function differenceLogE(kCanary: number, nCanary: number, kStable: number, nStable: number, weight: number, delta: number): number {
  const canary = clampCount(kCanary, nCanary)
  const stable = clampCount(kStable, nStable)
  const total = canary.n + stable.n
  if (total === 0) return 0
  if (!(weight > 0) || !(weight < 1)) return 0
  if (!(delta < 1)) return -Infinity
  const d = Math.max(0, delta)
  const w = effectiveShare(weight, canary.n, stable.n)
  if (!(w < 1)) return 0
  const maxBet = 1 / (1 / (1 - weight) + d)
  const terms: number[] = []
  const ok = total - canary.k - stable.k
  for (const f of BET_FRACTIONS) {
    const bet = f * maxBet
    const onStableError = 1 - bet * (1 / (1 - w) + d)
    let log = LOG_BET_WEIGHT + canary.k * Math.log1p(bet * (1 / w - d)) + ok * Math.log1p(-bet * d)
    if (stable.k > 0) log = onStableError > 0 ? log + stable.k * Math.log(onStableError) : -Infinity
    terms.push(log)
  }
  return logSumExp(terms)
}

/** ln(1/α): the evidence a test needs before it may reject at level α. */
export function evidenceNeeded(alpha: number): number {
  return alpha > 0 ? -Math.log(alpha) : Infinity
}

/** An e-value in words: "3.2e+5" or "12". */
export function formatEvidence(logE: number): string {
  if (logE === Infinity) return '∞'
  if (logE === -Infinity) return '0'
  const e = Math.exp(logE)
  if (!Number.isFinite(e)) return `e^${Math.round(logE)}`
  if (e >= 1e4) return e.toExponential(1).replace('e+', 'e')
  if (e >= 10) return String(Math.round(e)).replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  return e.toPrecision(2)
}
