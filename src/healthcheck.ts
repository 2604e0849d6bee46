/** The container HEALTHCHECK entry: GET /healthz on the admin listener of the config `serve` reads (--config FILE, else CANARY_PROXY_CONFIG); exit 0 on a 200, else 1 with one line saying why. */
import { renderIssue } from './config/issues.js'
import { adminProbeUrl, configFileFrom } from './config/admin-address.js'
import { loadConfigFile } from './config/load.js'

// The whole loader, not a second reading of admin.host/port: defaults and
// ${VAR} substitution exactly as `serve` applied them (~0.4 s of CPU per
// check, hence the Dockerfile's 30 s interval).
const file = configFileFrom(process.argv.slice(2), process.env)
process.exitCode = await probe(file)

async function probe(configFile: string): Promise<number> {
  const config = await loadConfigFile(configFile)
  if (!config.ok) {
    process.stderr.write(`healthcheck: ${configFile}: ${config.error.map(renderIssue).join('; ')}\n`)
    return 1
  }
  const url = `${adminProbeUrl(config.value.admin)}/healthz`
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) })
    await res.body?.cancel()
    if (res.status === 200) return 0
    process.stderr.write(`healthcheck: ${url} answered ${res.status}\n`)
  } catch (error) {
    const cause = (error as Error & { cause?: { code?: string } }).cause?.code
    process.stderr.write(`healthcheck: ${url}: ${cause ?? (error as Error).message}\n`)
  }
  return 1
}
