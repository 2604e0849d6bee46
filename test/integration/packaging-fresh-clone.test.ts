/** Issue 12: a pack from a fresh clone (no dist/) shipped no bin; `prepack` builds it first. Its own file: the build is the slowest step of the suite. */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cp, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { REPO, cliEnv } from '../helpers/cli.js'
import { packageJson, packList } from '../helpers/pack.js'

const run = promisify(execFile)
// The build takes ~15 s of CPU; on a machine shared with other work it has taken over 100 s of wall time.
t.setTimeout(240_000)

t.test('a pack from a fresh clone builds the bin first (prepack), and that bin runs', async (t) => {
  const pkg = await packageJson()
  t.equal(pkg.scripts.prepack, 'npm run -s build')
  const clone = await mkdtemp(join(tmpdir(), 'canary-proxy-clone-'))
  t.teardown(() => rm(clone, { recursive: true, force: true }))
  // What a clone has: the sources and configs, no dist/; its dependencies linked as `npm ci` would install them.
  for (const entry of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'bench', 'config', 'LICENSE', 'README.md']) {
    await cp(join(REPO, entry), join(clone, entry), { recursive: true })
  }
  await symlink(join(REPO, 'node_modules'), join(clone, 'node_modules'), 'dir')
  t.notOk(existsSync(join(clone, 'dist')), 'no build output yet')
  const files = await packList(clone, { ignoreScripts: false, timeoutMs: 220_000 })
  t.ok(files.includes(pkg.bin['canary-proxy']!.replace(/^\.\//, '')), `the pack has the bin (${pkg.bin['canary-proxy']})`)
  t.ok(files.includes('dist/src/healthcheck.js'), 'and the HEALTHCHECK script')
  t.ok(existsSync(join(clone, 'dist', 'src', 'main.js')), 'built by prepack')
  const { stdout } = await run(process.execPath, [join(clone, 'dist', 'src', 'main.js'), '--version'], { env: cliEnv() })
  t.equal(stdout.trim(), pkg.version, 'the packed bin runs')
})
