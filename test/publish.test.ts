import t from 'tap'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { record } from './support/recorder.js'
import { missing, orderViolations } from './support/sequence.js'
import { publishStream } from './support/stream.js'
import { nextMessage, startTier } from './support/tier.js'

t.test('a publish goes to Broker1 only, and its PUBACK waits for Broker1\'s', async (t) => {
  let release: (() => void) | undefined
  const held = new Promise<void>((resolve) => {
    release = undefined
    t.context.heldResolve = resolve
  })
  const b1 = await startAedes(t, {
    aedes: {
      authorizePublish: (client, packet, callback) => {
        if (client === null || packet.topic !== 'held') return callback(null)
        release = () => callback(null)
        t.context.heldResolve()
      }
    }
  })
  const b2 = await startAedes(t)
  const at1 = await record(t, b1.url, '#')
  const at2 = await record(t, b2.url, '#')
  const { url } = await startTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'pub' })
  let acked = false
  const ack = terminal.publishAsync('held', 'x', { qos: 1 }).then(() => { acked = true })
  await held
  await new Promise((resolve) => setImmediate(resolve))
  t.notOk(acked, 'no PUBACK while Broker1 holds its ack')
  release!()
  await ack
  t.ok(acked, 'PUBACK once Broker1 acked')
  await terminal.publishAsync('control', 'c', { qos: 1 })
  await at1.waitForTopic('control')
  t.same(at1.messages.map((m) => m.topic), ['held', 'control'])
  t.same(at2.messages, [], 'Broker2 got nothing while Broker1 is up')
})

t.test('a terminal\'s pipelined QoS 1 stream reaches Broker1 complete and in order, even through a slow user hook', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const at1 = await record(t, b1.url, 'seq/#')
  // The user's own authorizePublish answers out of order; the tier must still keep the terminal's order.
  const authorizePublish = (_client: unknown, _packet: unknown, callback: (error: null) => void): void => {
    setTimeout(() => callback(null), Math.floor(Math.random() * 4))
  }
  const { url } = await startTier(t, b1.url, b2.url, { aedes: { authorizePublish } })
  const terminal = await connectClient(t, url, { clientId: 'streamer' })
  const count = 2000
  const { acked } = await publishStream(terminal, { topic: 'seq/a', count, window: 200 })
  t.equal(acked.length, count, 'every message acked')
  await at1.waitFor(count)
  const got = at1.sequences('seq/')
  t.same(missing({ from: 0, to: count - 1 }, got), [], 'none missing at Broker1')
  t.equal(orderViolations(got), 0, 'Broker1 got them in the order sent')
})

t.test('nothing is routed locally: one copy per subscriber, retained kept by the brokers only', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url, aedes } = await startTier(t, b1.url, b2.url)
  const sub = await connectClient(t, url, { clientId: 'sub' })
  await sub.subscribeAsync('r/#', { qos: 1 })
  const pub = await connectClient(t, url, { clientId: 'pub' })
  const seen: string[] = []
  sub.on('message', (topic, payload) => seen.push(`${topic}=${payload.toString()}`))
  await pub.publishAsync('r/1', 'one', { qos: 1, retain: true })
  await pub.publishAsync('r/2', 'two', { qos: 1 })
  await pub.publishAsync('r/end', 'end', { qos: 1 })
  await new Promise<void>((resolve) => sub.on('message', (topic) => { if (topic === 'r/end') resolve() }))
  t.same(seen, ['r/1=one', 'r/2=two', 'r/end=end'], 'each message exactly once')

  const local: unknown[] = []
  for await (const packet of (aedes as unknown as { persistence: { createRetainedStreamCombi: (p: string[]) => AsyncIterable<unknown> } }).persistence.createRetainedStreamCombi(['#'])) local.push(packet)
  t.same(local, [], 'the tier\'s Aedes keeps no retained copy')

  const late = await connectClient(t, url, { clientId: 'late' })
  const retained = nextMessage(late)
  await late.subscribeAsync('r/#', { qos: 1 })
  const first = await retained
  t.same([first.topic, first.payload.toString(), first.retain], ['r/1', 'one', true], 'the retained message comes from Broker1')
})

t.test('with Broker1 down, publishes go to Broker2', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const at2 = await record(t, b2.url, '#')
  const { url, tier } = await startTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'pub' })
  const down = new Promise((resolve) => tier.once('broker-down', resolve))
  await b1.close()
  await down
  await terminal.publishAsync('during', 'outage', { qos: 1 })
  const message = await at2.waitForTopic('during')
  t.equal(message.payload.toString(), 'outage')
})

t.test('a publish the user\'s authorizePublish refuses never reaches a broker', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const at1 = await record(t, b1.url, '#')
  const authorizePublish = (_client: unknown, packet: { topic: string }, callback: (error: Error | null) => void): void => {
    callback(packet.topic === 'forbidden' ? new Error('no') : null)
  }
  const { url } = await startTier(t, b1.url, b2.url, { aedes: { authorizePublish } })
  const bad = await connectClient(t, url, { clientId: 'bad' })
  const closed = new Promise<void>((resolve) => bad.once('close', () => resolve()))
  bad.publish('forbidden', 'x', { qos: 1 })
  await closed
  const good = await connectClient(t, url, { clientId: 'good' })
  await good.publishAsync('allowed', 'y', { qos: 1 })
  await at1.waitForTopic('allowed')
  t.same(at1.messages.map((m) => m.topic), ['allowed'])
})
