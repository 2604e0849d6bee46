/**
 * GET / : the dashboard, built once at boot from real files: dashboard/index.html,
 * dashboard/dashboard.js, dashboard/dashboard.css and uPlot from node_modules,
 * each style and script inlined into one self-contained page.
 *
 * The page's Content-Security-Policy allows exactly those inlined bytes (their
 * SHA-256 hashes) and nothing else: no other script or style, no inline event
 * handler, nothing from another origin; the API (connect-src 'self') is all it
 * reaches. API strings are inserted as text (see dashboard.js), so even a
 * hostile upstream URL or reason cannot run code.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/** Where each file the page names comes from: the page's own folder, or the chart library's package. */
function assetPaths(): Record<string, string> {
  const own = (name: string): string => fileURLToPath(new URL(`./dashboard/${name}`, import.meta.url))
  const require = createRequire(import.meta.url)
  return {
    'index.html': own('index.html'),
    'dashboard.js': own('dashboard.js'),
    'dashboard.css': own('dashboard.css'),
    'uPlot.iife.min.js': require.resolve('uplot/dist/uPlot.iife.min.js'),
    'uPlot.min.css': require.resolve('uplot/dist/uPlot.min.css'),
  }
}

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`

const CSP_MARKER = /<!-- content-security-policy:[^>]*-->/
const STYLESHEET = /<link rel="stylesheet" href="([^"]+)">/g
const SCRIPT = /<script( type="module")? src="([^"]+)"><\/script>/g

export interface DashboardPage {
  readonly html: string
  readonly csp: string
}

/**
 * Inlines every stylesheet and script that index.html names and puts the policy
 * where its marker comment is. Fails at boot, naming the file, when a named
 * file is missing or unknown, or when the page keeps anything it could load
 * from elsewhere.
 */
export function buildDashboard(read: (name: string) => string = readAsset()): DashboardPage {
  const scripts: string[] = []
  const styles: string[] = []
  const inline = (name: string, kind: 'script' | 'style', attributes = ''): string => {
    const text = read(name)
    // An inlined file that closed its own element early would end it mid-way (and the hash would not match).
    if (new RegExp(`</${kind}`, 'i').test(text)) throw new Error(`dashboard: ${name} contains </${kind}, which cannot be inlined`)
    ;(kind === 'script' ? scripts : styles).push(text)
    return `<${kind}${attributes}>${text}</${kind}>`
  }
  const template = read('index.html')
  // Only hashed inline elements may run or style: an event handler attribute, or a link or script that was not inlined, would be refused by the policy.
  const rest = template.replace(STYLESHEET, '').replace(SCRIPT, '')
  if (/<[^>]*\son[a-z]+\s*=|<link[^>]+rel="?stylesheet|<script[^>]+src=|<style|<script>/i.test(rest)) {
    throw new Error('dashboard: index.html has an inline event handler, <style>, inline <script> or a stylesheet or script not in the form that is inlined')
  }
  let html = template.replace(STYLESHEET, (_tag, name: string) => inline(name, 'style')).replace(SCRIPT, (_tag, type: string | undefined, name: string) => inline(name, 'script', type ?? ''))
  const csp = [
    "default-src 'none'",
    `script-src ${scripts.map(sha256).join(' ')}`,
    `style-src ${styles.map(sha256).join(' ')}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ')
  if (!CSP_MARKER.test(html)) throw new Error('dashboard: index.html has no content-security-policy marker comment')
  html = html.replace(CSP_MARKER, `<meta http-equiv="Content-Security-Policy" content="${csp}">`)
  return { html, csp }
}

function readAsset(): (name: string) => string {
  const paths = assetPaths()
  return (name) => {
    const path = paths[name]
    if (path === undefined) throw new Error(`dashboard: index.html names ${name}, which is not one of ${Object.keys(paths).join(', ')}`)
    try {
      return readFileSync(path, 'utf8')
    } catch (error) {
      throw new Error(`dashboard: cannot read ${name} (${path}): ${(error as Error).message}; after \`npm run build\` it is copied to dist/src/admin/dashboard/`)
    }
  }
}

let page: DashboardPage | null = null

/** GET / : the dashboard page, read and built on the first call (the admin server makes it at boot), the same string after. */
export function dashboardHtml(): string {
  page ??= buildDashboard()
  return page.html
}
