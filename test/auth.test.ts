import t from 'tap'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { startMosquitto } from './support/mosquitto.js'
import { record } from './support/recorder.js'
import { startTier } from './support/tier.js'

t.test('a terminal gains nothing beyond what its own credentials grant at each broker', async (t) => {
  const users = { device: 'device-pass', admin: 'admin-pass' }
  const acl = 'user device\ntopic readwrite device/#\n\nuser admin\ntopic readwrite #\n'
  const b1 = await startMosquitto(t, { users, acl })
  const b2 = await startMosquitto(t, { users, acl })
  const watcher = await record(t, b1.url, '#', { username: 'admin', password: 'admin-pass' })
  const { url, tier } = await startTier(t, b1.url, b2.url)
  const failovers: unknown[] = []
  tier.on('failover', (event) => failovers.push(event))
  const device = await connectClient(t, url, { clientId: 'device-1', username: 'device', password: 'device-pass' })
  // mosquitto acks an unauthorised QoS 1 publish under MQTT 3.1.1 and drops it; over MQTT 5 it
  // answers 0x87, and the tier acks the terminal as a 3.1.1 broker would, at once.
  await device.publishAsync('admin/reboot', 'x', { qos: 1 })
  t.equal(tier.state.counters.dropped.refused, 1, 'counted as refused by the broker')
  await device.publishAsync('device/1/temp', '21', { qos: 1 })
  await watcher.waitForTopic('device/1/temp')
  t.same(watcher.messages.map((m) => m.topic), ['device/1/temp'], 'the broker applied the device\'s own ACL to what came through the tier')
  const granted = await device.subscribeAsync(['admin/#', 'device/#'], { qos: 1 })
  const received: string[] = []
  device.on('message', (topic) => received.push(topic))
  const admin = await connectClient(t, b1.url, { username: 'admin', password: 'admin-pass' })
  await admin.publishAsync('admin/secret', 's', { qos: 1 })
  await admin.publishAsync('device/1/cmd', 'c', { qos: 1 })
  await new Promise<void>((resolve) => device.on('message', (topic) => { if (topic === 'device/1/cmd') resolve() }))
  t.same(granted.map((g) => g.qos), [1, 1], 'mosquitto 2.0 grants the SUBSCRIBE and filters on delivery')
  t.same(received, ['device/1/cmd'], 'and the terminal receives only what its ACL allows')
  t.same(failovers, [], 'a refused publish does not make Broker1 look slow: no failover')
  t.equal(tier.state.brokers.broker1.state, 'up')
})

t.test('the user\'s own authorizeSubscribe on the tier runs first: a topic it refuses never reaches a broker', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const seenUpstream: string[] = []
  for (const broker of [b1, b2]) broker.aedes.on('subscribe', (subscriptions) => seenUpstream.push(...subscriptions.map((s) => s.topic)))
  const { url } = await startTier(t, b1.url, b2.url, {
    aedes: { authorizeSubscribe: (_client, subscription, callback) => callback(null, subscription.topic.startsWith('private/') ? null : subscription) }
  })
  const terminal = await connectClient(t, url, { clientId: 'curious' })
  // mqtt.js rejects a SUBACK that carries 0x80
  await t.rejects(terminal.subscribeAsync('private/#', { qos: 1 }), 'refused by the user\'s hook')
  t.same((await terminal.subscribeAsync('public/#', { qos: 1 })).map((g) => g.qos), [1], 'the other topic granted')
  t.same(seenUpstream.sort(), ['public/#', 'public/#'], 'only the allowed topic reached Broker1 and Broker2')
})
