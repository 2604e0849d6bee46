/** The serve process's last line of defence: an error that escaped every handler is logged and counted instead of ending the process. */

export type UncaughtOrigin = 'uncaughtException' | 'unhandledRejection'

/**
 * Installs process-wide 'uncaughtException' and 'unhandledRejection'
 * listeners that hand the error to `note` (App.noteUncaught: a log line with
 * the stack, canary_proxy_uncaught_errors_total). Only `serve` installs it:
 * one failed exchange must not take every other request down with it (issue
 * 7: a canary that reset 1 request in 20 killed the proxy in 656 ms), while
 * in tests, which build the app without it, such an error still fails the
 * test that caused it. Returns the uninstaller.
 */
export function guardProcess(note: (error: unknown, origin: UncaughtOrigin) => void): () => void {
  const onException = (error: Error, origin: string): void => note(error, origin === 'unhandledRejection' ? 'unhandledRejection' : 'uncaughtException')
  const onRejection = (reason: unknown): void => note(reason, 'unhandledRejection')
  process.on('uncaughtException', onException)
  process.on('unhandledRejection', onRejection)
  return () => {
    process.off('uncaughtException', onException)
    process.off('unhandledRejection', onRejection)
  }
}
