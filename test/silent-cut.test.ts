import t from 'tap'
import { connectClient } from './support/client.js'
import { nextEvent, startDurableTier } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'
import { record } from './support/recorder.js'
import { startRelay } from './support/relay.js'
import { missing, orderViolations } from './support/sequence.js'
import { publishStream } from './support/stream.js'

t.test('the connection to Broker1 cut silently (no FIN, no RST): the keepalive catches it, nothing is lost', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const relay = await startRelay(t, b1.port)
  const atBroker1 = await record(t, b1.url, '#')
  const { url, tier } = await startDurableTier(t, relay.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'streamer' })
  let cutAt = 0
  let detectedAfter = -1
  tier.once('broker-down', ({ broker }) => { if (broker === 'broker1') detectedAfter = Date.now() - cutAt })
  const failback = nextEvent(tier, 'failback')
  const { acked } = await publishStream(terminal, {
    topic: 'cut/a',
    count: 1200,
    window: 50,
    rate: 300,
    onAck: (n) => {
      if (n === 200) {
        cutAt = Date.now()
        relay.cut()
      }
      if (n === 900) relay.mend()
    }
  })
  await failback
  await terminal.publishAsync('control', 'c', { qos: 1 })
  await atBroker1.waitForTopic('control', 20_000)
  t.ok(detectedAfter > 0 && detectedAfter <= 2500, `silent cut detected after ${detectedAfter} ms (keepalive 1 s, bound 2500 ms)`)
  const got = atBroker1.sequences('cut/')
  t.same(missing(acked, got), [], '0 acked messages lost at Broker1')
  t.equal(orderViolations(got), 0, '0 order violations at Broker1')
})
