import t from 'tap'
import { createAccessTier } from '../src/index.js'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'

t.test('a graceful stop lets publishes in flight become safe before the terminals are dropped', async (t) => {
  const held: Array<() => void> = []
  let arrived: () => void = () => {}
  const firstArrived = new Promise<void>((resolve) => { arrived = resolve })
  const b1 = await startAedes(t, {
    aedes: {
      authorizePublish: (client, _packet, callback) => {
        if (client === null) return callback(null)
        held.push(() => callback(null)) // Broker1 acks late
        arrived()
      }
    }
  })
  const b2 = await startAedes(t)
  const server = await createAccessTier({ listen: { host: '127.0.0.1', port: 0 }, broker1: { url: b1.url }, broker2: { url: b2.url }, data: tempDir(t) })
  const url = `mqtt://127.0.0.1:${server.addresses.mqtt.port}`
  const terminal = await connectClient(t, url, { clientId: 'late-ack' })
  const acked = terminal.publishAsync('x', 'in flight', { qos: 1 })
  await firstArrived

  const stopped = server.close()
  await t.rejects(connectClient(t, url, { clientId: 'newcomer' }), 'no new terminal once stopping')
  for (const release of held.splice(0)) release()
  await t.resolves(acked, 'the publish in flight was acknowledged before the tier stopped')
  await stopped
  t.equal(b1.connections(), 0, 'every upstream session ended')
})
