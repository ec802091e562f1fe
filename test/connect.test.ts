import t from 'tap'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { nextMessage, startTier } from './support/tier.js'

t.test('a terminal is online at both brokers, with its own client id, once CONNACK arrives', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url, tier } = await startTier(t, b1.url, b2.url)
  t.equal(tier.state.brokers.broker1.state, 'up')
  await connectClient(t, url, { clientId: 'terminal-1' })
  t.ok(b1.clientIds().includes('terminal-1'), 'Broker1 has the terminal')
  t.ok(b2.clientIds().includes('terminal-1'), 'Broker2 has the terminal')
  t.equal(tier.state.clients, 1)
})

t.test('a message published through the tier reaches a subscriber through the tier', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url } = await startTier(t, b1.url, b2.url)
  const sub = await connectClient(t, url, { clientId: 'sub' })
  await sub.subscribeAsync('x/#', { qos: 1 })
  const pub = await connectClient(t, url, { clientId: 'pub' })
  const got = nextMessage(sub)
  await pub.publishAsync('x/1', 'hello', { qos: 1 })
  const { topic, payload } = await got
  t.equal(topic, 'x/1')
  t.equal(payload.toString(), 'hello')
})
