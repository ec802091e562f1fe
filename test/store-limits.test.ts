import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import {
  LevelPendingStore, StoreFullError, type DroppedEvent, type LevelPendingStoreOptions, type PendingMessage
} from '../src/store/index.js'

interface Recorded { warn: object[], store: LevelPendingStore, dropped: DroppedEvent[] }

/** Store in a fresh temp folder, with its warn logs and `dropped` events recorded. */
async function openStore (t: Test, opts: Partial<LevelPendingStoreOptions>): Promise<Recorded> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pending-store-'))
  const warn: object[] = []
  const logger = { info () {}, error () {}, warn (obj: object) { warn.push(obj) } }
  const store = new LevelPendingStore({ path: dir, maxMessages: 1e9, maxBytes: 2 ** 40, overflow: 'reject-new', logger, ...opts })
  const dropped: DroppedEvent[] = []
  store.on('dropped', e => dropped.push(e))
  await store.open()
  t.teardown(async () => {
    await store.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  return { store, warn, dropped }
}

/** 10 counted bytes: 1-byte topic + 9-byte payload. */
function msg (i: number, extra: Partial<PendingMessage> = {}): PendingMessage {
  return { topic: 'x', payload: Buffer.from(`payload-${i}`), qos: 1, retain: false, clientId: 'c', acceptedAt: i, ...extra }
}

const payloads = async (store: LevelPendingStore): Promise<string[]> =>
  (await store.read(0, 1000)).map(m => m.payload.toString())

t.test('maxMessages with drop-oldest drops the oldest, counts, emits and logs', async t => {
  const { store, warn, dropped } = await openStore(t, { maxMessages: 5, overflow: 'drop-oldest' })
  for (let i = 0; i < 8; i++) await store.append(msg(i))
  t.equal(store.count, 5)
  t.same(await payloads(store), [3, 4, 5, 6, 7].map(i => `payload-${i}`))
  t.equal(store.stats.droppedOverflow, 3)
  t.same(dropped, [1, 2, 3].map(() => ({ reason: 'overflow', count: 1, topic: 'x' })))
  t.equal(warn.length, 3)

  // More appends in one group than fit: the group's own oldest go too.
  await Promise.all(Array.from({ length: 12 }, (_, i) => store.append(msg(100 + i))))
  t.same(await payloads(store), [107, 108, 109, 110, 111].map(i => `payload-${i}`))
  t.equal(store.stats.droppedOverflow, 3 + 12)
  t.equal(dropped.reduce((n, e) => n + e.count, 0), 15, 'every drop is in an event')
})

t.test('maxBytes with drop-oldest', async t => {
  const { store } = await openStore(t, { maxBytes: 30, overflow: 'drop-oldest' })
  for (let i = 0; i < 5; i++) await store.append(msg(i))
  t.equal(store.bytes, 30)
  t.same(await payloads(store), ['payload-2', 'payload-3', 'payload-4'])
  t.equal(store.stats.droppedOverflow, 2)
  await store.append(msg(5, { topic: 'x'.repeat(11) })) // 20 bytes: needs two slots
  t.same(await payloads(store), ['payload-4', 'payload-5'])
  t.equal(store.bytes, 30)
})

t.test('reject-new rejects with StoreFullError and stores nothing', async t => {
  const { store, warn, dropped } = await openStore(t, { maxMessages: 3, maxBytes: 1000, overflow: 'reject-new' })
  for (let i = 0; i < 3; i++) await store.append(msg(i))
  await t.rejects(store.append(msg(3)), StoreFullError)
  t.equal(store.count, 3)
  t.equal(store.stats.rejectedFull, 1)
  t.equal(store.stats.appended, 3)
  t.same(await payloads(store), ['payload-0', 'payload-1', 'payload-2'])
  t.equal(dropped.length, 0, 'nothing stored was dropped')
  t.equal(warn.length, 1, 'the rejection is logged')

  await store.delete(1)
  t.equal((await store.append(msg(4))).seq, 4, 'room again after an ack')
})

t.test('reject-new on maxBytes, and a message that can never fit', async t => {
  const { store } = await openStore(t, { maxBytes: 25, overflow: 'reject-new' })
  await store.append(msg(0))
  await store.append(msg(1))
  const err = await store.append(msg(2)).catch((e: unknown) => e)
  t.ok(err instanceof StoreFullError)
  t.equal((err as StoreFullError).code, 'DUALBROKER_ERR_STORE_FULL')
  t.equal(store.bytes, 20)

  const { store: dropper } = await openStore(t, { maxBytes: 25, overflow: 'drop-oldest' })
  await dropper.append(msg(0))
  await t.rejects(dropper.append(msg(1, { payload: Buffer.alloc(25) })), StoreFullError)
  t.equal(dropper.count, 1, 'an oversized message does not flush the store')
  t.equal(dropper.stats.droppedOverflow, 0)
})

t.test('expired messages are skipped by read, deleted, counted and emitted', async t => {
  const { store, warn, dropped } = await openStore(t, {})
  const now = Date.now()
  await store.append(msg(0))
  await store.append(msg(1, { topic: 'ttl', expiresAt: now - 1000 }))
  await store.append(msg(2, { expiresAt: now + 3_600_000 }))
  await store.append(msg(3, { topic: 'ttl', expiresAt: now - 1 }))
  await store.append(msg(4))

  const page = await store.read(0, 2)
  t.same(page.map(m => m.seq), [1, 3], 'limit counts live entries only')
  t.same((await store.read(3, 10)).map(m => m.seq), [5])
  t.equal(store.stats.expired, 2)
  t.equal(store.count, 3)
  t.same(dropped, [{ reason: 'expired', count: 1, topic: 'ttl' }, { reason: 'expired', count: 1, topic: 'ttl' }])
  t.equal(warn.length, 2)
  await store.read(0, 10)
  t.equal(store.stats.expired, 2, 'expired entries are gone, not counted twice')
})

t.test('drop-oldest and reads stay correct around out-of-order acks', async t => {
  const { store } = await openStore(t, { maxMessages: 5, overflow: 'drop-oldest' })
  for (let i = 1; i <= 5; i++) await store.append(msg(i))
  await store.delete(3)
  await store.delete(1)
  t.same((await store.read()).map(m => m.seq), [2, 4, 5])
  await Promise.all([6, 7, 8].map(i => store.append(msg(i))))
  t.same((await store.read()).map(m => m.seq), [4, 5, 6, 7, 8], 'only seq 2 was dropped')
  t.equal(store.stats.droppedOverflow, 1)
  t.same((await store.read(4, 2)).map(m => m.seq), [5, 6])
})

t.test('a full store makes room from expired entries first, counting them as expired', async (t) => {
  for (const overflow of ['reject-new', 'drop-oldest'] as const) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-sweep-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    const store = new LevelPendingStore({ path: path.join(dir, 'db'), maxMessages: 2, maxBytes: 1 << 20, overflow })
    await store.open()
    t.teardown(() => store.close())
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
