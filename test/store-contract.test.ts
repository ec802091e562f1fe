import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { DualBrokerError } from '../src/errors.js'
import {
  LevelPendingStore, MemoryPendingStore, StoreClosedError, StoreFullError, type DroppedEvent, type PendingMessage,
  type PendingStore, type StoreBounds
} from '../src/store/index.js'

// The `PendingStore` contract (src/store/types.ts), run against each implementation the package
// ships: whatever the tier is given must behave like this. LevelDB's own matters (reopen, fsync,
// group commit, open errors) are in test/store.test.ts.

interface Opened { store: PendingStore, warn: object[], dropped: DroppedEvent[] }
type Make = (t: Test, bounds: StoreBounds) => PendingStore

const IMPLEMENTATIONS: Array<[string, Make]> = [
  ['LevelDB', (t, bounds) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-contract-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    const store = new LevelPendingStore(bounds === undefined ? bounds as never : { path: path.join(dir, 'db'), ...bounds })
    t.teardown(async () => {
      await store.close() // before its folder goes, whichever teardown runs first
      fs.rmSync(dir, { recursive: true, force: true })
    })
    return store
  }],
  ['memory', (_t, bounds) => new MemoryPendingStore(bounds)]
]

/** 10 counted bytes: 1-byte topic + 9-byte payload. */
function msg (i: number, extra: Partial<PendingMessage> = {}): PendingMessage {
  return { topic: 'x', payload: Buffer.from(`payload-${i}`), qos: 1, retain: false, clientId: 'c', acceptedAt: i, ...extra }
}

for (const [name, make] of IMPLEMENTATIONS) {
  /** An open store with its warn logs and `dropped` events recorded, closed at teardown. */
  const open = async (t: Test, bounds: Partial<StoreBounds> = {}): Promise<Opened> => {
    const warn: object[] = []
    const logger = { info () {}, error () {}, warn (obj: object) { warn.push(obj) } }
    const store = make(t, { maxMessages: 1e9, maxBytes: 2 ** 40, overflow: 'reject-new', logger, ...bounds })
    const dropped: DroppedEvent[] = []
    store.on('dropped', (e) => dropped.push(e))
    await store.open()
    t.teardown(() => store.close())
    return { store, warn, dropped }
  }
  const payloads = async (store: PendingStore): Promise<string[]> => (await store.read(0, 1000)).map((m) => m.payload.toString())

  t.test(`${name}: concurrent appends keep call order in seq and in read order`, async (t) => {
    const { store } = await open(t)
    const stored = await Promise.all(Array.from({ length: 2000 }, (_, i) => store.append(msg(i))))
    t.same(stored.map((s) => s.seq), Array.from({ length: 2000 }, (_, i) => i + 1), 'seq follows call order')
    const read = await store.read(0, 5000)
    t.same(read.map((m) => m.payload.toString()), stored.map((s) => s.payload.toString()))
    t.same(read.map((m) => m.seq), stored.map((s) => s.seq))
    t.equal(store.stats.appended, 2000)
  })

  t.test(`${name}: every field round trips byte for byte; optional fields only when set`, async (t) => {
    const { store } = await open(t)
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
    const sent: PendingMessage[] = [
      { topic: 'bin/ä€😀', payload: all, qos: 2, retain: true, clientId: 'clïent', acceptedAt: 1_700_000_000_123, expiresAt: Date.now() + 3_600_000, anyBroker: true, id: 'm-1' },
      { topic: 'empty', payload: Buffer.alloc(0), qos: 0, retain: false, clientId: '', acceptedAt: 5 }
    ]
    for (const m of sent) await store.append(m)
    all[0] = 99 // the caller's buffer changes after the append: the stored copy does not
    const [a, b] = await store.read()
    t.equal(a!.payload[0], 0)
    t.ok(a!.payload.subarray(1).equals(all.subarray(1)), 'all 256 byte values intact')
    t.same({ ...a, payload: null }, { ...sent[0], payload: null, seq: 1 })
    t.same({ ...b, payload: null }, { ...sent[1], payload: null, seq: 2 })
    t.same(Object.keys(b!).sort(), ['acceptedAt', 'clientId', 'payload', 'qos', 'retain', 'seq', 'topic'])
  })

  t.test(`${name}: count and bytes follow appends and deletes`, async (t) => {
    const { store } = await open(t)
    for (let i = 0; i < 10; i++) await store.append(msg(i, { topic: 'ab', payload: Buffer.alloc(i) }))
    t.equal(store.count, 10)
    t.equal(store.bytes, 10 * 2 + 45, 'topic (utf8) + payload bytes')
    await store.append(msg(10, { topic: 'ä', payload: Buffer.alloc(0) }))
    t.equal(store.bytes, 65 + 2, 'a topic counts in utf8 bytes')
    for (const m of await store.read(0, 100)) await store.delete(m.seq)
    t.equal(store.count, 0)
    t.equal(store.bytes, 0)
    t.equal((await store.append(msg(11))).seq, 12, 'seq never goes back, even after the store emptied')
  })

  t.test(`${name}: delete removes exactly the acknowledged entries; duplicate and unknown seqs are ignored`, async (t) => {
    const { store } = await open(t)
    for (let i = 0; i < 10; i++) await store.append(msg(i))
    const page = await store.read(0, 4)
    t.same(page.map((m) => m.seq), [1, 2, 3, 4])
    await Promise.all(page.map((m) => store.delete(m.seq)))
    await store.delete(2) // duplicate ack
    await store.delete(12345) // unknown seq
    t.equal(store.count, 6)
    t.equal(store.stats.deleted, 4, 'duplicates and unknown seqs are not counted')
    t.same((await store.read(0, 100)).map((m) => m.seq), [5, 6, 7, 8, 9, 10])
    await store.delete(7) // out of order
    t.same((await store.read(5, 2)).map((m) => m.seq), [6, 8], 'a read steps over a hole')
    await t.rejects(store.delete(0), RangeError)
  })

  t.test(`${name}: paging through 5,000 entries in bounded pages, and iterate()`, async (t) => {
    const { store } = await open(t)
    const n = 5000
    await Promise.all(Array.from({ length: n }, (_, i) => store.append(msg(i, { topic: `t/${i}` }))))
    let after = 0
    let pages = 0
    const seen: number[] = []
    for (;;) {
      const page = await store.read(after, 100)
      if (page.length === 0) break
      if (page.length > 100) t.fail(`a page of ${page.length}`)
      pages++
      for (const m of page) seen.push(Number(m.topic.slice(2)))
      after = page[page.length - 1]!.seq
    }
    t.equal(pages, 50)
    t.same(seen, Array.from({ length: n }, (_, i) => i), 'all entries, in order')
    // Half acked from the front, as a replay does: the rest is still found from any afterSeq.
    for (let seq = 1; seq <= n / 2; seq++) await store.delete(seq)
    let count = 0
    let last = 0
    for await (const m of store.iterate(0, 100)) {
      if (m.seq <= last) t.fail(`out of order at ${m.seq}`)
      last = m.seq
      count++
    }
    t.equal(count, n / 2, 'iterate() yields the entries left')
    t.same((await store.read(n - 2, 10)).map((m) => m.seq), [n - 1, n])
  })

  t.test(`${name}: maxMessages with drop-oldest drops the oldest, counts, emits and logs`, async (t) => {
    const { store, warn, dropped } = await open(t, { maxMessages: 5, overflow: 'drop-oldest' })
    for (let i = 0; i < 8; i++) await store.append(msg(i))
    t.equal(store.count, 5)
    t.same(await payloads(store), [3, 4, 5, 6, 7].map((i) => `payload-${i}`))
    t.equal(store.stats.droppedOverflow, 3)
    t.same(dropped, [1, 2, 3].map(() => ({ reason: 'overflow', count: 1, topic: 'x' })))
    t.equal(warn.length, 3)

    // More appends at once than fit: the oldest of them go too.
    await Promise.all(Array.from({ length: 12 }, (_, i) => store.append(msg(100 + i))))
    t.same(await payloads(store), [107, 108, 109, 110, 111].map((i) => `payload-${i}`))
    t.equal(store.stats.droppedOverflow, 3 + 12)
    t.equal(dropped.reduce((n, e) => n + e.count, 0), 15, 'every drop is in an event')
  })

  t.test(`${name}: maxBytes with drop-oldest`, async (t) => {
    const { store } = await open(t, { maxBytes: 30, overflow: 'drop-oldest' })
    for (let i = 0; i < 5; i++) await store.append(msg(i))
    t.equal(store.bytes, 30)
    t.same(await payloads(store), ['payload-2', 'payload-3', 'payload-4'])
    t.equal(store.stats.droppedOverflow, 2)
    await store.append(msg(5, { topic: 'x'.repeat(11) })) // 20 bytes: needs two slots
    t.same(await payloads(store), ['payload-4', 'payload-5'])
    t.equal(store.bytes, 30)
  })

  t.test(`${name}: reject-new rejects with StoreFullError and stores nothing`, async (t) => {
    const { store, warn, dropped } = await open(t, { maxMessages: 3, maxBytes: 1000, overflow: 'reject-new' })
    for (let i = 0; i < 3; i++) await store.append(msg(i))
    const err = await store.append(msg(3)).catch((e: unknown) => e)
    t.type(err, StoreFullError)
    t.equal((err as StoreFullError).code, 'DUALBROKER_ERR_STORE_FULL')
    t.equal(store.count, 3)
    t.equal(store.stats.rejectedFull, 1)
    t.equal(store.stats.appended, 3)
    t.same(await payloads(store), ['payload-0', 'payload-1', 'payload-2'])
    t.equal(dropped.length, 0, 'nothing stored was dropped')
    t.equal(warn.length, 1, 'the rejection is logged')

    await store.delete(1)
    t.equal((await store.append(msg(4))).seq, 4, 'room again after an ack')
  })

  t.test(`${name}: reject-new on maxBytes, and a message that can never fit`, async (t) => {
    const { store } = await open(t, { maxBytes: 25, overflow: 'reject-new' })
    await store.append(msg(0))
    await store.append(msg(1))
    await t.rejects(store.append(msg(2)), { code: 'DUALBROKER_ERR_STORE_FULL' })
    t.equal(store.bytes, 20)

    const { store: dropper } = await open(t, { maxBytes: 25, overflow: 'drop-oldest' })
    await dropper.append(msg(0))
    await t.rejects(dropper.append(msg(1, { payload: Buffer.alloc(25) })), StoreFullError)
    t.equal(dropper.count, 1, 'an oversized message does not flush the store')
    t.equal(dropper.stats.droppedOverflow, 0)
  })

  t.test(`${name}: expired messages are skipped by read, deleted, counted and emitted`, async (t) => {
    const { store, warn, dropped } = await open(t)
    const now = Date.now()
    await store.append(msg(0))
    await store.append(msg(1, { topic: 'ttl', expiresAt: now - 1000 }))
    await store.append(msg(2, { expiresAt: now + 3_600_000 }))
    await store.append(msg(3, { topic: 'ttl', expiresAt: now - 1 }))
    await store.append(msg(4))

    const page = await store.read(0, 2)
    t.same(page.map((m) => m.seq), [1, 3], 'limit counts live entries only')
    t.same((await store.read(3, 10)).map((m) => m.seq), [5])
    t.equal(store.stats.expired, 2)
    t.equal(store.count, 3)
    t.equal(store.bytes, 30)
    t.same(dropped, [{ reason: 'expired', count: 1, topic: 'ttl' }, { reason: 'expired', count: 1, topic: 'ttl' }])
    t.equal(warn.length, 2)
    await store.read(0, 10)
    t.equal(store.stats.expired, 2, 'expired entries are gone, not counted twice')
  })

  t.test(`${name}: drop-oldest and reads stay correct around out-of-order acks`, async (t) => {
    const { store } = await open(t, { maxMessages: 5, overflow: 'drop-oldest' })
    for (let i = 1; i <= 5; i++) await store.append(msg(i))
    await store.delete(3)
    await store.delete(1)
    t.same((await store.read()).map((m) => m.seq), [2, 4, 5])
    await Promise.all([6, 7, 8].map((i) => store.append(msg(i))))
    t.same((await store.read()).map((m) => m.seq), [4, 5, 6, 7, 8], 'only seq 2 was dropped')
    t.equal(store.stats.droppedOverflow, 1)
    t.same((await store.read(4, 2)).map((m) => m.seq), [5, 6])
  })

  t.test(`${name}: a full store makes room from expired entries first, counting them as expired`, async (t) => {
    for (const overflow of ['reject-new', 'drop-oldest'] as const) {
      const { store } = await open(t, { maxMessages: 2, maxBytes: 1 << 20, overflow })
      const past = Date.now() - 1
      const message = (topic: string, expiresAt?: number): PendingMessage => ({
        topic, payload: Buffer.from('x'), qos: 1, retain: false, clientId: 'c', acceptedAt: past, ...(expiresAt !== undefined && { expiresAt })
      })
      await store.append(message('old/1', past))
      await store.append(message('old/2', past))
      await t.resolves(store.append(message('new/1')), `${overflow}: a new message is taken while expired ones fill the store`)
      t.equal(store.stats.expired, 1, `${overflow}: just enough expired entries were removed, counted as expired`)
      t.equal(store.stats.droppedOverflow, 0, `${overflow}: not as overflow`)
      t.same((await store.read(0, 10)).map((m) => m.topic), ['new/1'])
      t.equal(store.stats.expired, 2, `${overflow}: the read removed the other one`)
    }
  })

  t.test(`${name}: off() removes a dropped listener`, async (t) => {
    const { store, dropped } = await open(t, { maxMessages: 1, overflow: 'drop-oldest' })
    const mine: DroppedEvent[] = []
    const listener = (e: DroppedEvent): void => { mine.push(e) }
    store.on('dropped', listener)
    await store.append(msg(0))
    await store.append(msg(1))
    store.off('dropped', listener)
    await store.append(msg(2))
    t.equal(mine.length, 1)
    t.equal(dropped.length, 2, 'the other listener still hears')
  })

  t.test(`${name}: a message the store cannot hold is refused with a coded error`, async (t) => {
    const { store } = await open(t)
    await t.rejects(store.append(msg(0, { topic: 'x'.repeat(70_000) })), { code: 'DUALBROKER_ERR_STORE_MESSAGE', message: /topic longer/ })
    await t.rejects(store.append(msg(0, { id: 'i'.repeat(300) })), { code: 'DUALBROKER_ERR_STORE_MESSAGE' })
    await t.rejects(store.append(msg(0, { payload: 'text' as unknown as Buffer })), { code: 'DUALBROKER_ERR_STORE_MESSAGE' })
    t.equal(store.count, 0)
    t.equal((await store.append(msg(1))).seq, 1, 'a refused message takes no seq')
  })

  t.test(`${name}: use after close, and a second open, are coded errors`, async (t) => {
    const { store } = await open(t)
    await store.append(msg(0))
    await t.rejects(store.open(), { code: 'DUALBROKER_ERR_STORE_OPEN', message: /cannot be opened twice/ })
    await store.close()
    for (const call of [() => store.append(msg(1)), () => store.read(), () => store.delete(1)]) {
      const err = await call().then(() => undefined, (e: unknown) => e)
      t.type(err, StoreClosedError)
      t.equal((err as StoreClosedError).code, 'DUALBROKER_ERR_STORE_CLOSED')
    }
    await t.resolves(store.close(), 'closing twice is harmless')
  })

  t.test(`${name}: the constructor refuses bad bounds with DUALBROKER_ERR_STORE_OPTIONS`, async (t) => {
    const good: StoreBounds = { maxMessages: 10, maxBytes: 100, overflow: 'reject-new' }
    const bad: Array<[string, unknown]> = [
      ['maxMessages', { ...good, maxMessages: 0 }],
      ['maxMessages', { ...good, maxMessages: 1.5 }],
      ['maxBytes', { ...good, maxBytes: '1MiB' }],
      ['overflow', { ...good, overflow: 'drop-newest' }],
      ['logger', { ...good, logger: {} }],
      ['options must be an object', undefined]
    ]
    for (const [field, options] of bad) {
      let error: unknown
      try {
        make(t, options as StoreBounds)
      } catch (err) {
        error = err
      }
      t.type(error, DualBrokerError, `${field}: thrown at construction`)
      t.equal((error as DualBrokerError).code, 'DUALBROKER_ERR_STORE_OPTIONS')
      t.match((error as Error).message, field)
    }
  })
}
