/** The pino logger shared by both planes: JSON lines, the admin token never printed. */
import { pino, type Logger } from 'pino'
import type { LogLevel } from './config/schema.js'

export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  const options = {
    level,
    base: { name: 'canary-proxy' },
    redact: { paths: ['req.headers.authorization', 'headers.authorization', '*.token', 'token'], censor: '[redacted]' },
  }
  return destination === undefined ? pino(options) : pino(options, destination as never)
}
