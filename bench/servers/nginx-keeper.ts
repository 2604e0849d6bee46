/** Bench child: starts nginx in the foreground and stays its parent, so nginx stops with the runner even if the runner is killed outright. */
import { spawn } from 'node:child_process'
import { serveCalls } from '../lib/ipc.js'
import { PATH } from '../lib/payload.js'

const [url, bin, ...args] = process.argv.slice(2)
if (url === undefined || bin === undefined) throw new Error('usage: nginx-keeper.js <url> <nginx-binary> [nginx args…]')

// TERM is nginx's fast shutdown: the master stops its worker and exits.
const nginx = spawn(bin, args, { stdio: ['ignore', 'inherit', 'inherit'] })
const stop = (): void => void nginx.kill('SIGTERM')
nginx.once('exit', (code, signal) => process.exit(code ?? (signal === null ? 0 : 1)))
nginx.once('error', (error) => {
  process.stderr.write(`cannot start ${bin}: ${error.message}\n`)
  process.exit(1)
})
process.on('SIGTERM', stop)
// The IPC channel closes when the runner exits, however it exits.
process.on('disconnect', stop)

async function answers(): Promise<boolean> {
  try {
    const res = await fetch(`${url}${PATH}`)
    await res.arrayBuffer()
    return res.status === 200
  } catch {
    return false
  }
}

let ready = false
for (let i = 0; i < 50 && !ready; i++) {
  await new Promise((resolve) => setTimeout(resolve, 100))
  ready = await answers()
}
if (ready) serveCalls({}, { url, nginxPid: nginx.pid })
else {
  process.stderr.write(`nginx did not answer on ${url} within 5s\n`)
  stop()
}
