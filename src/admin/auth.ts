/** Bearer-token checks for mutating admin calls: constant-time, and the token's name becomes the audit actor. */
import { createHash, timingSafeEqual } from 'node:crypto'

export type AuthResult = { readonly ok: true; readonly actor: string } | { readonly ok: false; readonly status: 401 | 403 }

/**
 * Both sides are hashed before timingSafeEqual: it throws on unequal lengths,
 * and comparing digests hides the token's length too.
 */
export class TokenAuth {
  readonly #digests: { digest: Buffer; actor: string }[]

  constructor(tokens: ReadonlyMap<string, string>) {
    this.#digests = [...tokens].map(([token, actor]) => ({ digest: sha256(token), actor }))
  }

  get required(): boolean {
    return this.#digests.length > 0
  }

  check(authorization: string | undefined): AuthResult {
    if (!this.required) return { ok: true, actor: 'admin' }
    const match = authorization === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization)
    if (match === null) return { ok: false, status: 401 }
    const given = sha256(match[1] ?? '')
    let actor: string | null = null
    for (const entry of this.#digests) {
      if (timingSafeEqual(given, entry.digest)) actor = entry.actor
    }
    return actor === null ? { ok: false, status: 403 } : { ok: true, actor }
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
