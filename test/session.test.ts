import type { AuthenticateError } from 'aedes'
import t, { type Test } from 'tap'
import { startAedes, type AedesBroker } from './support/aedes-broker.js'
import { connackCode, connectClient } from './support/client.js'
import { holding, inbox, nextEvent, pingedAt, publishAt, stillHolds, subscribedAt, untilBroker } from './support/observe.js'
import { record, type Recorder } from './support/recorder.js'
import { nextMessage, startTier } from './support/tier.js'

const WILL = { topic: 'will/mortal', payload: Buffer.from('gone'), qos: 1 as const, retain: false }
const refusal = (returnCode: number): AuthenticateError => Object.assign(new Error('refused'), { returnCode }) as AuthenticateError
const gone = (broker: AedesBroker, clientId: string): Promise<void> =>
  untilBroker(broker, () => holding(broker, clientId) === 0, `${clientId} gone from ${broker.url}`)

t.test('PINGREQ from the terminal reaches both brokers', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url } = await startTier(t, b1.url, b2.url)
  const counts = [0, 0]
  b1.aedes.on('ping', (_packet, client) => { if (client.id === 'pinger') counts[0]!++ })
  b2.aedes.on('ping', (_packet, client) => { if (client.id === 'pinger') counts[1]!++ })
  const terminal = await connectClient(t, url, { clientId: 'pinger', keepalive: 600 })
  for (let i = 0; i < 2; i++) {
    const pinged = [pingedAt(b1.aedes, 'pinger'), pingedAt(b2.aedes, 'pinger')]
    terminal.sendPing()
    await Promise.all(pinged)
  }
  t.same(counts, [2, 2], 'one upstream PINGREQ per terminal PINGREQ at each broker')
})

t.test('a dropped terminal\'s will is published once, by Broker1 only', async (t) => {
  const { b1, b2, url, box, at } = await willScene(t)
  const mortal = await connectClient(t, url, { clientId: 'mortal', will: WILL })
  mortal.stream.destroy()
  t.equal((await box.waitForTopic('will/mortal')).payload, 'gone', 'the watcher gets the will')
  await Promise.all([gone(b1, 'mortal'), gone(b2, 'mortal')])
  await oneWillFromBroker1(t, [b1, b2], box, at, 'exactly one will reached the watcher')
})

t.test('with Broker1 down, a dropped terminal\'s will is published by Broker2', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  await b1.close()
  const { url } = await startTier(t, b1.url, b2.url)
  const atB2 = await record(t, b2.url, 'will/#')
  const mortal = await connectClient(t, url, { clientId: 'mortal', will: WILL })
  mortal.stream.destroy()
  t.equal((await atB2.waitForTopic('will/mortal')).payload.toString(), 'gone')
})

t.test('DISCONNECT: no will at either broker', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url } = await startTier(t, b1.url, b2.url)
  const at = [await record(t, b1.url, '#'), await record(t, b2.url, '#')]
  const polite = await connectClient(t, url, { clientId: 'polite', will: WILL })
  await polite.endAsync()
  await Promise.all([gone(b1, 'polite'), gone(b2, 'polite')])
  await publishAt(t, b1.url, 'ctrl/b1')
  await publishAt(t, b2.url, 'ctrl/b2')
  await Promise.all([at[0]!.waitForTopic('ctrl/b1'), at[1]!.waitForTopic('ctrl/b2')])
  t.same(at.map((r) => r.messages.filter((m) => m.topic === 'will/mortal').length), [0, 0])
})

t.test('takeover: the first terminal is closed and each broker keeps one session', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url, tier } = await startTier(t, b1.url, b2.url)
  const first = await connectClient(t, url, { clientId: 'twin' })
  const firstClosed = nextEvent(first, 'close')
  const second = await connectClient(t, url, { clientId: 'twin' })
  await firstClosed
  const single = (b: AedesBroker) => holding(b, 'twin') === 1
  await Promise.all([b1, b2].map((b) => untilBroker(b, () => single(b), `one twin at ${b.url}`)))
  // Nothing announces a leaked session reconnecting: watch for a few reconnect periods.
  await stillHolds(() => single(b1) && single(b2), 5 * tier.options.health.reconnectPeriodMs, 'one twin per broker')
  t.same([b1.connectsTotal(), b2.connectsTotal()], [4, 4], 'health link, the node\'s own session and two terminal sessions, no reconnect')
  await second.subscribeAsync('twin/echo', { qos: 1 })
  const echo = nextMessage(second)
  await second.publishAsync('twin/echo', 'still here', { qos: 1 })
  t.equal((await echo).payload.toString(), 'still here', 'the second terminal still works')
  t.same([holding(b1, 'twin'), holding(b2, 'twin')], [1, 1])
})

t.test('takeover of a terminal with a will: the old will is published once, by Broker1', async (t) => {
  const { b1, b2, url, box, at } = await willScene(t)
  const first = await connectClient(t, url, { clientId: 'mortal', will: WILL })
  const firstClosed = nextEvent(first, 'close')
  await connectClient(t, url, { clientId: 'mortal' })
  await firstClosed
  await Promise.all([b1, b2].map((b) => untilBroker(b, () => holding(b, 'mortal') === 1, `one mortal at ${b.url}`)))
  await oneWillFromBroker1(t, [b1, b2], box, at, 'the watcher got the old will once')
})

t.test('tier.close() ends every upstream session and the health links', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url, close } = await startTier(t, b1.url, b2.url)
  await connectClient(t, url, { clientId: 'a' })
  await connectClient(t, url, { clientId: 'b', clean: false })
  t.same([b1.connections(), b2.connections()], [4, 4], 'health link, the node\'s own session, two terminals')
  await close()
  await Promise.all([b1, b2].map((b) => untilBroker(b, () => b.connections() === 0, `no connection left at ${b.url}`)))
  t.same([b1.connections(), b2.connections()], [0, 0])
})

t.test('the user\'s own authenticate runs first', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url, tier } = await startTier(t, b1.url, b2.url, {
    aedes: {
      authenticate (_client, username, _password, done) {
        if (username === 'friend') done(null, true)
        else done(refusal(5), false)
      }
    }
  })
  // The broker counts a connection a little after the tier read its CONNACK.
  await Promise.all([b1, b2].map((b) => untilBroker(b, () => holding(b, tier.state.node.clientId) === 1, `the node's session at ${b.url}`)))
  const healthOnly = [b1.connectsTotal(), b2.connectsTotal()]
  t.same(healthOnly, [2, 2], 'the health link and the node\'s own session')
  t.equal(await connackCode(url, { username: 'stranger' }), 5, 'refused by the user\'s hook')
  t.same([b1.connectsTotal(), b2.connectsTotal()], healthOnly, 'a refused terminal never reached a broker')
  await connectClient(t, url, { clientId: 'friend-1', username: 'friend' })
  t.ok(b1.clientIds().includes('friend-1') && b2.clientIds().includes('friend-1'), 'an allowed one did')
})

t.test('a broker refusing the terminal: its return code, and no session left at the other', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t, { aedes: { authenticate: (_c, _u, _p, done) => done(refusal(4), false) } })
  const { url } = await startTier(t, b1.url, b2.url)
  t.equal(await connackCode(url, { clientId: 'rejected' }), 4)
  t.equal(b1.connectsTotal(), 3, 'the tier did open a session at Broker1 (health link, the node\'s own session, the terminal)')
  await gone(b1, 'rejected')
  t.equal(holding(b1, 'rejected'), 0, 'Broker1 keeps no session for it')
})

t.test('no broker reachable: CONNACK 3; one reachable: accepted', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  await b2.close()
  const degraded = await startTier(t, b1.url, b2.url)
  t.equal(await connackCode(degraded.url), 0, 'one broker down: accepted')
  await b1.close()
  const dark = await startTier(t, b1.url, b2.url)
  t.equal(await connackCode(dark.url), 3, 'both down: server unavailable')
})

t.test('a broker that never answers CONNECT holds the terminal at most connectTimeoutMs', async (t) => {
  const b1 = await startAedes(t)
  // The health link is answered (Broker2 is up); terminal sessions are not.
  const b2 = await startAedes(t, {
    aedes: {
      authenticate (client, _u, _p, done) {
        if (client.id.startsWith('dual-broker-health-')) done(null, true)
      }
    }
  })
  const health = { keepaliveSeconds: 1, connectTimeoutMs: 500, ackTimeoutMs: 2000, failbackDelayMs: 200, reconnectPeriodMs: 100 }
  const { url, tier } = await startTier(t, b1.url, b2.url, { plugin: { health } })
  t.equal(tier.state.brokers.broker2.state, 'up')
  const started = Date.now()
  const terminal = await connectClient(t, url, { clientId: 'patient' })
  const waited = Date.now() - started
  t.ok(terminal.connected, 'accepted (degraded)')
  t.ok(waited >= 400 && waited < 1500, `waited about connectTimeoutMs (${waited} ms)`)
  t.ok(b1.clientIds().includes('patient'), 'online at Broker1')
})

t.test('a broker that was slow at CONNECT gets the terminal\'s session once it answers', async (t) => {
  const b1 = await startAedes(t)
  let first = true
  const b2 = await startAedes(t, {
    aedes: {
      authenticate (client, _u, _p, done) {
        if (client.id === 'patient' && first) first = false // the first attempt is never answered
        else done(null, true)
      }
    }
  })
  const health = { keepaliveSeconds: 1, connectTimeoutMs: 500, ackTimeoutMs: 2000, failbackDelayMs: 200, reconnectPeriodMs: 100 }
  const { url } = await startTier(t, b1.url, b2.url, { plugin: { health } })
  const terminal = await connectClient(t, url, { clientId: 'patient' })
  t.equal(first, false, 'Broker2 did hold the first CONNECT')
  const subscribed = subscribedAt(b2.aedes, 'patient', 'late/#')
  await terminal.subscribeAsync('late/#', { qos: 1 })
  await Promise.all([untilBroker(b2, () => holding(b2, 'patient') === 1, 'session opened at Broker2 after the slow attempt'), subscribed])
  t.equal(holding(b2, 'patient'), 1, 'Broker2 has the session and the subscription')
})

/** Two Aedes brokers and the tier; a terminal watching for wills, and a recorder at each broker. */
async function willScene (t: Test): Promise<{ b1: AedesBroker, b2: AedesBroker, url: string, box: ReturnType<typeof inbox>, at: Recorder[] }> {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url } = await startTier(t, b1.url, b2.url)
  const watcher = await connectClient(t, url, { clientId: 'watcher' })
  const box = inbox(watcher)
  await watcher.subscribeAsync({ 'will/#': { qos: 1 }, 'ctrl/#': { qos: 1 } })
  const at = [await record(t, b1.url, '#'), await record(t, b2.url, '#')]
  return { b1, b2, url, box, at }
}

/**
 * Control messages published at both brokers after the drop: once they arrived, anything either
 * broker published for the drop has too. Then exactly one will, and Broker1 published it.
 */
async function oneWillFromBroker1 (t: Test, brokers: AedesBroker[], box: ReturnType<typeof inbox>, at: Recorder[], what: string): Promise<void> {
  await publishAt(t, brokers[0]!.url, 'ctrl/b1')
  await publishAt(t, brokers[1]!.url, 'ctrl/b2')
  await Promise.all([box.waitForTopic('ctrl/b1'), box.waitForTopic('ctrl/b2'), at[0]!.waitForTopic('ctrl/b1'), at[1]!.waitForTopic('ctrl/b2')])
  t.equal(box.count('will/#'), 1, what)
  t.same(at.map((r) => r.messages.filter((m) => m.topic === 'will/mortal').length), [1, 0], 'published by Broker1, not by Broker2')
}
