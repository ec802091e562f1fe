// Ad-hoc experiment: what one idle connection costs in a Node process, by part:
// N mqtt.js clients (what the tier opens twice per terminal), and N terminals
// on a bare Aedes (what the tier's downstream side is), heap and RSS deltas.
//   node --expose-gc bench/exp-memory.mjs [n]
import net from 'node:net'
import mqtt from 'mqtt'
import { Aedes } from 'aedes'
import { Mosquitto, installCleanup, killAll, memOf } from './lib/procs.mjs'
import { LeanClient } from './lib/mqtt-lean.mjs'
installCleanup()
const n = Number(process.argv[2] ?? 1000)
const settle = async () => { for (let i = 0; i < 3; i++) { global.gc?.(); await new Promise((r) => setTimeout(r, 200)) } }
const usage = () => ({ heap: process.memoryUsage().heapUsed, rss: memOf(process.pid).rss * 1024 })
const per = (a, b) => ({ heapKB: +((b.heap - a.heap) / n / 1024).toFixed(2), rssKB: +((b.rss - a.rss) / n / 1024).toFixed(2) })

const b1 = await Mosquitto.start('b1')
await settle()
let before = usage()
const clients = await Promise.all(Array.from({ length: n }, (_, i) => new Promise((resolve) => {
  const c = mqtt.connect(b1.url, { clientId: `m${i}`, keepalive: 60, reconnectPeriod: 0, resubscribe: false, queueQoSZero: false })
  c.on('connect', () => resolve(c))
})))
await settle()
const mqttjs = per(before, usage())
for (const c of clients) c.end(true)
await settle()

const aedes = await Aedes.createBroker()
const server = net.createServer(aedes.handle)
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const url = `mqtt://127.0.0.1:${server.address().port}`
await settle()
before = usage()
// The terminals live in this process too: count their cost separately and subtract it.
const terms = []
for (let i = 0; i < n; i++) { const c = new LeanClient({ url, clientId: `t${i}` }); await c.connect(); terms.push(c) }
await settle()
const withTerms = per(before, usage())
console.log(JSON.stringify({ n, mqttjsClientEach: mqttjs, aedesClientPlusLeanClientEach: withTerms }))
killAll()
process.exit(0)
