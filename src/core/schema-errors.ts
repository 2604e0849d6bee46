/**
 * The one renderer of JSON-schema errors (ajv's) into "path: what is wrong"
 * for every boundary that validates with a schema: the config file, the admin
 * API's bodies, the stored state. Schemas may carry `x-expected` (our own
 * annotation): what the value must be, in words ("a duration such as 30s"),
 * used instead of a regex or a bare type.
 */
import type { Ajv, ErrorObject } from 'ajv'
import { closest } from './suggest.js'

export interface SchemaProblem {
  /** The key path as a user writes it: `rollout.steps[1]`, `weight`; `(root)` for the whole value. */
  readonly path: string
  readonly message: string
}

export interface RenderOptions {
  /** What a property is called where the input comes from: a config `key`, an API `field`. */
  readonly noun?: 'key' | 'field'
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping of keys',
  array: 'a list',
  null: 'null',
}

/** Lets an ajv instance accept the `x-expected` annotation (ajv's strict mode refuses unknown keywords). */
export function expectedKeyword(ajv: Ajv): Ajv {
  return ajv.addKeyword({ keyword: 'x-expected', schemaType: 'string' })
}

/** Every problem once, in ajv's order. */
export function schemaProblems(errors: readonly ErrorObject[], options: RenderOptions = {}): SchemaProblem[] {
  const noun = options.noun ?? 'key'
  const seen = new Set<string>()
  const problems: SchemaProblem[] = []
  for (const e of errors) {
    const segments = pointerSegments(e.instancePath)
    let path = keyPath(segments)
    const expected = (e.parentSchema as Record<string, unknown> | undefined)?.['x-expected']
    const words = typeof expected === 'string' ? expected : null
    let message: string
    switch (e.keyword) {
      case 'required':
        path = keyPath([...segments, String(e.params.missingProperty)])
        message = 'is required'
        break
      case 'additionalProperties': {
        const key = String(e.params.additionalProperty)
        path = keyPath([...segments, key])
        const known = Object.keys((e.parentSchema?.properties ?? {}) as Record<string, unknown>)
        const near = closest(key, known)
        message = `unknown ${noun}${near === null ? '' : ` (did you mean ${near}?)`}; ${known.length === 0 ? `this takes no ${noun}s` : `expected one of: ${known.join(', ')}`}`
        break
      }
      case 'type':
        message = `must be ${words ?? TYPE_WORDS[String(e.params.type)] ?? String(e.params.type)}${shown(e.data)}`
        break
      case 'pattern':
        message = `must be ${words ?? `a string matching ${String(e.params.pattern)}`}${shown(e.data)}`
        break
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        message = words === null ? (e.message ?? 'is out of range') : `must be ${words}${shown(e.data)}`
        break
      case 'enum':
        message = `must be one of: ${(e.params.allowedValues as unknown[]).join(', ')}${shown(e.data)}`
        break
      case 'const':
        message = `must be ${JSON.stringify(e.params.allowedValue)}${shown(e.data)}`
        break
      case 'minItems':
        message = `must have at least ${String(e.params.limit)} item${e.params.limit === 1 ? '' : 's'}`
        break
      case 'maxItems':
        message = `must have at most ${String(e.params.limit)} items${Array.isArray(e.data) ? ` (got ${e.data.length})` : ''}`
        break
      case 'minLength':
        message = 'must not be empty'
        break
      case 'maxLength':
        message = `must be at most ${String(e.params.limit)} characters`
        break
      default:
        message = words === null ? (e.message ?? 'is not valid') : `must be ${words}${shown(e.data)}`
    }
    const line = `${path}: ${message}`
    if (seen.has(line)) continue
    seen.add(line)
    problems.push({ path, message })
  }
  return problems
}

/** JSON-pointer segments -> `a.b[1].c`; `(root)` for none. */
export function keyPath(segments: readonly (string | number)[]): string {
  let out = ''
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`
    else out += out === '' ? segment : `.${segment}`
  }
  return out === '' ? '(root)' : out
}

function pointerSegments(pointer: string): (string | number)[] {
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s))
}

/** The offending value, when it is a scalar a person can read back. */
function shown(value: unknown): string {
  // JSON has no spelling for them: YAML's .inf and .nan would read as "null".
  if (typeof value === 'number' && !Number.isFinite(value)) return ` (got ${value})`
  if (value === undefined || (typeof value === 'object' && value !== null)) return ''
  return ` (got ${JSON.stringify(value)})`
}
