import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import t, { type Test } from 'tap'
import type { DualBrokerOptions } from '../src/index.js'
import { connectClient } from './support/client.js'
import { nextEvent, startDurableTier, tempDir } from './support/durable.js'
import { startMosquitto, type MosquittoBroker } from './support/mosquitto.js'
import { record, type Recorder } from './support/recorder.js'
import type { TierUnderTest } from './support/tier.js'
import { orderViolations } from './support/sequence.js'
import { publishStream } from './support/stream.js'

/** Every step waits on an event; this bounds the whole case all the same. */
const BOUNDED = { timeout: 30_000 }

interface Outage {
  b1: MosquittoBroker
  tier: TierUnderTest
  terminal: MqttClient
  /** `dropped` event counts so far, by reason. */
  dropped: Record<'policy' | 'overflow' | 'expired', number>
  /** Restarts Broker1 and resolves with a recorder of `filter` there once the tier failed back. */
  failBack: (filter: string) => Promise<Recorder>
}

/** Two brokers, the tier with a store of these limits, a terminal, and Broker1 down (failover seen). */
async function outage (t: Test, store: Partial<NonNullable<DualBrokerOptions['store']>>, plugin: Partial<DualBrokerOptions>): Promise<Outage> {
  const [b1, b2] = [await startMosquitto(t), await startMosquitto(t)]
  const tier = await startDurableTier(t, b1.url, b2.url, { ...plugin, store: { path: join(tempDir(t), 'pending'), ...store } })
  const terminal = await connectClient(t, tier.url, { clientId: 'store-policy' })
  const dropped = { policy: 0, overflow: 0, expired: 0, refused: 0 }
  tier.tier.on('dropped', ({ reason, count }) => { dropped[reason] += count })
  const down = nextEvent(tier.tier, 'failover')
  await b1.kill()
  await down
  const failBack = async (filter: string): Promise<Recorder> => {
    const back = nextEvent(tier.tier, 'failback')
    await b1.restart()
    const recorder = await record(t, b1.url, filter)
    await back
    return recorder
  }
  return { b1, tier, terminal, dropped, failBack }
}

/** Publishes a control message through the tier and waits for it at Broker1: everything before it is through. */
async function control (t: Test, tier: TierUnderTest, recorder: Recorder, topic: string): Promise<void> {
  const client = await connectClient(t, tier.url, { clientId: 'store-policy-control' })
  await client.publishAsync(topic, 'control', { qos: 1 })
  await recorder.waitForTopic(topic)
}

t.test('maxMessages with drop-oldest: every publish acked, the oldest dropped and counted, Broker1 gets the newest in order', BOUNDED, async (t) => {
  const { tier, terminal, dropped, failBack } = await outage(t, { maxMessages: 10, overflow: 'drop-oldest' }, { policies: [{ topic: 'q/#', mode: 'queue' }] })
  const { acked } = await publishStream(terminal, { topic: 'q/a', count: 25, window: 5 })
  t.equal(acked.length, 25, 'every publish acknowledged')
  t.equal(dropped.overflow, 15, '`dropped` events with reason overflow count the 15 oldest')
  t.equal(tier.tier.state.pending.messages, 10, 'the store holds maxMessages')

  const atBroker1 = await failBack('q/#')
  await control(t, tier, atBroker1, 'q/control')
  const got = atBroker1.sequences('q/a')
  t.same(got, [15, 16, 17, 18, 19, 20, 21, 22, 23, 24], 'Broker1 received exactly the last 10, in order')
  t.equal(dropped.overflow, 15, 'nothing more dropped on the way')
})

t.test('maxMessages with reject-new: the publish that does not fit is not acknowledged, Broker1 gets the first 10', BOUNDED, async (t) => {
  const { tier, terminal, dropped, failBack } = await outage(t, { maxMessages: 10, overflow: 'reject-new' }, { policies: [{ topic: 'q/#', mode: 'queue' }] })
  const { acked } = await publishStream(terminal, { topic: 'q/a', count: 10, window: 1 })
  t.equal(acked.length, 10, 'the first 10 acknowledged')

  const closed = new Promise<void>((resolve) => terminal.once('close', () => resolve()))
  const outcome = new Promise<string>((resolve) => {
    terminal.publish('q/a', JSON.stringify({ seq: 10 }), { qos: 1 }, (error) => resolve(error == null ? 'acked' : 'failed'))
  })
  const first = await Promise.race([outcome, closed.then(() => 'closed')])
  t.equal(first, 'closed', 'the tier closes the terminal\'s connection instead of acknowledging (MQTT 3.1.1 has no negative PUBACK)')
  terminal.end(true) // mqtt.js fails what is still unacked once the client is ended
  t.equal(await outcome, 'failed', 'the 11th publish was never acknowledged')
  t.equal(tier.tier.state.pending.messages, 10, 'the store still holds the first 10')
  t.equal(dropped.overflow, 0, 'nothing stored was dropped')

  const atBroker1 = await failBack('q/#')
  await control(t, tier, atBroker1, 'q/control')
  t.same(atBroker1.sequences('q/a'), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'Broker1 received exactly the first 10, in order')
})

t.test('a TTL expires stored messages: dropped as expired, never replayed; later traffic flows', BOUNDED, async (t) => {
  const { tier, terminal, dropped, failBack } = await outage(t, {}, { policies: [{ topic: 'ttl/#', mode: 'queue', ttl: 1 }] })
  const { acked } = await publishStream(terminal, { topic: 'ttl/a', count: 5, window: 5 })
  t.equal(acked.length, 5, 'every publish acknowledged (stored)')

  const atBroker1 = await failBack('ttl/#')
  t.equal(dropped.expired, 5, '`dropped` events with reason expired count all 5')
  await control(t, tier, atBroker1, 'ttl/control')
  t.same(atBroker1.sequences('ttl/a'), [], 'Broker1 received none of the expired messages')
  t.equal(tier.tier.state.pending.messages, 0, 'nothing left pending')
})

t.test('a queue policy without a TTL keeps the same messages (control for the TTL case)', BOUNDED, async (t) => {
  const { tier, terminal, dropped, failBack } = await outage(t, {}, { policies: [{ topic: 'ttl/#', mode: 'queue' }] })
  const { acked } = await publishStream(terminal, { topic: 'ttl/a', count: 5, window: 5 })
  t.equal(acked.length, 5)
  const atBroker1 = await failBack('ttl/#')
  await control(t, tier, atBroker1, 'ttl/control')
  const got = atBroker1.sequences('ttl/a')
  t.same(got, [0, 1, 2, 3, 4], 'all 5 replayed')
  t.equal(orderViolations(got), 0)
  t.equal(dropped.expired, 0)
})

t.test('maxQos 0 on a rule: a QoS 1 publish is forwarded at QoS 0', BOUNDED, async (t) => {
  const [b1, b2] = [await startMosquitto(t), await startMosquitto(t)]
  const { url } = await startDurableTier(t, b1.url, b2.url, { policies: [{ topic: 'capped/#', mode: 'queue', maxQos: 0 }] })
  const atBroker1 = await record(t, b1.url, '#', { qos: 1 })
  const terminal = await connectClient(t, url, { clientId: 'max-qos' })
  await terminal.publishAsync('capped/a', 'capped', { qos: 1 })
  await terminal.publishAsync('free/a', 'not capped', { qos: 1 })
  const [capped, free] = [await atBroker1.waitForTopic('capped/a'), await atBroker1.waitForTopic('free/a')]
  t.equal(capped.qos, 0, 'the capped topic arrives at QoS 0 for a QoS 1 subscriber')
  t.equal(free.qos, 1, 'a topic without the rule keeps QoS 1')
})
