/**
 * The dashboard's files: built once into one page whose policy allows exactly
 * what it inlines, refused at boot when they would not run under it, copied by
 * `npm run build` to where dist/ reads them, served by the built CLI, and
 * shipped by `npm pack`.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { request } from 'undici'
import { buildDashboard } from '../../src/admin/dashboard.js'
import { REPO, serve, tempDir, writeConfig } from '../helpers/cli.js'

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`
const inlined = (html: string, tag: 'script' | 'style'): string[] => [...html.matchAll(new RegExp(`<${tag}[^>]*>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1] ?? '')

t.test('one page: every style and script inlined, and the policy allows those bytes only', async (t) => {
  const { html, csp } = buildDashboard()
  const own = (name: string): string => readFileSync(join(REPO, 'src', 'admin', 'dashboard', name), 'utf8')
  const scripts = inlined(html, 'script')
  const styles = inlined(html, 'style')
  t.same(scripts, [readFileSync(join(REPO, 'node_modules', 'uplot', 'dist', 'uPlot.iife.min.js'), 'utf8'), own('dashboard.js')], 'uPlot, then the page script')
  t.same(styles, [readFileSync(join(REPO, 'node_modules', 'uplot', 'dist', 'uPlot.min.css'), 'utf8'), own('dashboard.css')], "uPlot's styles, then the page's")
  t.match(html, '<script type="module">', 'the page script runs as a module')
  t.notMatch(html, /<script[^>]+src=|<link[^>]+stylesheet/, 'nothing loaded from anywhere')
  t.notMatch(html, /<!-- content-security-policy/, 'the marker is replaced')
  t.ok(html.includes(`<meta http-equiv="Content-Security-Policy" content="${csp}">`), 'the policy is in the page')
  const directives = Object.fromEntries(csp.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1)]))
  t.same(directives['default-src'], ["'none'"])
  t.same(directives['script-src'], scripts.map(sha256), 'script-src: the hash of each inlined script, nothing else')
  t.same(directives['style-src'], styles.map(sha256), 'style-src: the hash of each inlined style, nothing else')
  t.same(directives['connect-src'], ["'self'"], 'the API, and only it')
  t.same(buildDashboard().html, html, 'the same page every time')
})

t.test('index.html is refused at boot when the policy would block part of it', async (t) => {
  const files: Record<string, string> = {
    'index.html': '<head><!-- content-security-policy: here --><link rel="stylesheet" href="a.css"></head><body><script type="module" src="a.js"></script></body>',
    'a.css': 'body { color: red }',
    'a.js': 'console.log(1)',
  }
  const read = (over: Record<string, string>) => (name: string) => {
    const all = { ...files, ...over }
    const text = all[name]
    if (text === undefined) throw new Error(`dashboard: index.html names ${name}, which is not one of the assets`)
    return text
  }
  const page = buildDashboard(read({}))
  t.match(page.html, /<style>body \{ color: red \}<\/style>/)
  t.match(page.csp, `script-src ${sha256('console.log(1)')};`)
  t.throws(() => buildDashboard(read({ 'index.html': files['index.html']!.replace('<body>', '<body onload="go()">') })), /inline event handler/)
  t.throws(() => buildDashboard(read({ 'index.html': files['index.html']!.replace('<body>', '<body><script>go()</script>') })), /inline <script>/)
  t.throws(() => buildDashboard(read({ 'index.html': files['index.html']!.replace('src="a.js"', 'src="b.js"') })), /names b\.js/)
  t.throws(() => buildDashboard(read({ 'index.html': files['index.html']!.replace(/<!--[^>]*-->/, '') })), /no content-security-policy marker/)
  t.throws(() => buildDashboard(read({ 'a.js': 'x = "</script>"' })), /a\.js contains <\/script/)
})

t.test('the built CLI serves the same page (the build copies the files) and the stream', async (t) => {
  const dir = await tempDir()
  const config = await writeConfig(
    dir,
    'serve.yaml',
    `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams: { stable: http://127.0.0.1:9001 }
state: { file: ${JSON.stringify(join(dir, 'state.json'))} }
audit: { file: ${JSON.stringify(join(dir, 'audit.jsonl'))} }
`,
  )
  const served = await serve(t, config)
  const page = await request(`${served.adminUrl}/`)
  t.equal(page.statusCode, 200)
  t.equal(await page.body.text(), buildDashboard().html, 'dist/src/admin/dashboard/ holds the files of src/ (run `npm run build` after changing them)')
  const stream = await request(`${served.adminUrl}/api/v1/stream`)
  t.match(stream.headers['content-type'], /^text\/event-stream/)
  let text = ''
  for await (const chunk of stream.body) {
    text += String(chunk)
    if (text.includes('event: status\ndata: {')) break
  }
  t.match(text, /^retry: \d+\n/, 'the stream starts with retry:')
  stream.body.destroy()
  served.child.process.kill('SIGTERM')
  t.equal((await served.child.exited).code, 0, 'and stops cleanly with a stream that was open')
})

t.test('npm pack ships the page files, and uPlot is a dependency', async (t) => {
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO, maxBuffer: 16 * 1024 * 1024 })
  const files = (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path)
  for (const name of ['index.html', 'dashboard.js', 'dashboard.css']) t.ok(files.includes(`dist/src/admin/dashboard/${name}`), `dist/src/admin/dashboard/${name} is in the package`)
  t.ok(files.includes('dist/src/admin/dashboard.js'))
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
  t.ok(pkg.dependencies.uplot, 'uplot is installed with the package (the admin plane serves it from node_modules)')
})
