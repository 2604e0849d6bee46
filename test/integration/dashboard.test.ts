/**
 * The dashboard (GET /) in a real headless Chromium (Debian's): it follows the
 * live stream (and polls when the stream is unavailable), draws the charts,
 * offers only the actions that apply, marks the failed step and keeps the
 * figures of the last decision, and its controls drive the admin API (with and
 * without a token).
 *
 * Needs the Debian package `chromium` (/usr/bin/chromium); without it this file
 * fails, it does not skip. A failing test leaves a screenshot in
 * .tap/screenshots/ (or CANARY_PROXY_SCREENSHOT_DIR, where the first test also
 * keeps one when it passes).
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { admin, startApp } from '../helpers/app.js'
import { stickyKey } from '../helpers/sticky-keys.js'
import { REPO } from '../helpers/cli.js'
import { startUpstream } from '../helpers/upstreams.js'

const CHROMIUM = '/usr/bin/chromium'
// Playwright launches it with a fresh temporary --user-data-dir of its own (and refuses one here), removed on close.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const SCREENSHOTS = process.env.CANARY_PROXY_SCREENSHOT_DIR || join(REPO, '.tap', 'screenshots')
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

/**
 * A fresh context (empty sessionStorage) and page at the dashboard; `problems`
 * collects script errors and CSP violations. When the test fails, the page is
 * kept as a screenshot first.
 */
async function openDashboard(t: Test, adminUrl: string, before?: (page: Page) => Promise<void>): Promise<{ page: Page; problems: string[] }> {
  const context = await (await getBrowser()).newContext({ viewport: { width: 1100, height: 1400 } })
  const page = await context.newPage()
  t.teardown(async () => {
    if (!t.passing()) {
      await mkdir(SCREENSHOTS, { recursive: true })
      const file = join(SCREENSHOTS, `${t.name.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 80)}.png`)
      await page.screenshot({ path: file, fullPage: true }).then(
        () => t.comment(`screenshot of the failing page: ${file}`),
        (error: unknown) => t.comment(`no screenshot: ${String(error)}`),
      )
    }
    await context.close()
  })
  if (before) await before(page)
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

/** Which of the action buttons the page offers now (enabled), by id. */
async function offered(page: Page): Promise<string[]> {
  const ids = ['btn-pause', 'btn-resume', 'btn-promote', 'btn-abort', 'btn-set-weight', 'btn-start']
  const on: string[] = []
  for (const id of ids) if (await page.isEnabled(`#${id}`)) on.push(id.slice(4))
  return on
}

/** Waits until the page offers exactly these actions. */
async function waitOffered(page: Page, want: string[]): Promise<void> {
  const selector = ['pause', 'resume', 'promote', 'abort', 'set-weight', 'start']
    .map((a) => `#btn-${a}${want.includes(a) ? ':enabled' : ':disabled'}`)
    .join(', ')
  try {
    await page.waitForFunction(`document.querySelectorAll(${JSON.stringify(selector)}).length === 6`, undefined, { timeout: WAIT_MS })
  } catch {
    throw new Error(`waited for the actions ${JSON.stringify(want)}, page offers ${JSON.stringify(await offered(page))}`)
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
    t.equal(await page.getAttribute('#conn', 'data-state'), 'live', 'following the stream')
    t.equal(await page.getAttribute('#steps li:nth-child(1)', 'aria-current'), 'step', 'the current step is marked')
  })

  await t.test('only the actions that apply are offered, and the others say why', async (t) => {
    await waitOffered(page, ['pause', 'promote', 'abort', 'set-weight'])
    t.equal(await page.getAttribute('#btn-resume', 'title'), 'Resume: nothing is paused')
    t.equal(await page.getAttribute('#btn-start', 'title'), 'Start: a rollout is under way')
    await waitMatch(page, 'actions-hint', /^Not available now: Resume: nothing is paused; Start: a rollout is under way\.$/)
  })

  await t.test('four charts of the last minutes, their figures in words', async (t) => {
    for (const id of ['chart-weight', 'chart-rate', 'chart-errors', 'chart-p99']) {
      await page.locator(`#${id} .uplot canvas`).first().waitFor({ state: 'attached' })
      t.pass(`${id} is drawn`)
    }
    await waitMatch(page, 'cap-weight', /^Canary weight: now 5%$/)
    t.equal(await page.getAttribute('#chart-weight', 'role'), 'img')
    t.equal(await page.getAttribute('#chart-weight', 'aria-labelledby'), 'cap-weight', 'each chart is named by its figures')
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
    const check = page.locator('#checks tr[data-check="minRequests"]')
    await check.filter({ hasText: '1,000' }).waitFor({ state: 'attached' })
    t.equal(await check.getAttribute('data-verdict'), 'insufficient', 'the check table names the check and its verdict')
    t.match(await check.textContent(), /^minRequests\d+1,000\d+insufficient$/, 'check, observed, threshold, n, verdict')
    await waitMatch(page, 'cap-rate', /^Requests per second: stable \d+\.\d\/s, canary \d+\.\d\/s$/)
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
    await waitOffered(page, ['resume', 'promote', 'abort', 'set-weight'])
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
    await waitOffered(page, ['set-weight', 'start'])
    t.equal(await page.getAttribute('#btn-promote', 'title'), 'Promote: the canary was aborted: start it again first')
    await waitText(page, 'failed-step', 'Aborted at step 2 of 4 (25%)')
    t.equal(await page.getAttribute('#steps li:nth-child(2)', 'class'), 'stopped', 'the ladder marks where it stopped')
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

  t.ok(await page.isHidden('#token'), 'no token field until a call needs one')
  await page.click('#btn-pause')
  await waitMatch(page, 'message', /^Pause failed \(HTTP 401\): missing bearer token/)
  t.ok(await page.isVisible('#token'), 'a 401 shows the token field')
  t.equal(await page.evaluate<string | undefined>('document.activeElement?.id'), 'token', 'and puts the focus there')
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
  await waitOffered(page, [])
  await page.fill('#start-canary', 'http://127.0.0.1:1')
  await waitOffered(page, ['start'])
  t.notOk(page.url().includes('sekret'), 'the token is never in the URL')
  t.same(problems, [], 'no script errors or CSP violations in the page')
})

t.test('live: a change made elsewhere shows without a reload, and a click changes the phase', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(MISSING)
    return
  }
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { adminUrl } = await startApp(t, {
    upstreams: { stable: stable.url, canary: canary.url },
    rollout: { steps: [5, 25, 50, 100], stepDuration: '10m', autoStart: true },
    analysis: { interval: '100ms', minRequests: 1000 },
  })
  const { page, problems } = await openDashboard(t, adminUrl)
  await waitText(page, 'phase', 'progressing')
  // A reload would lose this (a new document) but keep sessionStorage: the page's own window marks it.
  await page.evaluate('window.testMarker = "this document"')

  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/pause')).status, 200, 'paused from outside (the CLI, a script)')
  await waitText(page, 'phase', 'paused')
  await waitNewestEvent(page, 'pause')
  await waitOffered(page, ['resume', 'promote', 'abort', 'set-weight'])
  t.equal((await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 50 })).status, 200)
  await waitText(page, 'weight', '50%')
  await waitText(page, 'step', '3 of 4 (50%)')
  await waitMatch(page, 'cap-weight', /now 50%/)

  // From the keyboard alone: the weight form submits on Enter.
  await page.focus('#weight-input')
  await page.keyboard.type('60')
  await page.keyboard.press('Enter')
  await waitText(page, 'weight', '60%')
  t.equal((await status(adminUrl)).weight, 60, 'set from the keyboard')
  t.same(await page.evaluate<string[]>("[...document.querySelectorAll('input')].filter((e) => e.labels.length === 0).map((e) => e.id)"), [], 'every input has a label')

  await page.click('#btn-resume')
  await waitText(page, 'phase', 'progressing')
  t.equal((await status(adminUrl)).phase, 'progressing', 'the click resumed the rollout')
  await page.click('#btn-pause')
  await waitText(page, 'phase', 'paused')
  t.equal((await status(adminUrl)).phase, 'paused', 'the click paused it')
  await waitNewestEvent(page, 'pause')
  t.same((await eventRows(page)).map((r) => r.action), ['pause', 'resume', 'set-weight', 'set-weight', 'pause', 'start'])

  t.equal(await page.evaluate<string | undefined>('window.testMarker'), 'this document', 'never reloaded')
  t.same(problems, [], 'no script errors or CSP violations in the page')
})

t.test('a rollback marks the failed step and keeps the figures of the decision after the window empties', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(MISSING)
    return
  }
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary', { status: 500 })
  // A short window, so the live figures empty within the test.
  const { proxyUrl, adminUrl } = await startApp(t, {
    upstreams: { stable: stable.url, canary: canary.url },
    rollout: { steps: [5, 25, 50, 100], stepDuration: '10m', autoStart: true },
    analysis: { interval: '100ms', window: '2s', minRequests: 20, maxErrorRate: 0.01 },
  })
  const { page, problems } = await openDashboard(t, adminUrl)
  await waitText(page, 'phase', 'progressing')
  await waitText(page, 'decision-verdict', 'insufficient')
  t.equal((await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 50 })).status, 200)
  await waitText(page, 'step', '3 of 4 (50%)')

  // Half the traffic goes to the failing canary until it is rolled back.
  for (let batch = 0; batch < 20 && (await status(adminUrl)).phase !== 'rolled_back'; batch++) {
    await Promise.all(Array.from({ length: 10 }, async (_, i) => (await request(`${proxyUrl}/r${batch}-${i}`)).body.dump()))
  }
  const s = await status(adminUrl)
  t.equal(s.phase, 'rolled_back', 'the canary was rolled back')
  await waitText(page, 'phase', 'rolled_back')
  await waitText(page, 'failed-step', 'Failed at step 3 of 4 (50%)')
  const failed = page.locator('#steps li.failed')
  t.equal(await failed.count(), 1, 'one step is marked failed')
  t.equal(await failed.textContent(), '✕50% (failed here)')
  t.equal(await page.getAttribute('#steps li:nth-child(3)', 'class'), 'failed', 'the 50% step')
  await waitOffered(page, ['set-weight', 'start'])

  const check = page.locator('#checks tr[data-check="maxErrorRate"]')
  await check.waitFor({ state: 'attached' })
  t.equal(await check.getAttribute('data-verdict'), 'fail', 'the failing check is named')
  t.match(await check.textContent(), /^maxErrorRate100\.00 %1\.00 %\d+fail$/, 'observed 100%, threshold 1%')
  await waitMatch(page, 'cap-errors', /canary 100\.00 % · max 1\.00 %$/)

  // The evidence, beside the live window: the live canary figures empty, the decision's stay.
  await waitText(page, 'then-canary-error-rate', '100.00 %')
  const thenRequests = Number((await textOf(page, 'then-canary-requests')).replace(/,/g, ''))
  // The window of the first status after the decision (the stream sends it at once; a loaded host may have let a slot expire since).
  t.ok(thenRequests > 0, `the canary requests of the window at the decision (${thenRequests})`)
  await waitText(page, 'canary-requests', '0')
  t.equal(await textOf(page, 'canary-error-rate'), '0.00 %', 'the live window has emptied')
  t.equal(await textOf(page, 'then-canary-error-rate'), '100.00 %', 'the figures at the decision are kept')
  t.equal(await textOf(page, 'then-canary-errors'), String(thenRequests), 'every canary request had failed')
  t.match(await textOf(page, 'then-note'), /^Figures of the window at the last decision \(\d\d:\d\d:\d\d, fail\)/)

  // A reload of the tab keeps them too.
  await page.reload()
  await waitText(page, 'phase', 'rolled_back')
  await waitText(page, 'then-canary-error-rate', '100.00 %')
  await waitText(page, 'failed-step', 'Failed at step 3 of 4 (50%)')
  t.same(problems, [], 'no script errors or CSP violations in the page')
})

t.test('without the stream the page polls the status, and goes back to the stream when it is there again', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(MISSING)
    return
  }
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { adminUrl } = await startApp(t, {
    upstreams: { stable: stable.url, canary: canary.url },
    rollout: { stepDuration: '10m', autoStart: true },
    analysis: { interval: '100ms', minRequests: 1000 },
  })
  let refused = 0
  const { page } = await openDashboard(t, adminUrl, async (page) => {
    // As a proxy in front of the admin API that does not pass event streams would.
    await page.route('**/api/v1/stream*', async (route) => {
      refused++
      await route.fulfill({ status: 502, contentType: 'text/plain', body: 'no streams here' })
    })
  })
  await waitText(page, 'phase', 'progressing')
  await page.locator('#conn[data-state="polling"]').waitFor({ state: 'attached' })
  t.ok(refused >= 1, 'the page asked for the stream first')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/pause')).status, 200)
  await waitText(page, 'phase', 'paused')
  await waitNewestEvent(page, 'pause')
  t.pass('polling follows a change made elsewhere')

  await page.unroute('**/api/v1/stream*')
  await page.locator('#conn[data-state="live"]').waitFor({ state: 'attached' })
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/resume')).status, 200)
  await waitText(page, 'phase', 'progressing')
  await waitNewestEvent(page, 'resume')
  t.same((await eventRows(page)).map((r) => r.action), ['resume', 'pause', 'start'], 'the stream replays the events: none twice, none missed')
})
