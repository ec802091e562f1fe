import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { DualBroker } from '../src/index.js'
import { connectClient } from './support/client.js'
import { nextEvent, startDurableTier } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'
import { record, type Recorder } from './support/recorder.js'
import { missing, orderViolations } from './support/sequence.js'
import { publishStream } from './support/stream.js'
import { coreOf } from '../src/plugin.js'

/** Waits until Broker1 takes traffic live again, then proves it with a control message. */
async function settled (tier: DualBroker, publish: () => Promise<unknown>, atBroker1: Recorder): Promise<void> {
  if (tier.state.mode !== 'normal') await nextEvent(tier, 'failback')
  await publish()
  await atBroker1.waitForTopic('control', 20_000)
}

// The upstream at the product's default (auto: MQTT 5 at mosquitto) and in 3.1.1.
for (const protocolVersion of ['auto', 4] as const) {
  t.test(`Broker1 SIGKILL and restart under a 500 msg/s QoS 1 stream, policy both, upstream ${protocolVersion === 4 ? '3.1.1' : 'auto (MQTT 5)'}`, async (t) => {
    const b1 = await startMosquitto(t)
    const b2 = await startMosquitto(t)
    const before = await record(t, b1.url, '#')
    const atBroker2 = await record(t, b2.url, 'stream/#')
    const { url, tier } = await startDurableTier(t, b1.url, b2.url, { broker1: { url: b1.url, protocolVersion }, broker2: { url: b2.url, protocolVersion } })
    t.equal(tier.state.brokers.broker1.protocolVersion, protocolVersion === 4 ? 4 : 5)
    const terminal = await connectClient(t, url, { clientId: 'streamer' })
    const count = 3000
    let after: Promise<Recorder> | undefined
    let phase = 0
    let failoverAt = -1
    tier.once('failover', () => { failoverAt = phase })
    const { acked } = await publishStream(terminal, {
      topic: 'stream/a',
      count,
      window: 100,
      rate: 500,
      onAck: (n) => {
        if (phase === 0 && n >= count / 4) {
          phase = 1
          void b1.kill('SIGKILL')
        } else if (phase === 1 && n >= count / 2) {
          phase = 2
          after = b1.restart().then(() => record(t, b1.url, '#'))
        }
      }
    })
    t.equal(acked.length, count, 'every publish acknowledged')
    t.equal(failoverAt, 1, 'failover when Broker1 was killed')
    const atBroker1 = await after!
    await settled(tier, () => terminal.publishAsync('control', 'c', { qos: 1 }), atBroker1)

    const got = [...before.sequences('stream/'), ...atBroker1.sequences('stream/')]
    t.same(missing(acked, got), [], '0 acked messages missing at Broker1 after replay')
    t.equal(orderViolations(got), 0, '0 order violations at Broker1')
    const outage = atBroker2.sequences('stream/')
    t.ok(outage.length > 0, `Broker2 got the outage window (${outage.length} messages)`)
    // What Broker1 acked in its last resendWindowMs (500 ms, 250 messages here) is sent again: at least once.
    t.ok(outage.every((seq) => seq >= count / 4 - 400), 'and only the outage window')
    t.equal(tier.state.pending.messages, 0, 'the store drained')
  })
}

t.test('Broker1 frozen with SIGSTOP: detected within the health bound, nothing lost', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const atBroker1 = await record(t, b1.url, '#', { keepalive: 600 })
  const { url, tier } = await startDurableTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'streamer' })
  let frozenAt = 0
  let detectedAfter = -1
  tier.once('broker-down', () => { detectedAfter = Date.now() - frozenAt })
  const thawed = nextEvent(tier, 'failback')
  const { acked } = await publishStream(terminal, {
    topic: 'stream/a',
    count: 1500,
    window: 50,
    rate: 300,
    onAck: (n) => {
      if (n === 300) {
        frozenAt = Date.now()
        b1.stop()
      }
      if (n === 1000) b1.cont()
    }
  })
  await thawed
  await settled(tier, () => terminal.publishAsync('control', 'c', { qos: 1 }), atBroker1)
  // keepalive 1 s: the health link pings after 0.5 s of silence and gives up 1 s after an unanswered ping.
  t.ok(detectedAfter > 0 && detectedAfter <= 2500, `frozen Broker1 detected after ${detectedAfter} ms (bound 2500 ms)`)
  const got = atBroker1.sequences('stream/')
  t.same(missing(acked, got), [], '0 acked messages lost')
  t.equal(orderViolations(got), 0, '0 order violations at Broker1')
})

t.test('Broker1 flapping every second for 20 s: nothing lost, nothing left behind', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const recorders = [await record(t, b1.url, '#')]
  const { url, tier } = await startDurableTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'streamer' })
  const stream = publishStream(terminal, { topic: 'stream/a', count: 2000, window: 20, rate: 100 })
  let failovers = 0
  let downs = 0
  tier.on('failover', () => failovers++)
  tier.on('broker-down', ({ broker }) => { if (broker === 'broker1') downs++ })
  const until = Date.now() + 20_000
  while (Date.now() < until) {
    await b1.kill('SIGKILL')
    await sleep(500)
    await b1.restart()
    recorders.push(await record(t, b1.url, '#'))
    await sleep(500)
  }
  const { acked } = await stream
  await settled(tier, () => terminal.publishAsync('control', 'c', { qos: 1 }), recorders.at(-1)!)
  t.ok(downs >= 10, `Broker1 went down ${downs} times`)
  t.equal(failovers, 1, 'one failover: Broker1 was never stable for the failback delay, so traffic never flapped')
  const got = recorders.flatMap((r) => r.sequences('stream/'))
  t.same(missing(acked, got), [], '0 acked messages lost at Broker1')
  t.equal(orderViolations(got), 0, '0 order violations at Broker1')
  t.equal(tier.state.pending.messages, 0, 'the store drained')
  t.same([...coreOf(tier).sessions.values()].map((s) => s.outbox.size), [0], 'no publish left in flight')
})

t.test('Broker2 frozen while Broker1 is down: publishes are stored, nothing is lost, Broker1 gets all of it back', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const { url, tier } = await startDurableTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'streamer' })
  const failover = nextEvent(tier, 'failover')
  await b1.kill('SIGKILL')
  await failover
  const standbyFrozen = nextEvent(tier, 'broker-down', ({ broker }) => broker === 'broker2')
  const { acked } = await publishStream(terminal, {
    topic: 'stream/a',
    count: 1500,
    window: 50,
    rate: 300,
    onAck: (n) => {
      if (n === 300) b2.stop()
      if (n === 1200) b2.cont()
    }
  })
  await standbyFrozen
  t.equal(acked.length, 1500, 'the terminal was never stalled: every publish acknowledged (stored while both were out)')
  const failback = nextEvent(tier, 'failback')
  await b1.restart()
  const atBroker1 = await record(t, b1.url, '#')
  await failback
  await settled(tier, () => terminal.publishAsync('control', 'c', { qos: 1 }), atBroker1)
  const got = atBroker1.sequences('stream/')
  t.same(missing(acked, got), [], '0 acked messages lost at Broker1')
  t.equal(orderViolations(got), 0, '0 order violations at Broker1')
})
