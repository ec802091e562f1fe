import t from 'tap'
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
  const { url } = await startTier(t, b1.url, b2.url)
  const device = await connectClient(t, url, { clientId: 'device-1', username: 'device', password: 'device-pass' })
  // mosquitto acks an unauthorised QoS 1 publish under MQTT 3.1.1 and drops it.
  await device.publishAsync('admin/reboot', 'x', { qos: 1 })
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
})
