import http from 'node:http'
import fastify from 'fastify'
import httpProxy from '@fastify/http-proxy'
import { Pool } from 'undici'
const D = '/work/main/dist/src'
const [variant, upUrl] = process.argv.slice(2)
let port
if (variant === 'upstream') {
  const body = Buffer.from('hello world\n')
  const up = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length }); res.end(body) })
  await new Promise(r => up.listen(0, '127.0.0.1', r)); port = up.address().port
} else if (variant === 'httpProxy') {
  const hp = fastify(); hp.register(httpProxy, { upstream: upUrl }); await hp.listen({ port: 0, host: '127.0.0.1' }); port = hp.server.address().port
} else if (variant === 'poolStream') {
  const pool = new Pool(upUrl)
  const s = http.createServer((req, res) => { pool.stream({ path: req.url, method: req.method, headers: { host: req.headers.host }, opaque: res }, ({ statusCode, headers, opaque }) => { opaque.writeHead(statusCode, headers); return opaque }, () => {}) }); await new Promise(r => s.listen(0, '127.0.0.1', r)); port = s.address().port
} else {
  const { createDataPlane, createRequestHandler } = await import(D + '/proxy/server.js')
  const { SnapshotRef, compileSnapshot } = await import(D + '/routing/snapshot.js')
  const { SideStats } = await import(D + '/stats/side-stats.js')
  const target = (side) => ({ side, url: upUrl, host: new URL(upUrl).host, basePath: '', dispatcher: new Pool(upUrl), stats: new SideStats(side, 30000, Date.now()) })
  const ref = new SnapshotRef(compileSnapshot({ stable: target('stable'), canary: target('canary'), weight: 5, overrideHeader: 'x-canary', stickyHeader: 'x-user-id', stickyCookie: null, responseTimeoutMs: 30000, preserveHost: true }, 1))
  const opts = { ref, random: Math.random, faults: { internalErrors: 0 }, responseTimeoutMs: 30000 }
  if (variant === 'canaryFastify') { const fp = createDataPlane(opts); await fp.listen({ port: 0, host: '127.0.0.1' }); port = fp.server.address().port }
  else { const raw = http.createServer(createRequestHandler(opts)); await new Promise(r => raw.listen(0, '127.0.0.1', r)); port = raw.address().port }
}
process.send({ port })
