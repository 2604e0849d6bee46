/** Stable hash of a sticky key into 0..9999, so a user on canary stays there as the weight grows. */

export const BUCKETS = 10_000

/**
 * FNV-1a over the UTF-16 code units, then murmur3's 32-bit finalizer: FNV's
 * low bits are weak for short keys that differ in their last character
 * ("user-1", "user-2"), and `mod 10000` reads exactly those bits.
 * A user is on canary when bucket < weight * 100; raising the weight only
 * ever moves users from stable to canary, lowering it only back.
 */
export function stickyBucket(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return (h >>> 0) % BUCKETS
}

/** The value of cookie `name` in a Cookie header, or null; no allocation beyond the returned slice. */
export function cookieValue(header: string | undefined, name: string): string | null {
  if (header === undefined) return null
  let from = 0
  while (from < header.length) {
    const at = header.indexOf(name, from)
    if (at === -1) return null
    const end = at + name.length
    const startsPair = at === 0 || header.charCodeAt(at - 1) === 0x20 || header.charCodeAt(at - 1) === 0x3b
    if (startsPair && header.charCodeAt(end) === 0x3d) {
      const stop = header.indexOf(';', end + 1)
      let value = header.slice(end + 1, stop === -1 ? header.length : stop).trim()
      // RFC 6265 allows a DQUOTE-wrapped value; the key is what is inside.
      if (value.length >= 2 && value.charCodeAt(0) === 0x22 && value.charCodeAt(value.length - 1) === 0x22) value = value.slice(1, -1)
      return value === '' ? null : value
    }
    from = end
  }
  return null
}
