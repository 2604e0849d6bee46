#!/usr/bin/env node
/** bin entry: parse argv, run one command, set the exit code; the only module with side effects at import. */
import { readFileSync } from 'node:fs'
import { clearScreenDown, cursorTo } from 'node:readline'
import { USAGE, UsageError, parseCommand } from './cli/args.js'
import { EXIT_USAGE, runCommand } from './cli/commands.js'
import { colours, useColour, type Io } from './cli/terminal.js'

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
const io: Io = {
  out: (line: string) => process.stdout.write(`${line}\n`),
  err: (line: string) => process.stderr.write(`${line}\n`),
  style: colours(useColour(process.stdout, process.env)),
  tty: process.stdout.isTTY === true,
  clear: () => {
    cursorTo(process.stdout, 0, 0)
    clearScreenDown(process.stdout)
  },
}

try {
  const command = parseCommand(process.argv.slice(2), process.env)
  const code = await runCommand(command, io, pkg.version)
  // serve, demo and status --watch end by a signal with sockets and timers of
  // their own just closed; exit now rather than wait for stragglers to unwind.
  if (command.name === 'serve' || command.name === 'demo' || (command.name === 'status' && command.watch)) process.exit(code)
  process.exitCode = code
} catch (error) {
  if (error instanceof UsageError) {
    // "status: unknown option …" names its command; "unknown command …" does not.
    io.err(`canary-proxy${/^[a-z-]+: /.test(error.message) ? ' ' : ': '}${error.message}`)
    if (error.showUsage) io.err(`\n${USAGE}`)
    process.exitCode = EXIT_USAGE
  } else {
    io.err(`canary-proxy: ${(error as Error).stack ?? String(error)}`)
    process.exitCode = 1
  }
}
