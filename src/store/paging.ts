import type { PendingStore, StoredMessage } from './types.js'

/** `PendingStore.iterate` on top of its `read`, for every store: memory stays bounded by `pageSize`. */
export async function * pages (store: Pick<PendingStore, 'read'>, afterSeq: number, pageSize: number): AsyncIterableIterator<StoredMessage> {
  for (;;) {
    const page = await store.read(afterSeq, pageSize)
    if (page.length === 0) return
    yield * page
    afterSeq = page[page.length - 1]!.seq
  }
}
