import { fork } from 'node:child_process'
import autocannon from 'autocannon'
const start = (args) => new Promise(r => { const c = fork('./qserver.mjs', args); c.on('message', m => r({ c, url: `http://127.0.0.1:${m.port}` })) })
const up = await start(['upstream'])
const names = ['httpProxy', 'poolStream', 'canaryFastify', 'canaryRaw']
const servers = {}
for (const n of names) servers[n] = await start([n, up.url])
const res = {}
for (let round = 0; round < 3; round++) for (const n of ['direct', ...names]) {
  const url = n === 'direct' ? up.url : servers[n].url
  const r = await autocannon({ url, connections: 50, duration: 4, headers: { 'x-user-id': 'u' + round } })
  ;(res[n] ??= []).push(Math.round(r.requests.average))
}
console.log(res)
for (const s of [up, ...Object.values(servers)]) s.c.kill()
