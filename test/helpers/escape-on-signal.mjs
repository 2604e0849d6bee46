/**
 * Preloaded into a `serve` child (`node --import`) by test/reliability/process-guard.test.ts:
 * on SIGUSR2 it throws from a callback and leaves a promise rejected, the two ways
 * an error escapes every handler. Test-only: nothing in src/ knows of it.
 */
/* global process, setImmediate */
process.on('SIGUSR2', () => {
  setImmediate(() => {
    throw new Error('thrown by the test fixture')
  })
  void Promise.reject(new Error('rejected by the test fixture'))
})
