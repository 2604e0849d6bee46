/** JSON schemas of the admin API's request bodies, and the one place their errors become "field: what is wrong". */
import type { Ajv } from 'ajv'
import { decimalsOf } from '../core/domain.js'
import type { FastifySchemaValidationError } from 'fastify/types/schema.js'

const empty = { type: 'object', additionalProperties: false, properties: {} } as const

export const bodySchemas = {
  weight: {
    type: 'object',
    additionalProperties: false,
    required: ['weight'],
    // maxDecimals (below), not multipleOf 0.01: ajv's multipleOf tolerates
    // 1e-8 of float noise, so 5.00000000001 and 1e-11 passed as "two decimals".
    properties: { weight: { type: 'number', minimum: 0, maximum: 100, maxDecimals: 2 } },
  },
  start: {
    type: 'object',
    additionalProperties: false,
    properties: { canary: { type: 'string', minLength: 1 } },
  },
  abort: {
    type: 'object',
    additionalProperties: false,
    properties: { reason: { type: 'string', maxLength: 500 } },
  },
  pause: empty,
  resume: empty,
  promote: empty,
} as const

/** Adds the `maxDecimals` keyword to the admin API's ajv (fastify's `ajv.plugins`). */
export function adminKeywords(ajv: Ajv): Ajv {
  return ajv.addKeyword({
    keyword: 'maxDecimals',
    type: 'number',
    schemaType: 'number',
    errors: false,
    validate: (max: number, data: number) => decimalsOf(data) <= max,
  })
}

const TYPE_WORDS: Record<string, string> = { number: 'a number', string: 'a string', object: 'a JSON object', integer: 'an integer', boolean: 'true or false' }

/** The first validation error as { field, message } ('body' when the body as a whole is wrong). */
export function describeValidation(errors: readonly FastifySchemaValidationError[]): { field: string; message: string } {
  // An unknown field says more than the "is required" it usually causes (`{"percent": 5}`).
  const e = errors.find((x) => x.keyword === 'additionalProperties') ?? errors[0]
  if (e === undefined) return { field: 'body', message: 'body: is not valid' }
  const params = e.params as Record<string, unknown>
  const at = e.instancePath.replace(/^\//, '').replace(/\//g, '.')
  const field = (name: string): string => (at === '' ? name : `${at}.${name}`)
  const got = (): string => {
    const data = (e as { data?: unknown }).data
    return data === undefined || (typeof data === 'object' && data !== null) ? '' : ` (got ${JSON.stringify(data)})`
  }
  let name = at === '' ? 'body' : at
  let what: string
  switch (e.keyword) {
    case 'required':
      name = field(String(params.missingProperty))
      what = 'is required'
      break
    case 'additionalProperties': {
      name = field(String(params.additionalProperty))
      const known = Object.keys(((e as { parentSchema?: { properties?: object } }).parentSchema?.properties ?? {}) as object)
      what = `unknown field; ${known.length === 0 ? 'this call takes no fields' : `expected ${known.join(', ')}`}`
      break
    }
    case 'type':
      what = `must be ${TYPE_WORDS[String(params.type)] ?? String(params.type)}${got()}`
      break
    case 'maxDecimals':
    case 'multipleOf':
      what = `must have at most two decimals (weights go in steps of 0.01)${got()}`
      break
    case 'minimum':
    case 'maximum':
      what = `must be a number from 0 to 100${got()}`
      break
    case 'minLength':
      what = 'must not be empty'
      break
    default:
      what = `${e.message ?? 'is not valid'}${got()}`
  }
  return { field: name, message: `${name}: ${what}` }
}
