/** `${VAR}` and `${VAR:-default}` substitution inside the string values of a parsed YAML document. */
import { isPair, isScalar, isSeq, Scalar, visit, type Document } from 'yaml'
import { keyPath } from '../core/schema-errors.js'
import type { ConfigIssue } from './issues.js'

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g
const WHOLE_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/

/**
 * Substitutes in place. Values are substituted after parsing, not in the raw
 * text, so a variable can never inject YAML structure; an unquoted value that
 * is a single reference (`port: ${PORT}`) is then read as YAML would read the
 * value written there (a number, a boolean), a quoted one stays a string.
 */
export function substituteEnv(doc: Document, env: Readonly<Record<string, string | undefined>>): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  visit(doc, {
    Scalar(key, node, path) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return
      const original = node.value
      const missing: string[] = []
      const substituted = original.replace(REFERENCE, (_whole, name: string, fallback: string | undefined) => {
        const value = env[name]
        if (value !== undefined) return value
        if (fallback !== undefined) return fallback
        missing.push(name)
        return ''
      })
      const at = keyPath(pathSegments(path, node))
      for (const name of missing) {
        issues.push({ path: at, message: `environment variable ${name} is not set (write \${${name}:-} for an empty default)` })
      }
      if (node.type === Scalar.PLAIN && WHOLE_REFERENCE.test(original) && substituted !== '') {
        const reread: unknown = safeScalar(substituted)
        node.value = reread
      } else {
        node.value = substituted
      }
    },
  })
  return issues
}

/** Only canonical numbers and booleans change type: `0123` or `1e3` in a token stay text. */
function safeScalar(text: string): unknown {
  if (/^-?(0|[1-9]\d*)(\.\d+)?$/.test(text)) return Number(text)
  if (text === 'true' || text === 'false') return text === 'true'
  return text
}

function pathSegments(path: readonly unknown[], leaf: unknown): (string | number)[] {
  const segments: (string | number)[] = []
  for (let i = 0; i < path.length; i++) {
    const node = path[i]
    const child = i + 1 < path.length ? path[i + 1] : leaf
    if (isPair(node) && isScalar(node.key)) segments.push(String(node.key.value))
    else if (isSeq(node)) segments.push(node.items.indexOf(child as never))
  }
  return segments
}
