/** The one workload every candidate gets: the same path, the same request headers, the same upstream body. */

/** Size of the upstream response body, identical for every candidate. */
export const BODY_BYTES = 1024

/** The upstream's response body: `{"ok":true,"pad":"xxx…"}`, exactly BODY_BYTES long. */
export function upstreamBody(): Buffer {
  const head = '{"ok":true,"pad":"'
  const tail = '"}'
  return Buffer.from(head + 'x'.repeat(BODY_BYTES - head.length - tail.length) + tail)
}

/** Distinct sticky keys the load generator cycles through (x-user-id: user-0 … user-N-1). */
export const USER_IDS = 1000
export const STICKY_HEADER = 'x-user-id'
export const PATH = '/api/items?page=1'

/**
 * One request per user id, in a fixed shuffled order; every candidate gets
 * this list, whether it reads the header or not. autocannon starts every
 * connection at the top of the list, and a short run covers only a prefix of
 * it: shuffled, any prefix is a fair sample of the ids, so the canary share
 * seen in a run is close to the share of the whole list.
 */
export function requestList(): { method: 'GET'; path: string; headers: Record<string, string> }[] {
  const ids = Array.from({ length: USER_IDS }, (_, i) => i)
  // Fisher–Yates with a fixed LCG seed: the same order in every run.
  let seed = 12345
  for (let i = ids.length - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    const j = seed % (i + 1)
    const tmp = ids[i]!
    ids[i] = ids[j]!
    ids[j] = tmp
  }
  return ids.map((id) => ({ method: 'GET' as const, path: PATH, headers: { [STICKY_HEADER]: `user-${id}` } }))
}
