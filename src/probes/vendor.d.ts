/** Types for the two untyped packages the probes use (only what is called). */

declare module 'parse-prometheus-text-format' {
  export interface ParsedSample {
    readonly value?: string
    readonly labels?: Readonly<Record<string, string>>
    readonly timestamp_ms?: string
    readonly buckets?: Readonly<Record<string, string>>
    readonly quantiles?: Readonly<Record<string, string>>
    readonly count?: string
    readonly sum?: string
  }
  export interface ParsedFamily {
    readonly name: string
    readonly help: string
    readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
    readonly metrics: readonly ParsedSample[]
  }
  /** Parses the Prometheus text exposition format (0.0.4); throws on a line it cannot read. */
  export default function parsePrometheusTextFormat(text: string): ParsedFamily[]
}

declare module 'jstat' {
  const jStat: {
    readonly studentt: {
      /** The quantile of Student's t distribution with `dof` degrees of freedom at probability p. */
      inv(p: number, dof: number): number
    }
  }
  export default jStat
}
