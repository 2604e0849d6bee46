import { execFile } from 'node:child_process'
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { AuditLog, parseEvent } from '../../src/state/audit-log.js'

const run = promisify(execFile)
const writer = fileURLToPath(new URL('../fixtures/audit-writer.ts', import.meta.url))

/** One line as the writer fixture appends it (its timestamps all have the same width). */
function lineLength(reason: string): number {
  const event = { at: new Date(Date.UTC(2026, 0, 1)).toISOString(), actor: 'auto', action: 'advance', from: { phase: 'progressing', weight: 5 }, to: { phase: 'progressing', weight: 25 }, reason }
  return Buffer.byteLength(`${JSON.stringify(event)}\n`)
}

const big = (c: string) => c.repeat(300)
const BIG = lineLength(big('x'))
const SHORT = lineLength('short')
// Two big lines fit, a third stops part-way, and a short one fits after the two.
const LIMIT = 2 * BIG + Math.floor((SHORT + BIG) / 2)
t.ok(2 * BIG + SHORT <= LIMIT && LIMIT < 3 * BIG, 'the limit tears the third big line and leaves room for a short one')

/**
 * Runs the writer in a child process whose file size limit (RLIMIT_FSIZE, set
 * by prlimit) is `limit` bytes: a write that crosses it is cut short there
 * and the next fails with EFBIG, as on a disk that fills up mid-append.
 */
async function appendUnderLimit(file: string, limit: number, plan: { reasons: string[]; close: boolean }) {
  // Only the TypeScript loader goes to the child. tap's coverage hooks would
  // write files of their own under the same limit and make SIGXFSZ fatal, and
  // tap puts them back into NODE_OPTIONS of anything spawned: the shell drops it.
  const execArgv = process.execArgv.filter((arg) => !arg.includes('@tapjs/processinfo'))
  const script = 'unset NODE_OPTIONS; exec prlimit --fsize="$0" "$@"'
  const { stdout } = await run('/bin/sh', ['-c', script, String(limit), process.execPath, ...execArgv, writer, file, JSON.stringify(plan)])
  return JSON.parse(stdout) as { results: string[]; writeFailures: number }
}

async function fileLines(t: Test, file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8')
  t.ok(text === '' || text.endsWith('\n'), 'the file ends with a whole line')
  return text.split('\n').slice(0, -1)
}

async function tempFile(): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), 'canary-proxy-audit-')), 'audit.jsonl')
}

t.test('after an append torn by a full disk, the next append repairs the tail: no record is glued to a torn one', async (t) => {
  const file = await tempFile()
  const out = await appendUnderLimit(file, LIMIT, { reasons: [big('x'), big('y'), big('z'), 'short'], close: false })
  t.same(out.results, ['ok', 'ok', 'EFBIG', 'ok'], 'the third append fails part-way; the fourth succeeds')
  t.equal(out.writeFailures, 1, 'the failure is counted')
  const lines = await fileLines(t, file)
  t.same(
    lines.map((l) => parseEvent(l)?.reason),
    [big('x'), big('y'), 'short'],
    'every line is a whole record: the torn one was cut off, not merged with the next',
  )
})

t.test('a torn tail left by a process that died is repaired at open, and appends go on from whole lines', async (t) => {
  const file = await tempFile()
  const out = await appendUnderLimit(file, LIMIT, { reasons: [big('x'), big('y'), big('z')], close: false })
  t.same(out.results, ['ok', 'ok', 'EFBIG'])
  t.equal((await stat(file)).size, LIMIT, 'the torn line is on disk, up to the limit')
  const log = new AuditLog(file)
  await log.open()
  t.same(
    log.recent().map((e) => e.reason),
    [big('x'), big('y')],
  )
  t.equal((await stat(file)).size, 2 * BIG, 'the torn part is gone')
  await log.append({ at: Date.UTC(2026, 0, 2), actor: 'alice', action: 'pause', from: { phase: 'progressing', weight: 25 }, to: { phase: 'paused', weight: 25 }, reason: null })
  await log.close()
  const lines = await fileLines(t, file)
  t.same(
    lines.map((l) => parseEvent(l)?.action),
    ['advance', 'advance', 'pause'],
  )
})

t.test('every failed append is counted, and close() leaves whole lines only', async (t) => {
  const file = await tempFile()
  const out = await appendUnderLimit(file, LIMIT, { reasons: [big('x'), big('y'), big('z'), big('v'), big('w')], close: true })
  t.same(out.results, ['ok', 'ok', 'EFBIG', 'EFBIG', 'EFBIG'])
  t.equal(out.writeFailures, 3)
  t.same(
    (await fileLines(t, file)).map((l) => parseEvent(l)?.reason),
    [big('x'), big('y')],
  )
})

t.test('a last record that lost only its newline is kept, and the file gets the newline', async (t) => {
  const file = await tempFile()
  const record = (action: string) => JSON.stringify({ at: '2026-01-01T00:00:00.000Z', actor: 'auto', action, from: { phase: 'idle', weight: 0 }, to: { phase: 'progressing', weight: 5 }, reason: null })
  await writeFile(file, `${record('start')}\n${record('advance')}`)
  const log = new AuditLog(file)
  await log.open()
  t.same(
    log.recent().map((e) => e.action),
    ['start', 'advance'],
  )
  t.same(
    log.recent(1).map((e) => e.action),
    ['advance'],
    'recent(limit) gives the newest ones',
  )
  await log.append({ at: Date.UTC(2026, 0, 1), actor: 'auto', action: 'advance', from: { phase: 'progressing', weight: 5 }, to: { phase: 'progressing', weight: 25 }, reason: null })
  await log.close()
  t.same(
    (await fileLines(t, file)).map((l) => parseEvent(l)?.action),
    ['start', 'advance', 'advance'],
  )
})

t.test('a torn tail longer than one read chunk is cut back to the last whole line', async (t) => {
  const file = await tempFile()
  const whole = `${JSON.stringify({ at: '2026-01-01T00:00:00.000Z', actor: 'auto', action: 'start', from: { phase: 'idle', weight: 0 }, to: { phase: 'progressing', weight: 5 }, reason: null })}\n`
  await writeFile(file, `${whole}{"at":"2026-01-01T00:00:01.000Z","actor":"auto","action":"rollback","reason":"${'r'.repeat(200_000)}`)
  const log = new AuditLog(file)
  await log.open()
  await log.close()
  t.equal(await readFile(file, 'utf8'), whole)
})

t.test('appends to a full device (/dev/full) fail, each one counted, and the events stay readable', async (t) => {
  const log = new AuditLog('/dev/full')
  await log.open()
  const record = { at: Date.UTC(2026, 0, 1), actor: 'auto', action: 'rollback', from: { phase: 'progressing', weight: 5 }, to: { phase: 'rolled_back', weight: 0 }, reason: 'canary error rate 50%' } as const
  await t.rejects(log.append(record), { code: 'ENOSPC' })
  await t.rejects(log.append({ ...record, action: 'abort' }), { code: 'ENOSPC' }, 'the next append tries again (and fails again)')
  t.equal(log.writeFailures, 2)
  t.same(
    log.recent().map((e) => e.action),
    ['rollback', 'abort'],
    'the events API still has them',
  )
  await log.close()
})
