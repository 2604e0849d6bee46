#!/usr/bin/env node
/** bin entry: parse argv, run one command, set the exit code; the only module with side effects at import. */
import { readFileSync } from 'node:fs'
import { USAGE, UsageError, parseCommand } from './cli/args.js'
import { EXIT_USAGE, runCommand } from './cli/commands.js'

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
const io = {
  out: (line: string) => process.stdout.write(`${line}\n`),
  err: (line: string) => process.stderr.write(`${line}\n`),
}

try {
  const command = parseCommand(process.argv.slice(2), process.env)
  const code = await runCommand(command, io, pkg.version)
  // serve and demo end by a signal with sockets and timers of their own just
  // closed; exit now rather than wait for stragglers to unwind.
  if (command.name === 'serve' || command.name === 'demo') process.exit(code)
  process.exitCode = code
} catch (error) {
  if (error instanceof UsageError) {
    io.err(`canary-proxy ${error.message}`)
    if (error.showUsage) io.err(`\n${USAGE}`)
    process.exitCode = EXIT_USAGE
  } else {
    io.err(`canary-proxy: ${(error as Error).stack ?? String(error)}`)
    process.exitCode = 1
  }
}
