/**
 * The dashboard (GET /) in a real headless Chromium: it shows the live status
 * and events, and its controls drive the admin API (with and without a token).
 *
 * Needs the Debian package `chromium` (/usr/bin/chromium); without it this file
 * fails, it does not skip. Set CANARY_PROXY_SCREENSHOT_DIR to keep a screenshot.
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { admin, startApp } from '../helpers/app.js'
import { stickyKey } from '../helpers/sticky-keys.js'
import { startUpstream } from '../helpers/upstreams.js'

const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const MISSING = `${CHROMIUM} is missing: install the Debian package chromium (apt-get install -y chromium); this test drives a real browser and does not skip`
/** Every wait is for a DOM state; this only bounds how long a broken page takes to fail. */
const WAIT_MS = 10_000

interface SideJson {
  url: string
  requests: number
}
interface StatusJson {
  phase: string
  weight: number
  stable: SideJson
  canary: SideJson | null
  reason: string | null
}

let browser: Browser | null = null

async function getBrowser(): Promise<Browser> {
  browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true })
  return browser
}

t.teardown(async () => {
  await browser?.close()
})

/** A fresh context (empty sessionStorage) and page at the dashboard; `problems` collects script errors and CSP violations. */
async function openDashboard(t: Test, adminUrl: string): Promise<{ page: Page; problems: string[] }> {
  const context = await (await getBrowser()).newContext({ viewport: { width: 1100, height: 1400 } })
  t.teardown(() => context.close())
  const page = await context.newPage()
  page.setDefaultTimeout(WAIT_MS)
  const problems: string[] = []
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  // Refused API calls (401, 409...) log "Failed to load resource"; anything else is a problem.
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) problems.push(`console error: ${msg.text()}`)
  })
  // Self-contained: the page loads nothing from anywhere but the admin API.
  page.on('request', (req) => {
    if (!req.url().startsWith(`${adminUrl}/`)) problems.push(`request outside the admin API: ${req.url()}`)
  })
  const res = await page.goto(`${adminUrl}/`)
  t.equal(res?.status(), 200, 'GET / answers 200')
  t.match(res?.headers()['content-type'] ?? '', /^text\/html/, 'as HTML')
  return { page, problems }
}

/** Text of #id as the page shows it now. */
async function textOf(page: Page, id: string): Promise<string> {
  return (await page.locator(`#${id}`).textContent()) ?? '(no such element)'
}

/** Waits until #id's text matches `pattern` (playwright's own waiting); on timeout, fails with what it showed instead. */
async function waitMatch(page: Page, id: string, pattern: RegExp): Promise<string> {
  try {
    await page.locator(`#${id}`).filter({ hasText: pattern }).waitFor({ state: 'attached', timeout: WAIT_MS })
  } catch {
    throw new Error(`#${id}: waited for ${String(pattern)}, page shows ${JSON.stringify(await textOf(page, id))}`)
  }
  return textOf(page, id)
}

/** Waits until #id's text is exactly `want`. */
async function waitText(page: Page, id: string, want: string): Promise<void> {
  await waitMatch(page, id, new RegExp(`^${want.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`))
}

const EVENT_ROW = '#events tr[data-testid="event"]'

/** Event rows as shown, newest first: their action and their whole text. */
async function eventRows(page: Page): Promise<{ action: string; text: string }[]> {
  const rows = await page.locator(EVENT_ROW).all()
  return Promise.all(rows.map(async (r) => ({ action: (await r.getAttribute('data-action')) ?? '', text: (await r.textContent()) ?? '' })))
}

async function waitNewestEvent(page: Page, action: string): Promise<void> {
  try {
    await page.locator(`${EVENT_ROW}:first-child[data-action="${action}"]`).waitFor({ state: 'attached', timeout: WAIT_MS })
  } catch {
    throw new Error(`newest event: waited for ${action}, page shows ${JSON.stringify((await eventRows(page)).slice(0, 3))}`)
  }
}

async function status(adminUrl: string): Promise<StatusJson> {
  const res = await admin(adminUrl, 'GET', '/api/v1/status')
  return res.json as unknown as StatusJson
}

t.test('chromium is installed', async (t) => {
  t.ok(existsSync(CHROMIUM), MISSING)
})

t.test('dashboard shows the rollout and drives it', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(MISSING)
    return
  }
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const nextCanary = await startUpstream(t, 'canary-2')
  // A long step and a high minRequests: nothing moves except by the page's hand.
  const { proxyUrl, adminUrl } = await startApp(t, {
    upstreams: { stable: stable.url, canary: canary.url },
    rollout: { steps: [5, 25, 50, 100], stepDuration: '10m', bake: '10m', autoStart: true },
    analysis: { interval: '100ms', minRequests: 1000 },
    // A sticky key steers to canary through the gate's figures (an override header would be counted apart).
    routing: { stickyHeader: 'x-user-id' },
  })
  const { page, problems } = await openDashboard(t, adminUrl)

  await t.test('phase, weight, step and both sides', async (t) => {
    await waitText(page, 'phase', 'progressing')
    t.equal(await page.getAttribute('#phase', 'data-phase'), 'progressing', 'phase colour follows the phase')
    await waitText(page, 'weight', '5%')
    t.equal(await page.getAttribute('#weight-bar', 'aria-valuenow'), '5', 'the bar is at 5')
    await waitText(page, 'step', '1 of 4 (5%)')
    t.equal(await textOf(page, 'steps'), '5%25%50%100%')
    t.not(await textOf(page, 'step-started'), '–', 'step start shown')
    await waitMatch(page, 'step-ends', /^\d\d:\d\d:\d\d \(in (\d+m )?\d+s\)$/)
    await waitText(page, 'stable-url', stable.url)
    await waitText(page, 'canary-url', canary.url)
    t.ok(await page.isHidden('#ended'), 'no end reason while under way')
    await waitNewestEvent(page, 'start')
    t.match((await eventRows(page))[0]?.text ?? '', /auto.*start.*idle 0%.*progressing 5%/, 'the auto start is listed')
  })

  await t.test('request counts follow the traffic', async (t) => {
    const send = async (path: string, headers: Record<string, string> = {}): Promise<void> => (await request(`${proxyUrl}${path}`, { headers })).body.dump()
    await Promise.all(Array.from({ length: 30 }, (_, i) => send(`/p${i}`)))
    await Promise.all(Array.from({ length: 10 }, (_, i) => send(`/c${i}`, { 'x-user-id': stickyKey('canary', 5) })))
    const s = await status(adminUrl)
    t.equal(s.stable.requests + (s.canary?.requests ?? 0), 40, 'the API counted all 40')
    t.ok((s.canary?.requests ?? 0) >= 10, 'canary served at least the forced 10')
    await waitText(page, 'stable-requests', s.stable.requests.toLocaleString('en-US'))
    await waitText(page, 'canary-requests', (s.canary?.requests ?? 0).toLocaleString('en-US'))
    t.equal(await textOf(page, 'canary-errors'), '0')
    t.equal(await textOf(page, 'canary-error-rate'), '0.00 %')
    await waitMatch(page, 'canary-p50', /^\d+(\.\d+)? ms$/)
    await waitMatch(page, 'stable-p99', /^\d+(\.\d+)? ms$/)
    // With too little canary traffic for a verdict the gate says so.
    await waitText(page, 'decision-verdict', 'insufficient')
    t.not(await textOf(page, 'decision-reason'), '', 'the decision gives its reason')
  })

  await t.test('set weight 25 pauses there', async (t) => {
    await page.fill('#weight-input', '25')
    await page.click('#btn-set-weight')
    await waitText(page, 'phase', 'paused')
    await waitText(page, 'weight', '25%')
    await waitText(page, 'step', '2 of 4 (25%)')
    await waitMatch(page, 'message', /Set weight 25%: done\. Phase paused/)
    const s = await status(adminUrl)
    t.equal(s.phase, 'paused')
    t.equal(s.weight, 25)
    await waitNewestEvent(page, 'set-weight')
    t.match((await eventRows(page))[0]?.text, /admin.*set-weight.*progressing 5%.*paused 25%/)
  })

  await t.test('a refused weight shows the API message and changes nothing', async (t) => {
    await page.fill('#weight-input', '150')
    await page.click('#btn-set-weight')
    await waitMatch(page, 'message', /failed \(HTTP 400\): weight: must be a number from 0 to 100/)
    t.equal(await page.getAttribute('#weight-input', 'aria-invalid'), 'true', 'the input is marked invalid')
    t.equal((await status(adminUrl)).weight, 25, 'weight unchanged')
    t.equal(await textOf(page, 'weight'), '25%')
  })

  await t.test('resume goes back to progressing', async (t) => {
    await page.click('#btn-resume')
    await waitText(page, 'phase', 'progressing')
    t.equal((await status(adminUrl)).phase, 'progressing')
    await waitNewestEvent(page, 'resume')
    t.match((await eventRows(page))[0]?.text, /resume.*paused 25%.*progressing 25%/)
  })

  await t.test('a dismissed confirm promotes nothing', async (t) => {
    const dialog = page.waitForEvent('dialog')
    const click = page.click('#btn-promote')
    const d = await dialog
    t.equal(d.type(), 'confirm')
    t.match(d.message(), /Promote the canary/)
    await d.dismiss()
    await click
    await waitText(page, 'message', 'Promote cancelled.')
    t.equal((await status(adminUrl)).phase, 'progressing', 'still progressing')
  })

  await t.test('abort (confirmed) shows aborted and its reason, escaped', async (t) => {
    const reason = '<img src=x id=injected> & "quotes"'
    await page.fill('#abort-reason', reason)
    const dialog = page.waitForEvent('dialog')
    const click = page.click('#btn-abort')
    const d = await dialog
    t.equal(d.type(), 'confirm')
    t.match(d.message(), /Abort the rollout/)
    await d.accept()
    await click
    await waitText(page, 'phase', 'aborted')
    t.equal(await page.getAttribute('#phase', 'data-phase'), 'aborted')
    await waitText(page, 'weight', '0%')
    t.ok(await page.isVisible('#ended'), 'the end section shows')
    await waitText(page, 'reason', reason)
    t.equal(await page.$('#injected'), null, 'API text is never parsed as markup')
    const s = await status(adminUrl)
    t.equal(s.phase, 'aborted')
    t.equal(s.reason, reason)
    await waitNewestEvent(page, 'abort')
    t.match((await eventRows(page))[0]?.text, /abort.*progressing 25%.*aborted 0%/)
  })

  await t.test('start a new rollout from the form', async (t) => {
    await page.fill('#start-canary', nextCanary.url)
    await page.click('#btn-start')
    await waitText(page, 'phase', 'progressing')
    await waitText(page, 'canary-url', nextCanary.url)
    await waitText(page, 'weight', '5%')
    t.ok(await page.isHidden('#ended'), 'the end reason goes away')
    const s = await status(adminUrl)
    t.equal(s.phase, 'progressing')
    t.equal(s.canary?.url, nextCanary.url)
    await waitNewestEvent(page, 'start')
  })

  await t.test('every action is listed, newest first', async (t) => {
    const actions = (await eventRows(page)).map((r) => r.action)
    t.same(actions, ['start', 'abort', 'resume', 'set-weight', 'start'])
    const api = (await admin(adminUrl, 'GET', '/api/v1/events')).json as { events: { action: string }[] }
    t.same(
      api.events.map((e) => e.action).reverse(),
      actions,
      'the same events as the API, in reverse',
    )
  })

  const dir = process.env.CANARY_PROXY_SCREENSHOT_DIR
  if (dir !== undefined && dir !== '') {
    await page.fill('#abort-reason', '')
    await page.fill('#weight-input', '')
    await mkdir(dir, { recursive: true })
    const file = join(dir, 'dashboard.png')
    await page.screenshot({ path: file, fullPage: true })
    t.comment(`screenshot: ${file}`)
  }
  t.same(problems, [], 'no script errors or CSP violations in the page')
})

t.test('with admin.token the controls need it', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(MISSING)
    return
  }
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { adminUrl } = await startApp(t, {
    admin: { token: 'sekret' },
    upstreams: { stable: stable.url, canary: canary.url },
    rollout: { stepDuration: '10m', autoStart: true },
    analysis: { minRequests: 1000 },
  })
  const { page, problems } = await openDashboard(t, adminUrl)
  await waitText(page, 'phase', 'progressing')

  await page.click('#btn-pause')
  await waitMatch(page, 'message', /^Pause failed \(HTTP 401\): missing bearer token/)
  t.equal(await page.getAttribute('#message', 'role'), 'alert', 'errors are announced')
  t.equal((await status(adminUrl)).phase, 'progressing', 'without the token nothing changed')
  t.equal(await textOf(page, 'phase'), 'progressing')

  await page.fill('#token', 'wrong')
  await page.click('#btn-pause')
  await waitMatch(page, 'message', /^Pause failed \(HTTP 403\): the bearer token is not valid/)
  t.equal((await status(adminUrl)).phase, 'progressing', 'with a wrong token nothing changed')

  await page.fill('#token', 'sekret')
  t.equal(await page.evaluate<string | null>('sessionStorage.getItem("canary-proxy.admin-token")'), 'sekret', 'the token is kept in sessionStorage')
  await page.click('#btn-pause')
  await waitText(page, 'phase', 'paused')
  await waitMatch(page, 'message', /^Pause: done\./)
  t.equal((await status(adminUrl)).phase, 'paused', 'with the token it worked')
  await waitNewestEvent(page, 'pause')

  await page.reload()
  t.equal(await page.inputValue('#token'), 'sekret', 'the token survives a reload of the tab')
  await waitText(page, 'phase', 'paused')
  await page.click('#btn-resume')
  await waitText(page, 'phase', 'progressing')
  await waitNewestEvent(page, 'resume')
  t.same((await eventRows(page)).map((r) => r.action), ['resume', 'pause', 'start'], 'refused calls left no event')

  // Promote (confirmed): the canary becomes the stable and the canary slot empties.
  const dialog = page.waitForEvent('dialog')
  const click = page.click('#btn-promote')
  await (await dialog).accept()
  await click
  await waitText(page, 'phase', 'succeeded')
  await waitText(page, 'reason', `promoted by admin: ${canary.url} is the new stable`)
  await waitText(page, 'stable-url', canary.url)
  await waitText(page, 'canary-url', 'no canary')
  t.equal(await textOf(page, 'canary-requests'), '–', 'no canary figures without a canary')
  await waitNewestEvent(page, 'promote')
  const s = await status(adminUrl)
  t.equal(s.phase, 'succeeded')
  t.equal(s.canary, null)
  t.same(problems, [], 'no script errors or CSP violations in the page')
})
