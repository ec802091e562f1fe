import t from 'tap'
import type { IPublishPacket } from 'mqtt-packet'
import { connectClient } from './support/client.js'
import { nextEvent, startDurableTier } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'
import { record } from './support/recorder.js'
import { duplicates, missing, parseSeq } from './support/sequence.js'
import { publishStream } from './support/stream.js'

t.test('MQTT 5 upstreams: a message a terminal got from Broker2 during the outage is not delivered again on replay', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const { url, tier } = await startDurableTier(t, b1.url, b2.url, {
    broker1: { url: b1.url, protocolVersion: 5 },
    broker2: { url: b2.url, protocolVersion: 5 },
    defaultPolicy: 'both'
  })
  const subscriber = await connectClient(t, url, { clientId: 'watcher' })
  await subscriber.subscribeAsync('d/#', { qos: 1 })
  const seen: number[] = []
  subscriber.on('message', (topic, payload) => { if (topic === 'd/a') seen.push(parseSeq(payload)!) })
  const publisher = await connectClient(t, url, { clientId: 'publisher' })

  const failover = nextEvent(tier, 'failover')
  await b1.kill()
  await failover
  const { acked } = await publishStream(publisher, { topic: 'd/a', count: 50, window: 10 })
  const failback = nextEvent(tier, 'failback')
  await b1.restart()
  const atBroker1 = await record(t, b1.url, 'd/#', { protocolVersion: 5 })
  await failback
  await atBroker1.waitFor(50)
  const control = new Promise<void>((resolve) => subscriber.on('message', (topic) => { if (topic === 'd/control') resolve() }))
  await publisher.publishAsync('d/control', 'c', { qos: 1 })
  await control

  t.same(missing(acked, atBroker1.sequences('d/a')), [], 'Broker1 got the outage on replay')
  t.same(missing(acked, seen), [], 'the terminal got every message')
  t.equal(duplicates(seen), 0, 'and none twice, although both brokers delivered it')
})

for (const protocolVersion of [4, 'auto'] as const) {
t.test(`upstreams (${protocolVersion === 4 ? 'MQTT 3.1.1' : 'MQTT 5'}) whose brokers bridge to each other over 3.1.1: the copy from the other broker is dropped, a repeated value is not`, async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  // A bridge of the test's own: every message on Broker1 is copied to Broker2.
  const bridgeIn = await connectClient(t, b1.url, { clientId: 'bridge-in' })
  const bridgeOut = await connectClient(t, b2.url, { clientId: 'bridge-out' })
  await bridgeIn.subscribeAsync('b/#', { qos: 1 })
  bridgeIn.on('message', (topic, payload) => bridgeOut.publish(topic, payload, { qos: 1 }))
  // Over MQTT 5 the bridge (3.1.1) drops the tier's message id: the copy is known by its content.
  const { url } = await startDurableTier(t, b1.url, b2.url, { broker1: { url: b1.url, protocolVersion }, broker2: { url: b2.url, protocolVersion } })
  const subscriber = await connectClient(t, url, { clientId: 'watcher' })
  await subscriber.subscribeAsync(['b/#', 'z/#'], { qos: 1 })
  const seen: string[] = []
  subscriber.on('message', (topic, payload) => seen.push(`${topic}=${payload.toString()}`))
  const bridged = await record(t, b2.url, 'b/#')

  const publisher = await connectClient(t, url, { clientId: 'sensor' })
  await publisher.publishAsync('b/temp', '21.5', { qos: 1 })
  await publisher.publishAsync('b/temp', '21.5', { qos: 1 }) // the same value again: a real second message
  await publisher.publishAsync('b/end', 'x', { qos: 1 })
  const control = new Promise<void>((resolve) => subscriber.on('message', (topic) => { if (topic === 'b/control') resolve() }))
  await publisher.publishAsync('b/control', 'c', { qos: 1 })
  await control
  await bridged.waitForTopic('b/control')
  // Broker2 delivers in order on one connection: once this marker arrives, every copy before it has.
  const marker = new Promise<void>((resolve) => subscriber.on('message', (topic) => { if (topic === 'z/marker') resolve() }))
  await bridgeOut.publishAsync('z/marker', 'm', { qos: 1 })
  await marker
  t.equal(bridged.messages.length, 4, 'Broker2 holds the bridged copies')
  // The bridged copy may overtake the original, so order is not asserted: counts are.
  t.same(seen.filter((line) => !line.startsWith('z/')).sort(), ['b/control=c', 'b/end=x', 'b/temp=21.5', 'b/temp=21.5'], 'each message once, the repeated value twice')
})
}

t.test('Deduplicator: arrivals from one broker are matched against the other broker however they interleave', async (t) => {
  const { Deduplicator } = await import('../src/upstream/dedup.js')
  const dedup = new Deduplicator({ windowMs: 60_000, maxEntries: 100 })
  const packet = (payload: string): IPublishPacket => ({ cmd: 'publish', topic: 't', payload: Buffer.from(payload), qos: 1, retain: false, dup: false })
  const verdicts = (arrivals: Array<[0 | 1, string]>): boolean[] => arrivals.map(([from, payload]) => dedup.isDuplicate(packet(payload), from))
  t.same(verdicts([[0, 'a'], [0, 'b'], [0, 'c']]), [false, false, false], 'one broker alone: nothing is a copy')
  t.same(verdicts([[1, 'b']]), [true], 'the other broker\'s copy of an earlier arrival')
  t.same(verdicts([[1, 'd'], [0, 'd']]), [false, true], 'a copy that the other broker delivered first')
  t.same(verdicts([[0, 'e'], [1, 'e'], [1, 'e']]), [false, true, false], 'a repeated value from one broker is not a copy; its other copy is')
})

t.test('DigestRing: remembers the newest `capacity` digests, oldest out first, across its growth', async (t) => {
  const { DigestRing, digest } = await import('../src/upstream/digest-ring.js')
  const of = (text: string): { key: number, check: number } => digest({ key: 0, check: 0 }, 2, text)
  const ring = new DigestRing(100)
  for (let i = 0; i < 110; i++) ring.add(of(`m${i}`), i, i % 2)
  const kept = Array.from({ length: 110 }, (_, i) => ring.find(of(`m${i}`)) !== -1)
  t.same(kept.indexOf(true), 10, 'the 10 oldest were evicted')
  t.ok(kept.slice(10).every(Boolean), 'the newest 100 are all found')
  const slot = ring.find(of('m50'))
  t.same([ring.atOf(slot), ring.fromOf(slot), ring.unmatchedOf(slot)], [50, 0, 1], 'with what was stored for them')
  t.not(digest({ key: 0, check: 0 }, 2, 'ab', Buffer.from('c')).check, digest({ key: 0, check: 0 }, 2, 'a', Buffer.from('bc')).check, 'topic and payload are kept apart')
  t.not(digest({ key: 0, check: 0 }, 1, 'x').check, digest({ key: 0, check: 0 }, 2, 'x').check, 'ids and contents are kept apart')
})
