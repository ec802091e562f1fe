// N persistent terminals connected through the tier when Broker1 (mosquitto, persistence false)
// is SIGKILLed and comes back empty. Measures the time from Broker1's restart until every
// session there is whole, until failback, the failback wait the sessions cost, and the messages
// delivered after failback (one QoS 1 message per terminal, straight at Broker1).
// known: the terminals subscribed in this connection (the tier restores them);
// unknown: in an earlier one (the tier asks them to reconnect; they subscribe again on session present 0).
import { setTimeout as sleep } from 'node:timers/promises'
import { Mosquitto, Tier } from './lib/procs.mjs'
import { LeanClient, makePayload } from './lib/mqtt-lean.mjs'

const topicOf = (i) => `loss/t${i}`

/** `scope.add(x)` registers what must be stopped at the end of the run (brokers, tier, clients). */
export async function runSessionLoss (scope, { n, known, failbackDelayMs = 2000 }) {
  const b1 = scope.add(await Mosquitto.start('b1'))
  const b2 = scope.add(await Mosquitto.start('b2'))
  const tier = scope.add(await Tier.start({
    broker1: b1.url,
    broker2: b2.url,
    config: { health: { failbackDelayMs }, limits: { connectionRatePerSecond: 0, maxConnections: 0, maxConnectionsPerSource: 0, maxPendingConnectsPerSource: 0 } }
  }))
  const clients = new Set()
  scope.add({ close: async () => { for (const client of clients) client.destroy() } })
  let delivered = 0
  let reconnects = 0
  let resubscribed = 0
  let stopped = false

  /** A device: reconnects 100 ms after a close, subscribes again on session present 0. */
  async function device (i, subscribe) {
    const client = new LeanClient({ url: tier.url, clientId: `loss-${i}`, clean: false, keepalive: 60, connectTimeoutMs: 60_000 })
    clients.add(client)
    client.on('message', () => { delivered++ })
    client.on('connack', (packet) => {
      if (!packet.sessionPresent && subscribe) void client.subscribe(topicOf(i), 1).then(() => { if (reconnects > 0) resubscribed++ })
    })
    client.once('close', () => {
      clients.delete(client)
      if (!stopped) setTimeout(() => { reconnects++; void device(i, true).catch(() => {}) }, 100)
    })
    await client.connect()
    if (subscribe) await new Promise((resolve) => client.once('suback', resolve))
    return client
  }

  for (let i = 0; i < n; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, n - i) }, async (_, j) => {
      if (known) return device(i + j, true)
      const first = new LeanClient({ url: tier.url, clientId: `loss-${i + j}`, clean: false, keepalive: 60 })
      await first.connect()
      await first.subscribe(topicOf(i + j), 1)
      first.end()
      await new Promise((resolve) => first.once('close', resolve))
      return device(i + j, false)
    }))
  }

  await b1.kill('SIGKILL')
  await tier.waitForLog('failover')
  const mark = tier.logs.length
  const restartWall = Date.now()
  await b1.start()
  const whole = await tier.waitForLog('sessions whole again', (e) => e.broker === 'broker1', 60_000, mark).catch(() => undefined)
  const failback = await tier.waitForLog('failback', () => true, 60_000, mark)
  const waited = tier.logs.slice(mark).find((e) => e.msg === 'failback waited for sessions at Broker1' || e.msg.startsWith('failback: sessions'))

  const publisher = new LeanClient({ url: b1.url, clientId: 'loss-pub', clean: true })
  clients.add(publisher)
  await publisher.connect()
  let acked = 0
  publisher.on('puback', () => { acked++ })
  const before = delivered
  for (let i = 0; i < n; i++) publisher.publish(topicOf(i), makePayload(i), 1, (i % 65535) + 1)
  const until = Date.now() + 10_000
  while ((delivered - before < n || acked < n) && Date.now() < until) await sleep(20)
  stopped = true
  return {
    n,
    failbackDelayMs,
    subscriptions: known ? 'this connection (restored)' : 'earlier connection (asked to reconnect)',
    restartToWholeMs: whole === undefined ? NaN : whole.time - restartWall,
    restartToFailbackMs: failback.time - restartWall,
    failbackWaitedForSessionsMs: waited?.waitedMs ?? 0,
    asked: reconnects,
    resubscribed,
    deliveredAfterFailback: delivered - before
  }
}
