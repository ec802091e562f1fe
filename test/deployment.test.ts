import { Aedes } from 'aedes'
import t from 'tap'
import { dualBroker } from '../src/index.js'
import { startAedes } from './support/aedes-broker.js'
import { BROKER_KINDS, startBroker } from './support/broker-pair.js'
import { connectClient } from './support/client.js'
import { deploymentScript, plainSite, tierSite } from './support/deployment-script.js'
import { nextEvent as nextTierEvent, startDurableTier } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'
import { inbox, nextEvent } from './support/observe.js'
import { record } from './support/recorder.js'
import { startTier } from './support/tier.js'

for (const kind of BROKER_KINDS) {
  t.test(`the deployment's own code observes through the tier what it observes on plain Aedes (${kind} brokers)`, async (t) => {
    const plain = await deploymentScript(t, await plainSite(t))
    const [broker1, broker2] = [await startBroker(t, kind), await startBroker(t, kind)]
    const tiered = await deploymentScript(t, await tierSite(t, broker1.url, broker2.url))
    t.same(tiered, plain)
    // Not an empty agreement: every row saw what the script sent.
    t.equal(plain.publishEvents.length, 14, 'publish events: 5 telemetry, 8 commands, 1 after unsubscribe')
    t.same(plain.publishCallbacks, Array(8).fill('ok'), 'every aedes.publish called back without error')
    t.equal(plain.subscribedAfter.length, 10, 'the server-side subscription: 5 of the device, 5 straight at Broker1')
    t.ok(plain.events.includes('keepaliveTimeout dev3') && plain.events.includes('clientError dev3'), 'a silent device\'s keepaliveTimeout and clientError')
    t.ok(plain.events.includes('ack dev2 publish cmd/dev2') && plain.events.includes('connackSent dev1 code 0'), 'acks and CONNACKs')
  })
}

/** The deployment's own publish, as its code makes it: resolves with the error its callback got, if any. */
function appPublish (aedes: Aedes, topic: string, payload: string, qos: 0 | 1 | 2, retain = false): Promise<(Error & { code?: string }) | undefined> {
  return new Promise((resolve) => {
    aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain, dup: false }, (error) => resolve(error ?? undefined))
  })
}

t.test('during a Broker1 outage aedes.publish calls back once the command is stored; it reaches Broker1 and the device after failback', { timeout: 60_000 }, async (t) => {
  const [b1, b2] = [await startMosquitto(t), await startMosquitto(t)]
  const { aedes, tier, url } = await startDurableTier(t, b1.url, b2.url, {
    policies: [{ topic: 'cmd/#', mode: 'queue' }, { topic: 'noise/#', mode: 'drop' }]
  })
  const observed: string[] = []
  aedes.on('publish', (packet, client) => { if (!packet.topic.startsWith('$SYS')) observed.push(`${client?.id ?? 'app'} ${packet.topic}`) })
  const device = await connectClient(t, url, { clientId: 'dev1', clean: false })
  const got = inbox(device)
  await device.subscribeAsync('cmd/dev1', { qos: 1 })
  const failover = nextTierEvent(tier, 'failover')
  await b1.kill('SIGKILL')
  await failover

  const errors: Array<Error | undefined> = []
  for (let i = 1; i <= 5; i++) errors.push(await appPublish(aedes, 'cmd/dev1', `c${i}`, 1))
  t.same(errors, [undefined, undefined, undefined, undefined, undefined], 'each command called back without error')
  t.equal(tier.state.pending.messages, 5, 'because each one is in the pending store')
  const dropped = await appPublish(aedes, 'noise/x', 'dropped by its policy', 1)
  t.equal(dropped?.code, 'DUALBROKER_ERR_DROPPED', 'a command its policy drops calls back with an error')
  await device.publishAsync('noise/y', 'dropped by its policy too', { qos: 1 })
  t.equal(tier.state.counters.dropped.policy, 2, 'both counted')
  t.same(observed, ['app cmd/dev1', 'app cmd/dev1', 'app cmd/dev1', 'app cmd/dev1', 'app cmd/dev1'], 'the publish event shows the stored commands, not what the policy dropped')

  await b1.restart()
  const atBroker1 = await record(t, b1.url, 'cmd/#')
  await nextTierEvent(tier, 'failback')
  await atBroker1.waitFor(5, 10_000)
  t.same(atBroker1.messages.map((m) => String(m.payload)), ['c1', 'c2', 'c3', 'c4', 'c5'], 'Broker1 got every stored command, in order')
  if (!got.messages.some((m) => m.payload === 'c5')) await nextEvent(device, 'message', (_topic: string, payload: Buffer) => String(payload) === 'c5', 10_000)
  t.same(got.messages.map((m) => m.payload), ['c1', 'c2', 'c3', 'c4', 'c5'], 'and so did the device, through Broker1')
})

t.test('aedes.publish with no broker to take it, or while the tier closes, calls back with an error', async (t) => {
  const [b1, b2] = [await startAedes(t), await startAedes(t)]
  const { aedes, tier } = await startTier(t, b1.url, b2.url)
  t.equal((await appPublish(aedes, 'cmd/x/+', 'wildcard', 1))?.code, 'DUALBROKER_ERR_INVALID_TOPIC', 'a wildcard topic')
  const down = Promise.all([nextTierEvent(tier, 'broker-down', (e) => e.broker === 'broker1'), nextTierEvent(tier, 'broker-down', (e) => e.broker === 'broker2')])
  await Promise.all([b1.close(), b2.close()])
  await down
  t.equal((await appPublish(aedes, 'cmd/x', 'nowhere to go', 0))?.code, 'DUALBROKER_ERR_DROPPED', 'QoS 0 with no broker up: it is never held')
  const waiting = appPublish(aedes, 'cmd/x', 'waits for a broker', 1)
  await tier.close()
  t.equal((await waiting)?.code, 'DUALBROKER_ERR_CLOSING', 'QoS 1 waiting for a broker when the tier closes')
})

t.test('tier.close() gives the deployment Aedes\' own routing back', async (t) => {
  const [b1, b2] = [await startAedes(t), await startAedes(t)]
  const aedes = await Aedes.createBroker()
  const seen: string[] = []
  await new Promise<void>((resolve) => aedes.subscribe('cmd/#', (packet, done) => { seen.push(`${packet.topic} ${String(packet.payload)}`); done() }, resolve))
  const tier = await dualBroker(aedes, { broker1: { url: b1.url }, broker2: { url: b2.url } })
  const atBroker1 = await record(t, b1.url, 'cmd/#')
  t.equal(await appPublish(aedes, 'cmd/a', 'through the brokers', 1), undefined)
  await atBroker1.waitFor(1)
  await tier.close()
  t.equal(await appPublish(aedes, 'cmd/b', 'local again', 1), undefined)
  t.same(seen, ['cmd/a through the brokers', 'cmd/b local again'], 'the subscription made before the plugin got both, each once')
  t.equal(atBroker1.messages.length, 1, 'Broker1 got only what was published while the tier was attached')
  await new Promise<void>((resolve) => aedes.close(() => resolve()))
})

t.test('aedes.subscribe with a filter no broker would take calls back with an error and subscribes nothing', async (t) => {
  const [b1, b2] = [await startAedes(t), await startAedes(t)]
  const { aedes, tier } = await startTier(t, b1.url, b2.url)
  const seen: string[] = []
  let arrived = (): void => {}
  const first = new Promise<void>((resolve) => { arrived = resolve })
  const handler = (packet: { topic: string }, done: () => void): void => { seen.push(packet.topic); arrived(); done() }
  const error = await new Promise<(Error & { code?: string }) | undefined>((resolve) => aedes.subscribe('a/#/b', handler, ((e?: Error) => resolve(e)) as () => void))
  t.equal(error?.code, 'DUALBROKER_ERR_INVALID_TOPIC')
  t.same(tier.state.node.online, { broker1: true, broker2: true }, 'the node\'s session stays up')
  t.equal(await appPublish(aedes, 'a/x/b', 'not for it', 1), undefined)
  await new Promise<void>((resolve) => aedes.subscribe('a/+/b', handler, () => resolve()))
  t.equal(await appPublish(aedes, 'a/y/b', 'for it', 1), undefined)
  await first
  t.same(seen, ['a/y/b'], 'only the valid subscription receives')
})

t.test('aedes.subscribe across failover and failback: clients straight at either broker and the node\'s terminals, each once', { timeout: 60_000 }, async (t) => {
  const [b1, b2] = [await startMosquitto(t), await startMosquitto(t)]
  // Default policy `both`: Broker2 live and the store. MQTT 5 upstream: copies are known by the tier's
  // message id however far apart (README "Duplicates"; over 3.1.1 a replayed copy comes again, as to a terminal).
  const { aedes, tier, url } = await startDurableTier(t, b1.url, b2.url, {
    broker1: { url: b1.url, protocolVersion: 5 },
    broker2: { url: b2.url, protocolVersion: 5 }
  })
  const seen: string[] = []
  const waiting = new Map<string, () => void>()
  await new Promise<void>((resolve) => aedes.subscribe('t/#', (packet, done) => {
    const payload = String(packet.payload)
    seen.push(payload)
    waiting.get(payload)?.()
    done()
  }, () => resolve()))
  const arrival = (payload: string): Promise<void> => seen.includes(payload) ? Promise.resolve() : new Promise((resolve) => waiting.set(payload, resolve))
  const published: string[] = []
  aedes.on('publish', (packet) => { if (packet.topic.startsWith('t/')) published.push(String(packet.payload)) })

  const device = await connectClient(t, url, { clientId: 'dev1' })
  const atBroker2 = await connectClient(t, b2.url, { clientId: 'straight-at-broker2' })
  await device.publishAsync('t/a', 'through the tier, normal', { qos: 1 })
  await arrival('through the tier, normal')
  await atBroker2.publishAsync('t/b', 'straight at Broker2', { qos: 1 })
  await arrival('straight at Broker2')

  const failover = nextTierEvent(tier, 'failover')
  await b1.kill('SIGKILL')
  await failover
  await device.publishAsync('t/a', 'through the tier, failover', { qos: 1 })
  await arrival('through the tier, failover')
  const failback = nextTierEvent(tier, 'failback')
  await b1.restart()
  await failback // the store replayed its copy of the failover message to Broker1
  await device.publishAsync('t/a', 'through the tier, after failback', { qos: 1 })
  await arrival('through the tier, after failback')

  t.same(seen, ['through the tier, normal', 'straight at Broker2', 'through the tier, failover', 'through the tier, after failback'],
    'each message once: the replayed copy of the failover message is recognised')
  t.same(published, ['through the tier, normal', 'through the tier, failover', 'through the tier, after failback'], 'the publish event: this node\'s terminal only')
})
