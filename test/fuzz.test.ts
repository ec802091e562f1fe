import t from 'tap'
import { createAccessTier } from '../src/server.js'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'
import { mutated, random, refusedClasses, send } from './support/fuzz.js'
import { record } from './support/recorder.js'
import { missing } from './support/sequence.js'
import { publishStream } from './support/stream.js'

const SEED = Number(process.env.FUZZ_SEED ?? 20261126)
const MUTATED_SESSIONS = 400

t.test(`hostile input (seed ${SEED}): offenders are dropped, the tier stays up, every good message arrives`, async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const atBroker1 = await record(t, b1.url, 'good/#')
  const server = await createAccessTier({
    listen: { host: '127.0.0.1', port: 0 },
    broker1: { url: b1.url },
    broker2: { url: b2.url },
    data: tempDir(t),
    limits: { maxPacketSize: 64 * 1024, connectionRatePerSecond: 0 }
  })
  t.teardown(() => server.close())
  const port = server.addresses.mqtt.port
  const url = `mqtt://127.0.0.1:${port}`
  const terminal = await connectClient(t, url, { clientId: 'good' })
  const stream = publishStream(terminal, { topic: 'good/a', count: 2000, window: 50 })

  const rand = random(SEED)
  const refused = Object.entries(refusedClasses).map(async ([name, make]) => {
    const closed = await Promise.all(Array.from({ length: 10 }, (_, i) => send(port, make(`hostile-${name.length}-${i}`))))
    return [name, closed.every(Boolean)] as const
  })
  const mutations = Promise.all(Array.from({ length: MUTATED_SESSIONS }, (_, i) => send(port, mutated(rand, `mutant-${i}`), 1500)))

  for (const [name, allClosed] of await Promise.all(refused)) t.ok(allClosed, `${name}: connection closed`)
  await mutations
  const { acked } = await stream
  t.equal(acked.length, 2000, 'every good publish acknowledged')
  await atBroker1.waitFor(2000)
  t.same(missing(acked, atBroker1.sequences('good/')), [], 'every good message arrived at Broker1')
  await t.resolves(connectClient(t, url, { clientId: 'after' }), 'the tier still accepts terminals')
  t.equal(server.tier.state.brokers.broker1.state, 'up')
})
