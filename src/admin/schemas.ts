/** JSON schemas of the admin API's request bodies, and how their errors become "field: what is wrong" (the one renderer, core/schema-errors). */
import type { FastifySchemaValidationError } from 'fastify/types/schema.js'
import { schemaProblems } from '../core/schema-errors.js'

const empty = { type: 'object', additionalProperties: false, properties: {} } as const

export const bodySchemas = {
  weight: {
    type: 'object',
    additionalProperties: false,
    required: ['weight'],
    // Only the type here: the range and the two decimals are the domain's one
    // weight rule (core/domain.ts weightProblem), checked by the route, so the
    // config file and the API refuse the same weights with the same words.
    properties: { weight: { type: 'number', 'x-expected': 'a number from 0 to 100' } },
  },
  start: {
    type: 'object',
    additionalProperties: false,
    properties: { canary: { type: 'string', minLength: 1, 'x-expected': 'an http:// or https:// URL such as http://127.0.0.1:9002' } },
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

/** The first validation error as { field, message } ('body' when the body as a whole is wrong). */
export function describeValidation(errors: readonly FastifySchemaValidationError[]): { field: string; message: string } {
  // An unknown field says more than the "is required" it usually causes (`{"percent": 5}`).
  const ordered = [...errors].sort((a, b) => Number(b.keyword === 'additionalProperties') - Number(a.keyword === 'additionalProperties'))
  const first = schemaProblems(ordered as never, { noun: 'field' })[0]
  if (first === undefined) return { field: 'body', message: 'body: is not valid' }
  const field = first.path === '(root)' ? 'body' : first.path
  return { field, message: `${field}: ${first.path === '(root)' ? first.message.replace('a mapping of keys', 'a JSON object') : first.message}` }
}
