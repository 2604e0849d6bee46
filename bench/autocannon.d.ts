/** The part of autocannon's programmatic API the bench uses (the package ships no types). */
declare module 'autocannon' {
  interface AutocannonRequest {
    method?: string
    path?: string
    headers?: Record<string, string>
    body?: string | Buffer
  }

  interface AutocannonOptions {
    url: string
    connections?: number
    /** Seconds. */
    duration?: number
    pipelining?: number
    /** Seconds before a request counts as a timeout. */
    timeout?: number
    requests?: AutocannonRequest[]
    /** Requests per second over all connections (sent in per-second batches, see load-generator.ts). */
    overallRate?: number
  }

  /** autocannon's summary of one histogram (latency in ms, requests and bytes per second sample). */
  interface AutocannonHistogram {
    average: number
    mean: number
    stddev: number
    min: number
    max: number
    total: number
    p50: number
    p90: number
    p99: number
    p99_9: number
  }

  interface AutocannonResult {
    requests: AutocannonHistogram
    latency: AutocannonHistogram
    throughput: AutocannonHistogram
    errors: number
    timeouts: number
    non2xx: number
    '2xx': number
    /** Seconds, two decimals. */
    duration: number
  }

  export default function autocannon(options: AutocannonOptions): Promise<AutocannonResult>
}
