import { Aedes } from 'aedes'
import t from 'tap'
import { ConfigError, dualBroker, MemoryPendingStore, StoreClosedError } from '../src/index.js'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { failBackAndRecord, FAILOVER_HEALTH, nextEvent, tempDir } from './support/durable.js'
import { publishStream } from './support/stream.js'
import { startTier } from './support/tier.js'

const BOUNDED = { timeout: 30_000 }
const bounds = { maxMessages: 1000, maxBytes: 1 << 20, overflow: 'reject-new' } as const

t.test('the tier stores in, and replays from, the PendingStore it is given', BOUNDED, async (t) => {
  const [b1, b2] = [await startAedes(t), await startAedes(t)]
  const store = new MemoryPendingStore(bounds)
  const { url, tier, close } = await startTier(t, b1.url, b2.url, {
    plugin: { health: FAILOVER_HEALTH, pendingStore: store, policies: [{ topic: 'q/#', mode: 'queue' }] }
  })
  t.same(tier.state.store, { enabled: true, writable: true }, 'the tier has a store without store.path')
  const terminal = await connectClient(t, url, { clientId: 'given-store' })

  const down = nextEvent(tier, 'failover')
  await b1.close()
  await down
  const n = 50
  const { acked } = await publishStream(terminal, { topic: 'q/a', count: n, window: 5 })
  t.equal(acked.length, n, 'every QoS 1 publish acknowledged while Broker1 is down')
  t.equal(store.count, n, 'all of them in the given store')
  t.same((await store.read(0, n)).map((m) => JSON.parse(m.payload.toString()).seq), [...Array(n).keys()], 'in publish order')
  t.equal(tier.state.pending.messages, n, 'tier.state reads the given store')

  const atBroker1 = await failBackAndRecord(t, tier, b1, terminal, 'q/#', 'q/control')
  t.same(atBroker1.sequences('q/a'), [...Array(n).keys()], 'Broker1 got all of them, once each, in order')
  t.equal(store.count, 0, 'each replayed message deleted from the given store')
  t.equal(store.stats.deleted, n)

  await close()
  await t.rejects(store.append({ topic: 'q/a', payload: Buffer.from('late'), qos: 1, retain: false, clientId: 'c', acceptedAt: 0 }), StoreClosedError,
    'the tier closed the store it was given when it closed')
})

t.test('pendingStore is validated: not a store, or together with store, is a ConfigError naming it', async (t) => {
  const aedes = await Aedes.createBroker()
  t.teardown(() => new Promise<void>((resolve) => aedes.close(() => resolve())))
  // Refused before any broker is contacted: these URLs are never dialled.
  const brokers = { broker1: { url: 'mqtt://127.0.0.1:1' }, broker2: { url: 'mqtt://127.0.0.1:2' } }

  const notAStore = await dualBroker(aedes, { ...brokers, pendingStore: { append () {} } as never }).catch((err: unknown) => err)
  t.type(notAStore, ConfigError)
  t.equal((notAStore as ConfigError).code, 'DUALBROKER_ERR_CONFIG')
  t.match((notAStore as ConfigError).problems, [/^pendingStore: .*expected a PendingStore instance/])

  const both = await dualBroker(aedes, {
    ...brokers, pendingStore: new MemoryPendingStore(bounds), store: { path: tempDir(t) }
  }).catch((err: unknown) => err)
  t.type(both, ConfigError)
  t.match((both as ConfigError).problems, [/^pendingStore: not together with store/])
})
