/** `npm pack --dry-run --json` as a list of the files a pack would hold, and package.json as read. */
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REPO, cliEnv } from './cli.js'

const run = promisify(execFile)

export interface PackageJson {
  readonly name: string
  readonly version: string
  readonly license: string
  readonly bin: Record<string, string>
  readonly files: string[]
  readonly scripts: Record<string, string>
  readonly dependencies: Record<string, string>
  readonly devDependencies: Record<string, string>
  readonly engines: { node: string }
}

export async function packageJson(dir = REPO): Promise<PackageJson> {
  return JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as PackageJson
}

/** The paths `npm pack` would put in the tarball of the package in `cwd` (its lifecycle scripts run unless ignoreScripts). */
export async function packList(cwd: string, options: { ignoreScripts: boolean; timeoutMs?: number }): Promise<string[]> {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', ...(options.ignoreScripts ? ['--ignore-scripts'] : [])], {
    cwd,
    env: cliEnv(),
    maxBuffer: 16 * 1024 * 1024,
    timeout: options.timeoutMs ?? 100_000,
  })
  // Lifecycle scripts may print before the JSON.
  return (JSON.parse(stdout.slice(stdout.indexOf('['))) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path)
}
