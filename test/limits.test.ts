import t, { type Test } from 'tap'
import net from 'node:net'
import mqttPacket from 'mqtt-packet'
import type { AccessTierConfig } from '../src/index.js'
import { type AccessTier, createAccessTier } from '../src/server.js'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'
import { record } from './support/recorder.js'

async function startServer (t: Test, limits: AccessTierConfig['limits'], aedesHook?: object): Promise<{ url: string, port: number, b1: Awaited<ReturnType<typeof startAedes>>, server: AccessTier }> {
  const b1 = await startAedes(t, { aedes: aedesHook ?? {} })
  const b2 = await startAedes(t)
  const server = await createAccessTier({ listen: { host: '127.0.0.1', port: 0 }, broker1: { url: b1.url }, broker2: { url: b2.url }, data: tempDir(t), limits })
  t.teardown(() => server.close())
  return { url: `mqtt://127.0.0.1:${server.addresses.mqtt.port}`, port: server.addresses.mqtt.port, b1, server }
}

function closed (client: { once: (event: 'close', listener: () => void) => unknown }): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()))
}

t.test('limits.maxPacketSize: a terminal sending a larger packet is dropped, the others keep working', async (t) => {
  const { url, b1 } = await startServer(t, { maxPacketSize: 1024 })
  const atBroker1 = await record(t, b1.url, '#')
  const big = await connectClient(t, url, { clientId: 'big' })
  const small = await connectClient(t, url, { clientId: 'small' })
  const gone = closed(big)
  big.publish('x', Buffer.alloc(2048), { qos: 1 })
  await gone
  await small.publishAsync('y', Buffer.alloc(512), { qos: 1 })
  await atBroker1.waitForTopic('y')
  t.same(atBroker1.messages.map((m) => m.topic), ['y'], 'the oversized publish never went upstream')
})

t.test('limits.maxConnections: connections beyond the limit are refused until one closes', async (t) => {
  const { url } = await startServer(t, { maxConnections: 2 })
  const first = await connectClient(t, url, { clientId: 'a' })
  await connectClient(t, url, { clientId: 'b' })
  await t.rejects(connectClient(t, url, { clientId: 'c' }), 'the third connection is refused')
  const gone = closed(first)
  first.end()
  await gone
  await t.resolves(connectClient(t, url, { clientId: 'd' }), 'a new one gets in once one closed')
})

t.test('limits.connectionRatePerSecond: a burst beyond the rate is refused', async (t) => {
  const { url } = await startServer(t, { connectionRatePerSecond: 5 })
  const attempts = await Promise.allSettled(Array.from({ length: 15 }, (_, i) => connectClient(t, url, { clientId: `burst-${i}`, connectTimeout: 3000 })))
  const admitted = attempts.filter((a) => a.status === 'fulfilled').length
  t.ok(admitted >= 5 && admitted <= 7, `${admitted} of 15 admitted at 5/s`)
})

t.test('limits.maxInflight: past the limit the tier stops reading the terminal until its publishes are safe', async (t) => {
  const held: Array<() => void> = []
  let arrived: () => void = () => {}
  const { url } = await startServer(t, { maxInflight: 10 }, {
    authorizePublish: (client: unknown, _packet: unknown, callback: (error: null) => void) => {
      if (client === null) return callback(null)
      held.push(() => callback(null)) // Broker1 takes the publishes but does not ack them yet
      arrived()
    }
  })
  const eager = await connectClient(t, url, { clientId: 'eager' })
  let closedEarly = false
  eager.once('close', () => { closedEarly = true })
  let acked = 0
  const total = 2000
  const all = new Promise<void>((resolve) => {
    for (let i = 0; i < total; i++) eager.publish('g', Buffer.alloc(256, i % 256), { qos: 1 }, (error) => { if (error == null && ++acked === total) resolve() })
  })
  while (held.length < 10) await new Promise<void>((resolve) => { arrived = resolve })
  await new Promise((resolve) => setTimeout(resolve, 300)) // give a runaway tier time to read on: it must not
  t.ok(held.length < total / 2, `Broker1 got ${held.length} of ${total} while none was acked: the tier stopped reading`)
  t.equal(acked, 0, 'nothing acknowledged before Broker1 acked')
  const release = setInterval(() => { for (const ack of held.splice(0)) ack() }, 5)
  await all
  clearInterval(release)
  t.equal(acked, total, 'every publish acknowledged once Broker1 acked')
  t.notOk(closedEarly, 'the terminal was slowed down, not disconnected')
})

t.test('a terminal that never reads is disconnected after limits.drainTimeoutMs; the others get every message', async (t) => {
  const { url, port, server } = await startServer(t, { drainTimeoutMs: 1000 })
  // The stuck socket is paused, so it would not notice the close: watch the tier's side.
  const stuckClosed = new Promise<void>((resolve) => server.aedes.on('clientDisconnect', (client) => { if (client.id === 'stuck') resolve() }))
  const stuck = net.connect(port, '127.0.0.1')
  stuck.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'stuck', keepalive: 0 }))
  stuck.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 's/#', qos: 0 }] }))
  stuck.once('data', () => stuck.pause()) // read the CONNACK, then never again
  t.teardown(() => { stuck.destroy() })
  const healthy = await connectClient(t, url, { clientId: 'healthy' })
  await healthy.subscribeAsync('s/#', { qos: 1 })
  let received = 0
  const all = new Promise<void>((resolve) => healthy.on('message', () => { if (++received === 3000) resolve() }))
  const publisher = await connectClient(t, url, { clientId: 'publisher' })
  // 48 MB: more than the kernel's socket buffers hold for the terminal that does not read.
  for (let i = 0; i < 3000; i++) publisher.publish('s/x', Buffer.alloc(16 * 1024, i % 256), { qos: 1 })
  await all
  t.equal(received, 3000, 'the healthy subscriber got all 3000 messages')
  await stuckClosed
  t.equal(server.tier.state.clients, 2, 'the terminal that never read was disconnected, the others stay')
})
