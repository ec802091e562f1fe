import { Level } from 'level'
import { DualBrokerError } from '../errors.js'
import { MSG_RANGE_END, MSG_RANGE_START, SEQ_KEY, decodeKey, decodeSeq, storedSize } from './codec.js'

export type Db = Level<Buffer, Buffer>

export interface OpenedDb {
  db: Db
  /** Highest seq ever assigned (0 for a new store). */
  lastSeq: number
  count: number
  bytes: number
  /** Lowest stored seq (lastSeq + 1 when empty). */
  headSeq: number
}

function describe (err: unknown): string {
  const e = err as { message?: string, cause?: { message?: string } }
  return e.cause?.message ?? e.message ?? String(err)
}

export function openError (path: string, err: unknown): DualBrokerError {
  return new DualBrokerError('DUALBROKER_ERR_STORE_OPEN', `pending store at ${path} cannot be opened: ${describe(err)}`, { cause: err })
}

/**
 * Opens (creating if missing) the LevelDB at `path` and scans it to restore the
 * counters. Never repairs or wipes: any problem rejects with a message naming the path.
 */
export async function openLevel (path: string): Promise<OpenedDb> {
  const db: Db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer' })
  try {
    await db.open({ createIfMissing: true, errorIfExists: false })
  } catch (err) {
    throw openError(path, err)
  }
  try {
    return { db, ...await scan(db) }
  } catch (err) {
    await db.close().catch(() => {})
    throw openError(path, err)
  }
}

async function scan (db: Db): Promise<Omit<OpenedDb, 'db'>> {
  const seqValue = await db.get(SEQ_KEY) as Buffer | undefined
  let lastSeq = seqValue === undefined ? 0 : decodeSeq(seqValue)
  let count = 0
  let bytes = 0
  let headSeq = 0
  const it = db.iterator({ gte: MSG_RANGE_START, lt: MSG_RANGE_END })
  try {
    for (;;) {
      const entries = await it.nextv(1000)
      if (entries.length === 0) break
      for (const [key, value] of entries) {
        const seq = decodeKey(key)
        try {
          bytes += storedSize(value)
        } catch (err) {
          throw new DualBrokerError('DUALBROKER_ERR_STORE_OPEN', `entry ${seq} is not a valid pending message (${(err as Error).message})`)
        }
        if (count++ === 0) headSeq = seq
        if (seq > lastSeq) lastSeq = seq
      }
    }
  } finally {
    await it.close()
  }
  return { lastSeq, count, bytes, headSeq: count === 0 ? lastSeq + 1 : headSeq }
}
