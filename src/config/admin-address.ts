/** Where a config's admin listener is reached from inside its own container or host, and which config file a process was given: for the image's HEALTHCHECK (src/healthcheck.ts). */
import type { Config } from './schema.js'

type Env = Readonly<Record<string, string | undefined>>

/** The admin base URL to probe: a wildcard address is reached on loopback; an IPv6 literal goes in brackets. */
export function adminProbeUrl(admin: Config['admin']): string {
  const bare = admin.host.replace(/^\[|\]$/g, '')
  const host = bare === '0.0.0.0' ? '127.0.0.1' : bare === '::' ? '[::1]' : bare.includes(':') ? `[${bare}]` : bare
  return `http://${host}:${admin.port}`
}

/** `--config FILE` or `--config=FILE`, else CANARY_PROXY_CONFIG, else `serve`'s default: the same file `serve` reads. */
export function configFileFrom(argv: readonly string[], env: Env): string {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--config' && argv[i + 1] !== undefined) return argv[i + 1]!
    if (arg.startsWith('--config=')) return arg.slice('--config='.length)
  }
  return env.CANARY_PROXY_CONFIG ?? 'config/canary-proxy.yaml'
}
