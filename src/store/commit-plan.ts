import {
  MSG_RANGE_END, SEQ_KEY, decodeKey, encodeKey, encodeSeq, expiresAtOf, storedSize, topicOf
} from './codec.js'
import { StoreFullError } from './errors.js'
import type { Db } from './open-level.js'
import { Tally } from './tally.js'
import type { OverflowPolicy, PendingMessage, StoredMessage } from './types.js'

export interface QueuedAppend {
  msg: PendingMessage
  value: Buffer
  size: number
  resolve: (stored: StoredMessage) => void
  reject: (err: Error) => void
}

export interface QueuedDelete {
  seq: number
  reason: 'ack' | 'expired'
  resolve: () => void
  reject: (err: Error) => void
}

export interface Counters {
  lastSeq: number
  count: number
  bytes: number
  /** No live entry has a seq below this; lets scans seek past deleted (tombstoned) keys. */
  headSeq: number
}
export interface Limits { maxMessages: number, maxBytes: number, overflow: OverflowPolicy }

type Op = { type: 'put', key: Buffer, value: Buffer } | { type: 'del', key: Buffer }

/** Everything one group commit writes, and what to report once it is durable. */
export interface CommitPlan {
  ops: Op[]
  after: Counters
  stored: Array<{ append: QueuedAppend, seq: number }>
  rejected: Array<{ append: QueuedAppend, error: StoreFullError }>
  acked: number
  expired: Tally
  overflow: Tally
}

/**
 * Builds one atomic batch: deletes first (only of entries that exist, so nothing
 * is counted twice), then admission of the appends under the limits, then
 * drop-oldest eviction (stored entries first, then the oldest of this group).
 */
export async function planCommit (
  db: Db, before: Counters, limits: Limits, appends: QueuedAppend[], deletes: QueuedDelete[]
): Promise<CommitPlan> {
  const plan: CommitPlan = {
    ops: [], after: { ...before }, stored: [], rejected: [], acked: 0, expired: new Tally(), overflow: new Tally()
  }
  const c = plan.after
  const gone = new Set<number>()
  const overLimit = (): boolean => c.count > limits.maxMessages || c.bytes > limits.maxBytes

  const reasons = new Map<number, QueuedDelete['reason']>()
  for (const d of deletes) if (reasons.get(d.seq) !== 'ack') reasons.set(d.seq, d.reason)
  const seqs = [...reasons.keys()]
  const values = seqs.length === 0 ? [] : await db.getMany(seqs.map(encodeKey)) as Array<Buffer | undefined>
  values.forEach((value, i) => {
    if (value === undefined) return
    const seq = seqs[i]!
    gone.add(seq)
    c.count--
    c.bytes -= storedSize(value)
    plan.ops.push({ type: 'del', key: encodeKey(seq) })
    if (seq === c.headSeq) c.headSeq++
    if (reasons.get(seq) === 'ack') plan.acked++
    else plan.expired.add(topicOf(value))
  })

  const incoming = appends.reduce((sum, append) => sum + append.size, 0)
  const needsRoom = (): boolean => c.count + appends.length > limits.maxMessages || c.bytes + incoming > limits.maxBytes
  // Expired entries make room before anything live is refused or evicted, and count as expired.
  if (appends.length > 0 && needsRoom()) await sweepExpired(db, plan, gone, needsRoom)

  for (const append of appends) {
    if (append.size > limits.maxBytes) {
      plan.rejected.push({ append, error: new StoreFullError(`message of ${append.size} bytes exceeds maxBytes ${limits.maxBytes}`) })
    } else if (limits.overflow === 'reject-new' &&
      (c.count + 1 > limits.maxMessages || c.bytes + append.size > limits.maxBytes)) {
      plan.rejected.push({ append, error: new StoreFullError(`pending store full (${c.count} messages, ${c.bytes} bytes)`) })
    } else {
      plan.stored.push({ append, seq: ++c.lastSeq })
      c.count++
      c.bytes += append.size
    }
  }

  if (overLimit()) await evictStored(db, plan, gone, overLimit)
  let kept = 0
  while (overLimit() && kept < plan.stored.length) {
    const { append, seq } = plan.stored[kept++]!
    c.headSeq = seq + 1
    c.count--
    c.bytes -= append.size
    plan.overflow.add(append.msg.topic)
  }
  for (const { append, seq } of plan.stored.slice(kept)) {
    plan.ops.push({ type: 'put', key: encodeKey(seq), value: append.value })
  }
  if (plan.stored.length > 0) plan.ops.push({ type: 'put', key: SEQ_KEY, value: encodeSeq(c.lastSeq) })
  return plan
}

const SWEEP_LIMIT = 10_000

/** Deletes expired entries from the oldest on, until there is room or SWEEP_LIMIT entries were looked at. */
async function sweepExpired (db: Db, plan: CommitPlan, gone: Set<number>, needsRoom: () => boolean): Promise<void> {
  const c = plan.after
  const now = Date.now()
  const it = db.iterator({ gte: encodeKey(c.headSeq), lt: MSG_RANGE_END })
  let scanned = 0
  try {
    while (needsRoom() && scanned < SWEEP_LIMIT) {
      const entries = await it.nextv(256)
      if (entries.length === 0) return
      for (const [key, value] of entries) {
        scanned++
        const seq = decodeKey(key)
        const expiresAt = expiresAtOf(value)
        if (gone.has(seq) || expiresAt === undefined || expiresAt > now) continue
        gone.add(seq)
        if (seq === c.headSeq) c.headSeq++
        c.count--
        c.bytes -= storedSize(value)
        plan.ops.push({ type: 'del', key })
        plan.expired.add(topicOf(value))
        if (!needsRoom()) return
      }
    }
  } finally {
    await it.close()
  }
}

async function evictStored (db: Db, plan: CommitPlan, gone: Set<number>, overLimit: () => boolean): Promise<void> {
  const c = plan.after
  const it = db.iterator({ gte: encodeKey(c.headSeq), lt: MSG_RANGE_END })
  try {
    while (overLimit()) {
      const entries = await it.nextv(256)
      if (entries.length === 0) return
      for (const [key, value] of entries) {
        if (!overLimit()) return
        const seq = decodeKey(key)
        if (gone.has(seq)) continue
        gone.add(seq)
        c.headSeq = seq + 1
        c.count--
        c.bytes -= storedSize(value)
        plan.ops.push({ type: 'del', key })
        plan.overflow.add(topicOf(value))
      }
    }
  } finally {
    await it.close()
  }
}
