// The reconnect-storm process: persistent terminals (clean: false) subscribe
// and go away, messages are queued for them at Broker1, then they all come
// back at a set rate, as after a site's network returns. Times each CONNACK
// from its CONNECT, and the last queued message's arrival from the first CONNECT.
import { setTimeout as sleep } from 'node:timers/promises'
import { LeanClient, makePayload } from './lib/mqtt-lean.mjs'
import { serve } from './lib/procs.mjs'

let clients = []

const idOf = (prefix, i) => `${prefix}-${i}`

async function connected (url, clientId, clean) {
  const client = new LeanClient({ url, clientId, clean, keepalive: 60, connectTimeoutMs: 60_000 })
  const code = await client.connect()
  if (code !== 0) throw new Error(`CONNACK ${code}`)
  return client
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN

serve({
  async prepare ({ url, n, prefix }) {
    for (let i = 0; i < n; i += 100) {
      await Promise.all(Array.from({ length: Math.min(100, n - i) }, async (_, j) => {
        const client = await connected(url, idOf(prefix, i + j), false)
        await client.subscribe(`storm/${idOf(prefix, i + j)}`, 1)
        client.end()
      }))
    }
    return true
  },

  /** QoS 1 publishes straight at Broker1, each acked (so queued) before this resolves. */
  async publish ({ url, n, queued, prefix }) {
    const publisher = await connected(url, `${prefix}-publisher`, true)
    let messageId = 0
    let pending = 0
    let resolveAll
    const all = new Promise((resolve) => { resolveAll = resolve })
    publisher.on('puback', () => { if (--pending === 0) resolveAll() })
    for (let i = 0; i < n; i++) {
      for (let seq = 0; seq < queued; seq++) {
        pending++
        messageId = (messageId % 65535) + 1
        publisher.publish(`storm/${idOf(prefix, i)}`, makePayload(seq), 1, messageId)
      }
      if (i % 50 === 49) await sleep(0)
    }
    await all
    publisher.end()
    return true
  },

  async reconnect ({ url, n, queued, perSecond, prefix }) {
    const connackMs = []
    let delivered = 0
    let sessionPresent = 0
    let lastAt = 0
    const started = performance.now()
    const done = new Promise((resolve) => {
      const timer = setTimeout(resolve, 60_000)
      const opens = []
      for (let i = 0; i < n; i++) {
        opens.push((async () => {
          await sleep(Math.max(0, started + (i * 1000) / perSecond - performance.now()))
          const client = new LeanClient({ url, clientId: idOf(prefix, i), clean: false, keepalive: 60, connectTimeoutMs: 60_000 })
          client.on('connack', (packet) => { if (packet.sessionPresent) sessionPresent++ })
          client.on('message', () => {
            lastAt = performance.now()
            if (++delivered === n * queued) { clearTimeout(timer); resolve() }
          })
          const sentAt = performance.now()
          await client.connect()
          connackMs.push(performance.now() - sentAt)
          clients.push(client)
        })().catch(() => {})) // a refused or lost connection shows as messages missing
      }
    })
    await done
    connackMs.sort((a, b) => a - b)
    for (const client of clients) client.end()
    clients = []
    return { connackP50: percentile(connackMs, 0.5), connackP99: percentile(connackMs, 0.99), delivered, sessionPresent, lastMs: lastAt - started }
  }
})
