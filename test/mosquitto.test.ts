import t from 'tap'
import { connackCode, connectClient } from './support/client.js'
import { startMosquitto } from './support/mosquitto.js'
import { record } from './support/recorder.js'
import { missing } from './support/sequence.js'
import { publishStream } from './support/stream.js'
import { nextMessage, startTier } from './support/tier.js'

t.test('credentials pass through: each mosquitto decides with its own password file', async (t) => {
  const users = { alice: 'right-password' }
  const b1 = await startMosquitto(t, { users })
  const b2 = await startMosquitto(t, { users })
  const { url } = await startTier(t, b1.url, b2.url)
  t.equal(await connackCode(url, { username: 'alice', password: 'right-password' }), 0, 'good credentials accepted')
  // mosquitto 2.0.11 answers 5 (not authorized) to a bad password; the terminal gets the broker's own code.
  t.equal(await connackCode(url, { username: 'alice', password: 'wrong' }), 5, 'bad password refused with the broker\'s code')
  t.equal(await connackCode(url, {}), 5, 'anonymous refused')
})

t.test('a terminal works through the tier on mosquitto: subscribe, publish, receive', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const { url } = await startTier(t, b1.url, b2.url)
  const sub = await connectClient(t, url, { clientId: 'sub' })
  await sub.subscribeAsync('m/#', { qos: 1 })
  const pub = await connectClient(t, url, { clientId: 'pub' })
  const got = nextMessage(sub)
  await pub.publishAsync('m/1', Buffer.from([0, 1, 2, 255]), { qos: 1 })
  const message = await got
  t.same([...message.payload], [0, 1, 2, 255], 'payload byte for byte')
})

t.test('Broker1 SIGKILL under a QoS 1 stream: publishes continue on Broker2, no acked message missing', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const at1 = await record(t, b1.url, 'stream/#')
  const at2 = await record(t, b2.url, 'stream/#')
  const { url, tier } = await startTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'streamer' })
  const count = 1500
  let killed = false
  const down = new Promise((resolve) => tier.once('broker-down', resolve))
  const { acked, failed } = await publishStream(terminal, {
    topic: 'stream/a',
    count,
    window: 50,
    rate: 500,
    onAck: (n) => {
      if (n >= count / 3 && !killed) {
        killed = true
        void b1.kill('SIGKILL')
      }
    }
  })
  await down
  t.equal(failed, 0)
  t.equal(acked.length, count, 'every publish acked')
  await at2.waitFor(1)
  const received = [...at1.sequences('stream/'), ...at2.sequences('stream/')]
  t.same(missing(acked, received), [], 'every acked message is at Broker1 or Broker2')
  t.ok(at1.sequences('stream/').length >= count / 4, 'Broker1 had the first part (all but what it lost when killed, which went to Broker2)')
  t.ok(at2.sequences('stream/').includes(count - 1), 'Broker2 has the end of the stream')
})
