/** Preloaded by a test (`node --import`): prints "loaded <url>" on stderr for every file the process loads as a module, to check what a command pulls in. */
import { register } from 'node:module'

// The hooks run on their own thread, where process.stderr is relayed to the main thread and lost when a command exits
// at once (a client command with no admin API to reach); a synchronous write to fd 2 reaches the pipe before that.
const hooks = `import { writeSync } from 'node:fs'
export async function load(url, context, next) {
  if (url.startsWith('file:')) writeSync(2, 'loaded ' + url + '\\n')
  return next(url, context)
}`
register(`data:text/javascript,${encodeURIComponent(hooks)}`)
