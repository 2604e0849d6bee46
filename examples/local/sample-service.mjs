// A sample service for examples/local-pipeline.sh: answers JSON after a few
// milliseconds; --error-ratio R answers 500 to that share of requests.
// Prints "listening http://127.0.0.1:PORT" once it listens (port 0: any free one).
//   node examples/local/sample-service.mjs --version v2 [--error-ratio 0.5] [--port 0]
import { Buffer } from 'node:buffer'
import { createServer } from 'node:http'
import process from 'node:process'
import { setTimeout } from 'node:timers'
import { parseArgs } from 'node:util'

const { values } = parseArgs({ options: { version: { type: 'string', default: 'v1' }, 'error-ratio': { type: 'string', default: '0' }, port: { type: 'string', default: '0' } } })
const errorRatio = Number(values['error-ratio'])
const server = createServer((req, res) => {
  req.resume()
  setTimeout(() => {
    const failed = Math.random() < errorRatio
    const body = JSON.stringify({ version: values.version, path: req.url, ok: !failed })
    res.writeHead(failed ? 500 : 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
  }, 2 + Math.random() * 4)
})
server.listen(Number(values.port), '127.0.0.1', () => process.stdout.write(`listening http://127.0.0.1:${server.address().port}\n`))
const stop = () => server.close(() => process.exit(0))
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
