// Fills a pending store (the tier's own LevelPendingStore from dist/) with a
// backlog, faster than publishing it through the tier: `node bench/prefill.mjs
// <store dir> <count> <topic> [dist dir]` prints {"count":…,"ms":…} when done. Used for the
// 1M backlog replay, whose ingest the store-ingest case measures separately.
import { pathToFileURL } from 'node:url'
import { makePayload } from './lib/mqtt-lean.mjs'

// argv: <store dir> <count> [topic] [dist dir]: the same build as the tier's (see lib/procs.mjs).
const [path, countArg, topic = 'bench/replay', dist = new URL('../dist', import.meta.url).pathname] = process.argv.slice(2)
const { LevelPendingStore } = await import(pathToFileURL(`${dist}/src/store/index.js`).href)
const count = Number(countArg)
const store = new LevelPendingStore({ path, fsync: 'never', maxMessages: count * 2, maxBytes: 2 ** 40, overflow: 'reject-new' })
await store.open()
const started = performance.now()
const chunk = 4096
for (let seq = 0; seq < count;) {
  const batch = []
  for (let i = 0; i < chunk && seq < count; i++, seq++) {
    batch.push(store.append({ topic, payload: makePayload(seq), qos: 1, retain: false, clientId: 'bench-pub', acceptedAt: Date.now() }))
  }
  await Promise.all(batch)
}
await store.close()
process.stdout.write(JSON.stringify({ count, ms: performance.now() - started }) + '\n')
