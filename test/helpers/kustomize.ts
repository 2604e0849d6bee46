/**
 * `kustomize build` for the subset config/kubernetes uses: `resources` (files
 * and directories with their own kustomization.yaml) and `patches` of JSON
 * 6902 operations with a kind/name target (applied by fast-json-patch).
 * Anything else in a kustomization is refused, so a new feature there must
 * come with support here rather than be silently ignored.
 */
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import jsonPatch, { type Operation } from 'fast-json-patch'
import { parseAllDocuments, parse } from 'yaml'

export interface Resource {
  readonly apiVersion: string
  readonly kind: string
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> }
  readonly [key: string]: unknown
}

interface Kustomization {
  apiVersion?: string
  kind?: string
  resources?: string[]
  patches?: { path: string; target: { kind: string; name: string } }[]
}

const KNOWN_KEYS = new Set(['apiVersion', 'kind', 'resources', 'patches'])

/** The resources `kustomize build DIR` would print (in the order they are listed), as plain objects. */
export async function kustomizeBuild(dir: string): Promise<Resource[]> {
  const k = parse(await readFile(join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization
  const unknown = Object.keys(k).filter((key) => !KNOWN_KEYS.has(key))
  if (unknown.length > 0) throw new Error(`${dir}/kustomization.yaml: ${unknown.join(', ')} not supported by test/helpers/kustomize.ts`)
  if (k.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || k.kind !== 'Kustomization') throw new Error(`${dir}/kustomization.yaml: not a kustomize.config.k8s.io/v1beta1 Kustomization`)
  const out: Resource[] = []
  for (const entry of k.resources ?? []) {
    const path = join(dir, entry)
    if ((await stat(path)).isDirectory()) out.push(...(await kustomizeBuild(path)))
    else out.push(...(await readResources(path)))
  }
  const ids = out.map((r) => `${r.kind}/${r.metadata.name}`)
  const duplicate = ids.find((id, i) => ids.indexOf(id) !== i)
  if (duplicate !== undefined) throw new Error(`${dir}: ${duplicate} twice`)
  for (const p of k.patches ?? []) {
    const ops = parse(await readFile(join(dir, p.path), 'utf8')) as Operation[]
    if (!Array.isArray(ops)) throw new Error(`${dir}/${p.path}: not a JSON 6902 patch (a list of operations)`)
    const index = out.findIndex((r) => r.kind === p.target.kind && r.metadata.name === p.target.name)
    if (index === -1) throw new Error(`${dir}/${p.path}: no ${p.target.kind}/${p.target.name} to patch`)
    const error = jsonPatch.validate(ops, out[index])
    if (error !== undefined) throw new Error(`${dir}/${p.path}: ${error.name} at operation ${error.index}: ${error.message}`)
    out[index] = jsonPatch.applyPatch(structuredClone(out[index]), ops, true, false).newDocument as Resource
  }
  return out
}

async function readResources(file: string): Promise<Resource[]> {
  const docs = parseAllDocuments(await readFile(file, 'utf8'))
  return docs.map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`)
    return doc.toJS() as Resource
  })
}
