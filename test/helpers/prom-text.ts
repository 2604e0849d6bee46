/** A small parser of the Prometheus text exposition format (0.0.4), for asserting on /metrics by name, labels and value. */

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Exposition {
  readonly samples: readonly Sample[]
  /** Metric family name -> declared TYPE. */
  readonly types: ReadonlyMap<string, string>
  readonly help: ReadonlyMap<string, string>
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/

/** Parses the whole text; throws on any line that is not valid exposition syntax. */
export function parseExposition(text: string): Exposition {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  const help = new Map<string, string>()
  text.split('\n').forEach((line, index) => {
    const where = `line ${index + 1}: ${JSON.stringify(line)}`
    if (line.trim() === '') return
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line)
      if (m === null) return // a plain comment
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3] ?? '')) throw new Error(`bad TYPE at ${where}`)
        if (types.has(m[2]!)) throw new Error(`second TYPE for ${m[2]} at ${where}`)
        types.set(m[2]!, m[3]!)
      } else help.set(m[2]!, m[3] ?? '')
      return
    }
    let rest = line
    const name = NAME.exec(rest)?.[0]
    if (name === undefined) throw new Error(`no metric name at ${where}`)
    rest = rest.slice(name.length)
    const labels: Record<string, string> = {}
    if (rest.startsWith('{')) {
      rest = rest.slice(1)
      for (;;) {
        rest = rest.replace(/^\s+/, '')
        if (rest.startsWith('}')) {
          rest = rest.slice(1)
          break
        }
        const label = LABEL_NAME.exec(rest)?.[0]
        if (label === undefined || !rest.slice(label.length).startsWith('="')) throw new Error(`bad label at ${where}`)
        rest = rest.slice(label.length + 2)
        let value = ''
        for (;;) {
          const c = rest[0]
          if (c === undefined) throw new Error(`unterminated label value at ${where}`)
          rest = rest.slice(1)
          if (c === '"') break
          if (c === '\\') {
            const e = rest[0]
            rest = rest.slice(1)
            if (e === 'n') value += '\n'
            else if (e === '\\' || e === '"') value += e
            else throw new Error(`bad escape at ${where}`)
          } else value += c
        }
        if (label in labels) throw new Error(`label ${label} twice at ${where}`)
        labels[label] = value
        rest = rest.replace(/^\s+/, '')
        if (rest.startsWith(',')) rest = rest.slice(1)
        else if (!rest.startsWith('}')) throw new Error(`expected , or } at ${where}`)
      }
    }
    const m = /^ +(\S+)(?: +(-?\d+))?\s*$/.exec(rest)
    if (m === null) throw new Error(`bad value at ${where}`)
    const raw = m[1]!
    const value = raw === 'NaN' ? Number.NaN : raw === '+Inf' ? Number.POSITIVE_INFINITY : raw === '-Inf' ? Number.NEGATIVE_INFINITY : Number(raw)
    if (Number.isNaN(value) && raw !== 'NaN') throw new Error(`value is not a number at ${where}`)
    samples.push({ name, labels, value })
  })
  return { samples, types, help }
}

/** Samples of one name whose labels include every given label. */
export function select(exposition: Exposition, name: string, labels: Readonly<Record<string, string>> = {}): Sample[] {
  return exposition.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
}

/** The value of the single sample with exactly these labels (besides none else); throws when there is not exactly one. */
export function value(exposition: Exposition, name: string, labels: Readonly<Record<string, string>> = {}): number {
  const found = exposition.samples.filter((s) => s.name === name && sameLabels(s.labels, labels))
  if (found.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${found.length} samples`)
  return found[0]!.value
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a).sort()
  const kb = Object.keys(b).sort()
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k])
}
