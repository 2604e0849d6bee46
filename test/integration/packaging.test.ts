/**
 * What users install: the npm package (`npm pack`: the bin, the configs,
 * LICENSE; everything `serve` imports; a pack from a fresh clone builds itself),
 * the container image as its Dockerfile describes it (read, not built: no
 * Docker engine here), and the HEALTHCHECK script against a real proxy.
 */
import { execFile } from 'node:child_process'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, normalize } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { DockerfileParser, type Instruction } from 'dockerfile-ast'
import { adminProbeUrl, configFileFrom } from '../../src/config/admin-address.js'
import { loadConfigFile } from '../../src/config/load.js'
import { renderIssue } from '../../src/config/issues.js'
import { DEFAULT_CONFIG } from '../../src/cli/args.js'
import { CLI, REPO, cliEnv, freePort, serve, tempDir, writeConfig } from '../helpers/cli.js'
import { packageJson, packList } from '../helpers/pack.js'
import { startUpstream } from '../helpers/upstreams.js'

const run = promisify(execFile)
const pkg = await packageJson()


/** Every module dist/src/main.js reaches through its imports (static and dynamic), and the packages they name. */
async function importGraph(root: string, entry: string): Promise<{ files: Set<string>; packages: Set<string> }> {
  const files = new Set<string>()
  const packages = new Set<string>()
  const queue = [entry]
  while (queue.length > 0) {
    const file = queue.pop()!
    if (files.has(file)) continue
    files.add(file)
    const text = await readFile(join(root, file), 'utf8')
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s+['"]([^'"]+)['"]/gm)) {
      const spec = m[1] ?? m[2] ?? m[3]!
      if (spec.startsWith('.')) queue.push(normalize(join(dirname(file), spec)))
      else if (!spec.startsWith('node:') && !builtinModules.includes(spec)) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!)
    }
  }
  return { files, packages }
}

t.test('npm pack ships the bin, the configs, LICENSE and README, everything serve imports, and no sources or tests', async (t) => {
  // --ignore-scripts: other test files run dist/ meanwhile, and prepack would rebuild it under them (packaging-fresh-clone.test.ts runs it).
  const files = await packList(REPO, { ignoreScripts: true })
  const bin = normalize(pkg.bin['canary-proxy']!)
  t.equal(bin, 'dist/src/main.js')
  for (const f of [bin, 'dist/src/healthcheck.js', 'dist/src/app.js', 'config/canary-proxy.yaml', 'config/container.yaml', 'config/grafana/canary-proxy.json', 'config/prometheus/alerts.yaml', 'config/kubernetes/base/kustomization.yaml', 'LICENSE', 'README.md', 'package.json']) {
    t.ok(files.includes(f), `packs ${f}`)
  }
  t.same(files.filter((f) => /^(src|test|bench|examples|\.ci)\//.test(f) || f.startsWith('dist/bench') || f.endsWith('.map') || f.endsWith('.ts')), [], 'no sources, tests, bench, source maps')
  // What `serve` (and every other command) loads at run time is in the pack; the packages it names are dependencies, not dev ones.
  const graph = await importGraph(REPO, bin)
  t.ok(graph.files.size > 20, `${graph.files.size} modules reached from ${bin}`)
  t.same([...graph.files].filter((f) => !files.includes(f)), [], 'every module main.js reaches is packed')
  t.same([...graph.packages].filter((p) => !(p in pkg.dependencies)), [], `every package it imports is a dependency (${[...graph.packages].sort().join(', ')})`)
  const healthcheck = await importGraph(REPO, 'dist/src/healthcheck.js')
  t.same([...healthcheck.files].filter((f) => !files.includes(f)), [], 'and every module the HEALTHCHECK reaches')
})

t.test('LICENSE is the MIT license package.json names', async (t) => {
  const text = await readFile(join(REPO, 'LICENSE'), 'utf8')
  t.equal(pkg.license, 'MIT')
  t.match(text, /^MIT License\n\nCopyright \(c\) \d{4} canary-proxy authors\n/)
  t.match(text, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/)
})

interface Stage {
  readonly name: string | null
  readonly image: string
  readonly instructions: Instruction[]
}

function stagesOf(text: string): Stage[] {
  const stages: { name: string | null; image: string; instructions: Instruction[] }[] = []
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const args = instruction.getArguments().map((a) => a.getValue())
      stages.push({ image: args[0]!, name: args[1]?.toUpperCase() === 'AS' ? args[2]! : null, instructions: [] })
    } else stages.at(-1)?.instructions.push(instruction)
  }
  return stages
}

const args = (i: Instruction): string[] => i.getArguments().map((a) => a.getValue())
const flags = (i: Instruction): Record<string, string | null> =>
  Object.fromEntries(('getFlags' in i ? (i as Instruction & { getFlags(): { getName(): string; getValue(): string | null }[] }).getFlags() : []).map((f) => [f.getName(), f.getValue()]))
const jsonArgs = (raw: string): string[] => JSON.parse(raw) as string[]

t.test('the Dockerfile: one Node LTS (the README\'s), root-owned code, only /app/data writable, a HEALTHCHECK on the configured admin port, the container config, OCI labels', async (t) => {
  const text = await readFile(join(REPO, 'Dockerfile'), 'utf8')
  const stages = stagesOf(text)
  t.equal(stages.length, 2, 'a build stage and a runtime stage')
  const images = new Set(stages.map((s) => s.image))
  t.equal(images.size, 1, `both stages on one image (${[...images].join(', ')})`)
  const image = stages[0]!.image
  const major = Number(/^node:(\d+)-bookworm-slim$/.exec(image)?.[1])
  t.ok(major === 22 || major === 24, `a current Node.js LTS on Debian slim (${image})`)
  t.ok(Number(/>=\s*(\d+)/.exec(pkg.engines.node)?.[1]) <= major, `within package.json engines (${pkg.engines.node})`)
  const readme = await readFile(join(REPO, 'README.md'), 'utf8')
  t.ok(readme.includes(`\`${image}\``), `the README names ${image}`)
  t.same([...new Set(readme.match(/node:\d+(?:-[a-z]+)*/g) ?? [])], [image], 'and no other Node image')

  const runtime = stages[1]!
  const of = (keyword: string): Instruction[] => runtime.instructions.filter((i) => i.getKeyword() === keyword)
  // Code owned by root: no COPY --chown (nor ADD) in the image that runs.
  t.same(of('COPY').filter((c) => 'chown' in flags(c) || 'chmod' in flags(c)).map((c) => c.getRawArgumentsContent()), [], 'no COPY --chown/--chmod: the code stays root-owned and read-only')
  t.same(of('ADD'), [], 'no ADD')
  const chowns = of('RUN').flatMap((r) => [...(r.getRawArgumentsContent() ?? '').matchAll(/chown\s+(\S+)\s+(\S+)/g)].map((m) => `${m[1]} ${m[2]}`))
  t.same(chowns, ['node:node /app/data'], 'only /app/data is given to the node user')
  t.same(of('USER').map((u) => args(u).join(' ')), ['node'], 'runs as node')
  t.same(of('VOLUME').map((v) => v.getRawArgumentsContent()), ['["/app/data"]'])
  t.same(of('WORKDIR').map((w) => args(w)[0]), ['/app'])

  // Every file COPYd from the build context exists here and is not left out by .dockerignore.
  const ignored = (await readFile(join(REPO, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  for (const stage of stages) {
    for (const copy of stage.instructions.filter((i) => i.getKeyword() === 'COPY' && !('from' in flags(i)))) {
      for (const source of args(copy).slice(0, -1)) {
        t.ok(existsSync(join(REPO, source)), `COPY ${source}: exists`)
        t.notOk(ignored.some((p) => source === p || source.startsWith(`${p}/`)), `COPY ${source}: not in .dockerignore`)
      }
    }
  }
  const fromBuild = of('COPY').filter((c) => flags(c).from === 'build').map((c) => args(c)[0])
  t.same(fromBuild, ['/app/node_modules', '/app/dist/src'], 'the runtime takes the pruned node_modules and the compiled code')

  // The container config: named by CANARY_PROXY_CONFIG (serve and the HEALTHCHECK read it), copied in, valid.
  const env = Object.fromEntries(
    of('ENV').flatMap((e) => (e as Instruction & { getProperties(): { getName(): string; getValue(): string | null }[] }).getProperties().map((p) => [p.getName(), p.getValue() ?? ''])),
  )
  t.equal(env.NODE_ENV, 'production')
  t.equal(env.CANARY_PROXY_CONFIG, '/app/config/container.yaml')
  t.ok(of('COPY').some((c) => args(c).includes('config/container.yaml') && args(c).at(-1) === './config/'), 'config/container.yaml is copied to /app/config/')
  t.same(jsonArgs(of('CMD')[0]!.getRawArgumentsContent()!), ['serve'], 'CMD serve: the config comes from CANARY_PROXY_CONFIG')
  t.same(jsonArgs(of('ENTRYPOINT')[0]!.getRawArgumentsContent()!), ['/usr/bin/tini', '--', 'node', 'dist/src/main.js'], 'tini as PID 1, then the bin')
  const containerEnv = { CANARY_PROXY_ADMIN_TOKEN: 't0ken', CANARY_PROXY_STABLE_URL: 'http://stable:8080' }
  const config = await loadConfigFile(join(REPO, 'config', 'container.yaml'), containerEnv)
  t.ok(config.ok, config.ok ? 'config/container.yaml is valid' : config.error.map(renderIssue).join('\n'))
  if (config.ok) {
    t.equal(config.value.admin.host, '0.0.0.0', 'admin reachable from outside the container')
    t.equal(config.value.admin.tokens.get('t0ken'), 'admin', 'with the token from the environment')
    t.same(of('EXPOSE').flatMap(args).map(Number), [config.value.listen.port, config.value.admin.port], 'EXPOSE the two ports it listens on')
    for (const file of [config.value.state.file, config.value.audit.file]) t.ok(file.startsWith('/app/data/'), `${file} is in the writable /app/data`)
    t.equal(config.value.upstreams.canary, null, 'no canary until one is given')
  }
  const noToken = await loadConfigFile(join(REPO, 'config', 'container.yaml'), { CANARY_PROXY_STABLE_URL: 'http://stable:8080' })
  t.same(
    noToken.ok ? [] : noToken.error.map(renderIssue),
    [
      'admin.token: environment variable CANARY_PROXY_ADMIN_TOKEN is not set (write ${CANARY_PROXY_ADMIN_TOKEN:-} for an empty default)',
      'admin.host: refusing to serve the admin API on non-loopback address 0.0.0.0 without admin.token; set a token or listen on 127.0.0.1',
    ],
    'the token is required: without it the container does not start, and says why',
  )

  // HEALTHCHECK: the script that reads the config's admin port, no port written here.
  const health = of('HEALTHCHECK')
  t.equal(health.length, 1)
  const raw = health[0]!.getRawArgumentsContent() ?? ''
  const command = jsonArgs(raw.slice(raw.indexOf('CMD') + 3).replace(/\\\n/g, '').trim())
  t.same(command, ['node', 'dist/src/healthcheck.js'])
  t.notMatch(raw, /9901|127\.0\.0\.1|localhost/, 'no admin address hard-coded')
  t.ok(existsSync(join(REPO, 'dist', 'src', 'healthcheck.js')), 'the build produces it')

  const labels = Object.fromEntries(
    of('LABEL').flatMap((l) => (l as Instruction & { getProperties(): { getName(): string; getValue(): string | null }[] }).getProperties().map((p) => [p.getName(), p.getValue() ?? ''])),
  )
  for (const key of ['title', 'description', 'licenses', 'version', 'revision', 'created', 'source']) t.ok(labels[`org.opencontainers.image.${key}`] !== undefined, `OCI label org.opencontainers.image.${key}`)
  t.equal(labels['org.opencontainers.image.licenses'], pkg.license)
  t.equal(labels['org.opencontainers.image.base.name'], `docker.io/library/${image}`)
})

t.test('the HEALTHCHECK script probes the admin listener its config names, on any port', async (t) => {
  t.equal(configFileFrom([], {}), DEFAULT_CONFIG, "serve's default")
  t.equal(configFileFrom([], { CANARY_PROXY_CONFIG: '/app/config/container.yaml' }), '/app/config/container.yaml')
  t.equal(configFileFrom(['--config', 'a.yaml'], { CANARY_PROXY_CONFIG: 'b.yaml' }), 'a.yaml', '--config wins')
  t.equal(configFileFrom(['--config=c.yaml'], {}), 'c.yaml')
  const admin = (host: string): string => adminProbeUrl({ host, port: 9000, tokens: new Map() })
  t.same(['0.0.0.0', '::', '[::]', '127.0.0.1', '::1', 'admin.internal'].map(admin), ['http://127.0.0.1:9000', 'http://[::1]:9000', 'http://[::1]:9000', 'http://127.0.0.1:9000', 'http://[::1]:9000', 'http://admin.internal:9000'])

  const stable = await startUpstream(t, 'stable')
  const dir = await tempDir()
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const adminPort = await freePort()
  const file = await writeConfig(
    dir,
    'container-like.yaml',
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      // Block style: a plain ${...} is not allowed inside a flow mapping.
      'admin:',
      '  host: 0.0.0.0',
      '  port: ${ADMIN_PORT}',
      '  token: "${CANARY_PROXY_ADMIN_TOKEN}"',
      `upstreams: { stable: "${stable.url}" }`,
      `state: { file: "${join(dir, 'state.json')}" }`,
      `audit: { file: "${join(dir, 'audit.jsonl')}" }`,
      'log: { level: info }',
    ].join('\n'),
  )
  const env = { CANARY_PROXY_ADMIN_TOKEN: 'secret', ADMIN_PORT: String(adminPort) }
  const check = async (extra: Record<string, string>, argv: string[] = []): Promise<{ code: number; stderr: string }> => {
    try {
      await run(process.execPath, [join(REPO, 'dist', 'src', 'healthcheck.js'), ...argv], { env: cliEnv({ ...env, ...extra }), timeout: 20_000 })
      return { code: 0, stderr: '' }
    } catch (error) {
      const e = error as { code?: number; stderr?: string }
      return { code: e.code ?? -1, stderr: e.stderr ?? '' }
    }
  }
  // A generous start-up wait: a shared machine's load has made node take over 20 s to start.
  const served = await serve(t, null, { env: { ...env, CANARY_PROXY_CONFIG: file }, timeoutMs: 60_000 })
  t.equal(new URL(served.adminUrl).port, String(adminPort), 'serve took the admin port from the config')
  t.same(await check({ CANARY_PROXY_CONFIG: file }), { code: 0, stderr: '' }, 'healthy: exit 0 (config from CANARY_PROXY_CONFIG)')
  t.same(await check({}, ['--config', file]), { code: 0, stderr: '' }, 'healthy: exit 0 (config from --config)')
  await writeFile(join(dir, 'other.yaml'), (await readFile(file, 'utf8')).replace('${ADMIN_PORT}', String(await freePort())))
  const wrong = await check({}, ['--config', join(dir, 'other.yaml')])
  t.equal(wrong.code, 1, 'another admin port: nothing there, exit 1')
  t.match(wrong.stderr, /^healthcheck: http:\/\/127\.0\.0\.1:\d+\/healthz: ECONNREFUSED\n$/, 'and says why in one line')
  const broken = await check({ CANARY_PROXY_ADMIN_TOKEN: '' }, ['--config', join(dir, 'missing.yaml')])
  t.equal(broken.code, 1)
  t.match(broken.stderr, /missing\.yaml: file not found/)
  served.child.process.kill('SIGTERM')
  await served.child.exited
  t.equal((await check({ CANARY_PROXY_CONFIG: file })).code, 1, 'after the proxy stopped: exit 1')
  t.ok(existsSync(CLI))
})
