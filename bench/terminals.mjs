// The terminals process: opens N idle MQTT connections (clean, keepalive 60 s),
// all at once, as after a site-wide reconnect, and times them until the last
// CONNACK. They stay connected (pinging) until `close`.
import { setTimeout as sleep } from 'node:timers/promises'
import { LeanClient } from './lib/mqtt-lean.mjs'
import { serve } from './lib/procs.mjs'

let clients = []
let pinger

serve({
  async connect ({ url, n, prefix = 'term', keepalive = 60, timeoutMs = 60_000 }) {
    const started = performance.now()
    const times = []
    let failed = 0
    const errors = new Map()
    await Promise.all(Array.from({ length: n }, async (_, i) => {
      const client = new LeanClient({ url, clientId: `${prefix}-${i}`, clean: true, keepalive, connectTimeoutMs: timeoutMs })
      try {
        const code = await client.connect()
        if (code !== 0) throw new Error(`CONNACK ${code}`)
        times.push(performance.now() - started)
        clients.push(client)
      } catch (err) {
        failed++
        errors.set(err.message, (errors.get(err.message) ?? 0) + 1)
        client.destroy()
      }
    }))
    const ms = performance.now() - started
    times.sort((a, b) => a - b)
    clearInterval(pinger)
    pinger = setInterval(() => { for (const c of clients) c.ping() }, (keepalive * 1000) / 2)
    return {
      connected: clients.length,
      failed,
      errors: Object.fromEntries(errors),
      ms,
      p50: times[Math.floor(times.length * 0.5)] ?? NaN,
      p99: times[Math.floor(times.length * 0.99)] ?? NaN
    }
  },

  /** Connections still open. */
  alive () {
    return clients.filter((c) => c.connected && !c.closed).length
  },

  async close () {
    clearInterval(pinger)
    for (const c of clients) c.end()
    await sleep(200)
    for (const c of clients) c.destroy()
    clients = []
    return true
  }
})
