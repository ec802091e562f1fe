import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { Level } from 'level'
import { LevelPendingStore, StoreClosedError, type LevelPendingStoreOptions, type PendingMessage } from '../src/store/index.js'

function tempDir (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pending-store-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Opens a store; it is closed at teardown (before its folder is removed). */
async function openStore (t: Test, dir: string, opts: Partial<LevelPendingStoreOptions> = {}): Promise<LevelPendingStore> {
  const store = new LevelPendingStore({ path: dir, fsync: 'batch', maxMessages: 1e9, maxBytes: 2 ** 40, overflow: 'reject-new', ...opts })
  await store.open()
  t.teardown(() => store.close())
  return store
}

function msg (i: number, extra: Partial<PendingMessage> = {}): PendingMessage {
  return { topic: `t/${i}`, payload: Buffer.from(`p${i}`), qos: 1, retain: false, clientId: 'c1', acceptedAt: 1_700_000_000_000 + i, ...extra }
}

// What every PendingStore does is in test/store-contract.test.ts; here, LevelDB's own: what survives
// a reopen, group commit and fsync, open errors, and its constructor's path and fsync.

t.test('binary payloads and all fields round trip byte for byte across a reopen', async t => {
  const dir = tempDir(t)
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  const sent: PendingMessage[] = [
    { topic: 'bin/ä€😀', payload: all, qos: 2, retain: true, clientId: 'clïent', acceptedAt: 1_700_000_000_123, expiresAt: Date.now() + 3_600_000 },
    { topic: 'empty', payload: Buffer.alloc(0), qos: 0, retain: false, clientId: '', acceptedAt: 5 }
  ]
  const first = await openStore(t, dir)
  for (const m of sent) await first.append(m)
  await first.close()
  const store = await openStore(t, dir)
  const [a, b] = await store.read()
  t.ok(Buffer.isBuffer(a!.payload))
  t.ok(a!.payload.equals(all), 'all 256 byte values intact')
  t.equal(b!.payload.length, 0, 'empty payload stays empty')
  t.same({ ...a, payload: null }, { ...sent[0], payload: null, seq: 1 })
  t.same({ ...b, payload: null }, { ...sent[1], payload: null, seq: 2 })
  t.notOk('expiresAt' in b!, 'no expiresAt when none was given')
})

t.test('seq continues after reopen, also when the store was emptied; count/bytes restored', async t => {
  const dir = tempDir(t)
  const first = await openStore(t, dir)
  for (let i = 0; i < 10; i++) await first.append(msg(i, { topic: 'ab', payload: Buffer.alloc(i) }))
  t.equal(first.count, 10)
  t.equal(first.bytes, 10 * 2 + 45)
  await first.close()

  const second = await openStore(t, dir)
  t.equal(second.count, 10)
  t.equal(second.bytes, 65)
  t.equal((await second.append(msg(10))).seq, 11)
  for (const m of await second.read(0, 100)) await second.delete(m.seq)
  t.equal(second.count, 0)
  t.equal(second.bytes, 0)
  await second.close()

  const third = await openStore(t, dir)
  t.equal(third.count, 0)
  t.equal((await third.append(msg(11))).seq, 12, 'seq never goes back, even after the store emptied')
})

t.test('group commit: concurrent appends share batches', async t => {
  const store = await openStore(t, tempDir(t))
  await Promise.all(Array.from({ length: 1000 }, (_, i) => store.append(msg(i))))
  t.equal(store.stats.appended, 1000)
  t.ok(store.stats.batches <= 2, `1000 concurrent appends in ${store.stats.batches} batch(es)`)

  const always = await openStore(t, tempDir(t), { fsync: 'always' })
  await Promise.all(Array.from({ length: 50 }, (_, i) => always.append(msg(i))))
  t.equal(always.stats.batches, 50, "fsync 'always' writes (and syncs) every append on its own")
})

for (const fsync of ['always', 'batch', 'never'] as const) {
  t.test(`fsync '${fsync}' stores and persists`, async t => {
    const dir = tempDir(t)
    const store = await openStore(t, dir, { fsync })
    const stored = await Promise.all(Array.from({ length: 100 }, (_, i) => store.append(msg(i))))
    t.same(stored.map(s => s.seq), Array.from({ length: 100 }, (_, i) => i + 1))
    await store.close()
    const reopened = await openStore(t, dir, { fsync })
    t.equal(reopened.count, 100)
    t.same((await reopened.read(0, 1000)).map(m => m.topic), stored.map(s => s.topic))
  })
}

t.test('close flushes queued appends; the store refuses work afterwards', async t => {
  const dir = tempDir(t)
  const store = await openStore(t, dir)
  const pending = Array.from({ length: 20 }, (_, i) => store.append(msg(i)))
  await store.close()
  t.equal((await Promise.all(pending)).length, 20, 'queued appends resolved')
  await t.rejects(store.append(msg(99)), StoreClosedError)
  await t.rejects(store.read(), StoreClosedError)
  const reopened = await openStore(t, dir)
  t.equal(reopened.count, 20)
})

t.test('open errors name the path and the cause, and never touch the data', async t => {
  const dir = tempDir(t)
  const file = path.join(dir, 'a-file')
  fs.writeFileSync(file, 'not a database')
  const onFile = new LevelPendingStore({ path: file, maxMessages: 10, maxBytes: 1000, overflow: 'reject-new' })
  await t.rejects(onFile.open(), { message: new RegExp(`^pending store at ${file} cannot be opened: .+`) })
  t.equal(fs.readFileSync(file, 'utf8'), 'not a database')

  const db = path.join(dir, 'db')
  const first = await openStore(t, db)
  await first.append(msg(1))
  const second = new LevelPendingStore({ path: db, maxMessages: 10, maxBytes: 1000, overflow: 'reject-new' })
  await t.rejects(second.open(), { message: new RegExp(`^pending store at ${db} cannot be opened: .*lock`) })
  t.equal(first.count, 1, 'the first instance keeps working')
  t.equal((await first.append(msg(2))).seq, 2)
})

t.test('a corrupt store is reported, not repaired', async t => {
  const dir = tempDir(t)
  const broken = path.join(dir, 'broken')
  fs.mkdirSync(broken)
  fs.writeFileSync(path.join(broken, 'CURRENT'), 'MANIFEST-999999\n')
  const store = new LevelPendingStore({ path: broken, maxMessages: 10, maxBytes: 1000, overflow: 'reject-new' })
  await t.rejects(store.open(), { message: new RegExp(`^pending store at ${broken} cannot be opened: `) })
  t.equal(fs.readFileSync(path.join(broken, 'CURRENT'), 'utf8'), 'MANIFEST-999999\n', 'not rewritten')

  const foreign = path.join(dir, 'foreign')
  const raw = new Level<Buffer, Buffer>(foreign, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  const key = Buffer.from([0x6d, 0, 0, 0, 0, 0, 0, 0, 7])
  await raw.put(key, Buffer.from('garbage'))
  await raw.close()
  const onForeign = new LevelPendingStore({ path: foreign, maxMessages: 10, maxBytes: 1000, overflow: 'reject-new' })
  await t.rejects(onForeign.open(), { message: new RegExp(`^pending store at ${foreign} cannot be opened: entry 7 `) })
  const check = new Level<Buffer, Buffer>(foreign, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  t.equal((await check.get(key))?.toString(), 'garbage', 'the entry is still there')
  await check.close()
})

t.test('the constructor refuses a missing path and an unknown fsync with DUALBROKER_ERR_STORE_OPTIONS', async t => {
  const bounds = { maxMessages: 10, maxBytes: 1000, overflow: 'reject-new' } as const
  t.throws(() => new LevelPendingStore({ ...bounds, path: '' }), { code: 'DUALBROKER_ERR_STORE_OPTIONS', message: /path must be a non-empty string/ })
  t.throws(() => new LevelPendingStore({ ...bounds } as unknown as LevelPendingStoreOptions), { code: 'DUALBROKER_ERR_STORE_OPTIONS', message: /path/ })
  t.throws(() => new LevelPendingStore({ ...bounds, path: tempDir(t), fsync: 'sometimes' as never }), { code: 'DUALBROKER_ERR_STORE_OPTIONS', message: /fsync/ })
})
