/** Webhook URLs and headers as logs, findings and the audit file may show them: a Slack hook's path, a token in a query or a header never leaves this module. */
import type { WebhookConfig } from '../config/schema.js'

/** Scheme, host and port; the path and query replaced by `/…` (they are where hook services put the secret). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    const hidden = (u.pathname !== '' && u.pathname !== '/') || u.search !== '' || u.hash !== ''
    return `${u.protocol}//${u.host}${hidden ? '/…' : '/'}`
  } catch {
    return '(not a URL)'
  }
}

/** The parts of a webhook's config that must never appear in any text we write. */
export function secretsOf(webhook: Pick<WebhookConfig, 'url' | 'headers'>): string[] {
  const secrets = new Set<string>([webhook.url])
  try {
    const u = new URL(webhook.url)
    if (u.pathname.length > 1) secrets.add(u.pathname)
    for (const part of u.pathname.split('/')) if (part.length >= 6) secrets.add(part)
    if (u.search !== '') secrets.add(u.search.slice(1))
    for (const value of u.searchParams.values()) if (value.length >= 4) secrets.add(value)
  } catch {
    // not a URL: the whole string is already in the set
  }
  for (const value of Object.values(webhook.headers)) {
    if (value.length >= 4) secrets.add(value)
    // `Bearer <token>`: the token alone too.
    for (const word of value.split(/\s+/)) if (word.length >= 6) secrets.add(word)
  }
  // Longest first, so a secret that contains another is removed whole.
  return [...secrets].sort((a, b) => b.length - a.length)
}

/** `text` with every secret replaced by [redacted]. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text
  for (const secret of secrets) if (secret !== '') out = out.split(secret).join('[redacted]')
  return out
}
