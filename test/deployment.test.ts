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
  t.equal(tier.state.counters.dropped.policy, 1, 'and is counted')

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
