/** Preloaded by a test (`node --import`): prints "loaded <url>" on stderr for every file the process loads as a module, to check what a command pulls in. */
import { register } from 'node:module'

const hooks = `export async function load(url, context, next) {
  if (url.startsWith('file:')) process.stderr.write('loaded ' + url + '\\n')
  return next(url, context)
}`
register(`data:text/javascript,${encodeURIComponent(hooks)}`)
