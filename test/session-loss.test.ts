/**
 * A broker that comes back without a persistent terminal's session (mosquitto as installed:
 * persistence false; an Aedes broker restarted in memory). Each case counts sequence numbers
 * end to end and, where it applies, is run straight at one broker too: the terminal through the
 * tier must see what it sees there (session present, and every message after it subscribed again).
 */
import t, { type Test } from 'tap'
import { connect, type MqttClient } from 'mqtt'
import type { DualBroker } from '../src/index.js'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { nextEvent } from './support/durable.js'
import { startMosquitto, type MosquittoBroker } from './support/mosquitto.js'
import { nextEvent as nextClientEvent, within } from './support/observe.js'
import { duplicates, missing, orderViolations, parseSeq } from './support/sequence.js'
import { startTier } from './support/tier.js'

const HEALTH = { keepaliveSeconds: 1, connectTimeoutMs: 2000, ackTimeoutMs: 2000, failbackDelayMs: 200, reconnectPeriodMs: 100, sessionRestoreTimeoutMs: 5000, resendWindowMs: 0 }
const FILTER = 'loss/#'
const WAIT_MS = 15_000

/**
 * A device as an application writes one: persistent, reconnecting on its own, and subscribing
 * again whenever its CONNACK says session present 0 (at once when `subscribe` is true, too).
 */
interface Device {
  readonly client: MqttClient
  /** Session present of every CONNACK, in order. */
  readonly connacks: boolean[]
  readonly got: number[]
  /** Resolves once every number from..to arrived (or rejects after WAIT_MS). */
  all: (from: number, to: number) => Promise<void>
  /** Resolves at the next SUBACK of its own SUBSCRIBE. */
  subscribed: () => Promise<void>
}

function device (t: Test, url: string, clientId: string, qos: 1 | 2, subscribe = true): Promise<Device> {
  const client = connect(url, { clientId, clean: false, reconnectPeriod: 100, resubscribe: false })
  client.on('error', () => {})
  t.teardown(() => client.endAsync(true))
  const connacks: boolean[] = []
  const got: number[] = []
  const waiters = new Set<() => void>()
  const suback = new Set<() => void>()
  const subscribeNow = (): void => {
    client.subscribe(FILTER, { qos }, () => { for (const done of [...suback]) done() })
  }
  client.on('message', (_topic, payload) => {
    got.push(parseSeq(payload)!)
    for (const check of [...waiters]) check()
  })
  return new Promise((resolve) => {
    client.on('connect', (connack) => {
      connacks.push(connack.sessionPresent)
      if (!connack.sessionPresent && (subscribe || connacks.length > 1)) subscribeNow()
      if (connacks.length > 1) return
      resolve({
        client,
        connacks,
        got,
        all: (from, to) => within(new Promise<void>((resolve) => {
          const check = (): void => {
            if (missing({ from, to }, got).length > 0) return
            waiters.delete(check)
            resolve()
          }
          waiters.add(check)
          check()
        }), WAIT_MS, `messages ${from}..${to} at ${clientId}`).catch((error: Error) => {
          throw new Error(`${error.message} (got ${got.join(',')})`)
        }),
        subscribed: () => within(new Promise<void>((resolve) => {
          const done = (): void => { suback.delete(done); resolve() }
          suback.add(done)
        }), WAIT_MS, `SUBACK at ${clientId}`)
      })
    })
  })
}

/** Publishes from..to on `loss/seq`, each acked before the next (through the tier: safe at a broker). */
async function publish (publisher: MqttClient, from: number, to: number, qos: 1 | 2): Promise<void> {
  for (let n = from; n <= to; n++) await publisher.publishAsync('loss/seq', String(n), { qos })
}

function checkDelivery (t: Test, got: number[], to: number): void {
  t.same(missing({ from: 1, to }, got), [], `all ${to} delivered`)
  t.equal(duplicates(got), 0, `none twice (${got.join(',')})`)
  t.equal(orderViolations(got), 0, 'in the publisher\'s order')
}

async function failedBack (tier: DualBroker): Promise<void> {
  if (tier.state.mode !== 'normal') await within(nextEvent(tier, 'failback'), WAIT_MS, 'failback')
}

/**
 * Case (a), straight at one mosquitto: the device subscribed in an earlier connection, messages
 * queue while it is away, it reconnects (session present), then the broker dies and comes back
 * empty: the crash drops the device, it reads session present 0 and subscribes again.
 */
t.test('case (a) straight at mosquitto: the comparison', async (t) => {
  const broker = await startMosquitto(t)
  const publisher = await connectClient(t, broker.url, { clientId: 'pub-direct', reconnectPeriod: 100 })
  const first = await device(t, broker.url, 'dev-direct', 1)
  await first.subscribed()
  await first.client.endAsync()
  await publish(publisher, 1, 10, 1) // queued for the absent device
  const dev = await device(t, broker.url, 'dev-direct', 1, false)
  await dev.all(1, 10)
  await publish(publisher, 11, 20, 1)
  await dev.all(11, 20)
  await broker.kill('SIGKILL')
  const resubscribed = dev.subscribed()
  await broker.restart()
  await resubscribed
  if (!publisher.connected) await nextClientEvent(publisher, 'connect', () => true, WAIT_MS)
  await publish(publisher, 21, 30, 1)
  await dev.all(21, 30)
  t.same([...first.connacks, ...dev.connacks], [false, true, false], 'session present: new, kept, lost')
  checkDelivery(t, dev.got, 30)
})

/** Case (a) through the tier: the same device, Broker1 dies and returns empty while Broker2 keeps the session. */
async function caseA (t: Test, b1: { url: string, down: () => Promise<void>, up: () => Promise<void> }, b2Url: string, qos: 1 | 2): Promise<void> {
  const { url, tier } = await startTier(t, b1.url, b2Url, { plugin: { health: HEALTH } })
  const publisher = await connectClient(t, url, { clientId: 'pub-a' })
  const first = await device(t, url, 'dev-a', qos)
  await first.subscribed()
  await first.client.endAsync()
  const failover = nextEvent(tier, 'failover')
  await b1.down()
  await within(failover, WAIT_MS, 'failover')
  await publish(publisher, 1, 10, qos) // to Broker2, queued there for the absent device
  const dev = await device(t, url, 'dev-a', qos, false)
  t.equal(dev.connacks[0], true, 'reconnecting while Broker1 is down: session present, from Broker2')
  await dev.all(1, 10)
  await publish(publisher, 11, 20, qos)
  await dev.all(11, 20)
  const resubscribed = dev.subscribed()
  await b1.up() // Broker1 returns without the session: the device is asked to reconnect
  await resubscribed
  await failedBack(tier)
  await publish(publisher, 21, 30, qos) // to Broker1
  await dev.all(21, 30)
  t.same([...first.connacks, ...dev.connacks], [false, true, false], 'session present as straight at the broker: new, kept, lost')
  checkDelivery(t, dev.got, 30)
  t.same(tier.state.counters.sessions.reconnectsAsked.broker1, { 'unknown-subscriptions': 1, 'restore-refused': 0 }, 'counted: asked to reconnect')
  t.same(tier.state.sessionsLost, { broker1: 0, broker2: 0 }, 'whole again')
}

t.test('case (a) through the tier, mosquitto, QoS 2: every message after failback delivered', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  await caseA(t, { url: b1.url, down: () => b1.kill('SIGKILL'), up: () => b1.restart() }, b2.url, 2)
})

// QoS 1 here: an Aedes 1.2 *broker* loses the first queued QoS 2 message of an absent persistent session, straight as well.
t.test('case (a) through the tier, Aedes brokers, QoS 1', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  await caseA(t, { url: b1.url, down: () => b1.close(), up: () => b1.restart() }, b2.url, 1)
})

/** SIGKILL (persistence false: nothing survives) and start again on the same port. */
async function restartEmpty (broker: MosquittoBroker): Promise<void> {
  await broker.kill('SIGKILL')
  await broker.restart()
}

/**
 * Case (b): the device is connected, Broker2 restarts empty, later Broker1 dies: every
 * message must reach it through Broker2. `earlier`: its subscription was made in an earlier
 * connection (the tier cannot know it: the device is asked to reconnect); otherwise in this one
 * (the tier restores it, the device sees nothing).
 */
async function caseB (t: Test, earlier: boolean): Promise<void> {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const { url, tier } = await startTier(t, b1.url, b2.url, { plugin: { health: HEALTH } })
  const publisher = await connectClient(t, url, { clientId: 'pub-b', reconnectPeriod: 100 })
  let dev = await device(t, url, 'dev-b', 1)
  await dev.subscribed()
  if (earlier) {
    await dev.client.endAsync()
    dev = await device(t, url, 'dev-b', 1, false)
  }
  await publish(publisher, 1, 10, 1)
  await dev.all(1, 10)

  const lost = nextEvent(tier, 'sessions-lost', (e) => e.broker === 'broker2')
  const whole = nextEvent(tier, 'sessions-whole', (e) => e.broker === 'broker2')
  const resubscribed = earlier ? dev.subscribed() : undefined
  await restartEmpty(b2)
  await within(lost, WAIT_MS, 'Broker2 reported as having lost a session')
  await within(whole, WAIT_MS, 'Broker2 whole again')
  await resubscribed

  const failover = nextEvent(tier, 'failover')
  await b1.kill('SIGKILL')
  await within(failover, WAIT_MS, 'failover')
  await publish(publisher, 11, 20, 1) // to Broker2 only
  await dev.all(11, 20)
  checkDelivery(t, dev.got, 20)
  const { sessions } = tier.state.counters
  if (earlier) {
    t.same(dev.connacks, [true, false], 'asked to reconnect: session present 0, and it subscribed again')
    t.same(sessions.reconnectsAsked.broker2, { 'unknown-subscriptions': 1, 'restore-refused': 0 })
  } else {
    t.same(dev.connacks, [false], 'restored by the tier: the device never noticed')
    t.equal(sessions.restored.broker2, 1, 'counted: restored at Broker2')
  }
}

t.test('case (b), subscribed in an earlier connection: Broker2 restarts empty, later Broker1 dies', (t) => caseB(t, true))
t.test('case (b), subscribed in this connection: restored without a reconnect', (t) => caseB(t, false))

t.test('Broker1 returns empty, subscriptions made in this connection: restored before failback', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const { url, tier } = await startTier(t, b1.url, b2.url, { plugin: { health: HEALTH } })
  const publisher = await connectClient(t, url, { clientId: 'pub-c' })
  const dev = await device(t, url, 'dev-c', 2)
  await dev.subscribed()
  const failover = nextEvent(tier, 'failover')
  await b1.kill('SIGKILL')
  await within(failover, WAIT_MS, 'failover')
  await publish(publisher, 1, 10, 2)
  await dev.all(1, 10)
  await b1.restart()
  await failedBack(tier)
  await publish(publisher, 11, 20, 2)
  await dev.all(11, 20)
  checkDelivery(t, dev.got, 20)
  t.same(dev.connacks, [false], 'never disconnected')
  t.equal(tier.state.counters.sessions.restored.broker1, 1, 'restored at Broker1')
})

t.test('two tier nodes: subscribed through node A, back through node B, Broker1 returns empty', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const nodeA = await startTier(t, b1.url, b2.url, { plugin: { health: HEALTH } })
  const nodeB = await startTier(t, b1.url, b2.url, { plugin: { health: HEALTH } })
  const publisher = await connectClient(t, nodeA.url, { clientId: 'pub-n', reconnectPeriod: 100 })
  const first = await device(t, nodeA.url, 'dev-n', 1)
  await first.subscribed()
  await first.client.endAsync()
  const dev = await device(t, nodeB.url, 'dev-n', 1, false)
  await publish(publisher, 1, 10, 1)
  await dev.all(1, 10)
  const failovers = [nextEvent(nodeA.tier, 'failover'), nextEvent(nodeB.tier, 'failover')]
  const resubscribed = dev.subscribed()
  await restartEmpty(b1)
  await within(Promise.all(failovers), WAIT_MS, 'failover at both nodes')
  await resubscribed
  await failedBack(nodeA.tier)
  await failedBack(nodeB.tier)
  await publish(publisher, 11, 20, 1)
  await dev.all(11, 20)
  checkDelivery(t, dev.got, 20)
  t.same([...first.connacks, ...dev.connacks], [false, true, false], 'session present: new (node A), kept (node B), lost')
  t.equal(nodeB.tier.state.counters.sessions.reconnectsAsked.broker1['unknown-subscriptions'], 1, 'node B asked it to reconnect')
})
