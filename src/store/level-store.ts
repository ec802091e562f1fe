import { EventEmitter } from 'node:events'
import { decodeKey, decodeValue, encodeKey, encodeValue, expiresAtOf, messageSize, MSG_RANGE_END } from './codec.js'
import { planCommit, type CommitPlan, type Counters, type QueuedAppend, type QueuedDelete } from './commit-plan.js'
import { checkBounds } from './bounds.js'
import { openedTwiceError, optionsError, StoreClosedError } from './errors.js'
import { silentLogger } from '../logger.js'
import { openLevel, type Db } from './open-level.js'
import { pages } from './paging.js'
import type {
  FsyncMode, LevelPendingStoreOptions, PendingMessage, PendingStore, PendingStoreEvents,
  StoreLogger, StoredMessage, StoreStats
} from './types.js'

/** Upper bounds of one group commit. */
const MAX_GROUP_APPENDS = 1024
const MAX_GROUP_BYTES = 4 * 1024 * 1024
const DEFAULT_PAGE = 100
const FSYNC_MODES: ReadonlySet<unknown> = new Set(['always', 'batch', 'never'])


export class LevelPendingStore extends EventEmitter<PendingStoreEvents> implements PendingStore {
  readonly path: string
  private readonly fsync: FsyncMode
  private readonly options: LevelPendingStoreOptions
  private readonly log: StoreLogger
  private db: Db | undefined
  private state: 'new' | 'opening' | 'open' | 'closing' | 'closed' = 'new'
  private counters: Counters = { lastSeq: 0, count: 0, bytes: 0, headSeq: 1 }
  private readonly _stats: StoreStats = { appended: 0, deleted: 0, droppedOverflow: 0, rejectedFull: 0, expired: 0, batches: 0 }
  private appendQueue: QueuedAppend[] = []
  private deleteQueue: QueuedDelete[] = []
  private draining: Promise<void> | undefined
  private opening: Promise<void> | undefined
  private closing: Promise<void> | undefined

  constructor (options: LevelPendingStoreOptions) {
    super()
    checkBounds(options)
    if (typeof options.path !== 'string' || options.path === '') throw optionsError('path must be a non-empty string')
    this.fsync = options.fsync ?? 'batch'
    if (!FSYNC_MODES.has(this.fsync)) throw optionsError(`fsync must be "always", "batch" or "never", not ${JSON.stringify(this.fsync)}`)
    this.path = options.path
    this.options = options
    this.log = options.logger ?? silentLogger
  }

  get count (): number { return this.counters.count }
  get bytes (): number { return this.counters.bytes }
  /** Highest seq ever assigned. */
  get lastSeq (): number { return this.counters.lastSeq }
  get stats (): Readonly<StoreStats> { return { ...this._stats } }

  open (): Promise<void> {
    if (this.state !== 'new') return Promise.reject(openedTwiceError(`at ${this.path}`, this.state))
    this.state = 'opening'
    this.opening = this.doOpen()
    return this.opening
  }

  private async doOpen (): Promise<void> {
    try {
      const { db, ...counters } = await openLevel(this.path)
      this.db = db
      this.counters = counters
    } catch (err) {
      this.state = 'closed'
      throw err
    }
    this.state = 'open'
    this.log.info({ path: this.path, count: this.count, bytes: this.bytes, lastSeq: this.lastSeq }, 'pending store opened')
  }

  append (msg: PendingMessage): Promise<StoredMessage> {
    return new Promise((resolve, reject) => {
      if (this.state !== 'open') return reject(new StoreClosedError(`at ${this.path}`))
      const value = encodeValue(msg) // throws (→ rejects) on invalid input
      this.appendQueue.push({ msg, value, size: messageSize(msg), resolve, reject })
      this.kick()
    })
  }

  delete (seq: number): Promise<void> {
    if (!Number.isSafeInteger(seq) || seq < 1) return Promise.reject(new RangeError(`invalid seq ${seq}`))
    return this.enqueueDelete(seq, 'ack')
  }

  async read (afterSeq = 0, limit = DEFAULT_PAGE): Promise<StoredMessage[]> {
    const db = this.openDb()
    if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw new RangeError(`invalid afterSeq ${afterSeq}`)
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`invalid limit ${limit}`)
    const out: StoredMessage[] = []
    const now = Date.now()
    const from = Math.max(afterSeq + 1, this.counters.headSeq)
    const it = db.iterator({ gte: encodeKey(from), lt: MSG_RANGE_END })
    try {
      while (out.length < limit) {
        const entries = await it.nextv(limit - out.length)
        if (entries.length === 0) break
        const expired: Array<Promise<void>> = []
        for (const [key, value] of entries) {
          const seq = decodeKey(key)
          const expiresAt = expiresAtOf(value)
          if (expiresAt !== undefined && expiresAt <= now) expired.push(this.enqueueDelete(seq, 'expired'))
          else out.push(decodeValue(seq, value))
        }
        await Promise.all(expired)
      }
    } finally {
      await it.close()
    }
    return out
  }

  iterate (afterSeq = 0, pageSize = DEFAULT_PAGE): AsyncIterableIterator<StoredMessage> {
    return pages(this, afterSeq, pageSize)
  }

  close (): Promise<void> {
    this.closing ??= this.doClose()
    return this.closing
  }

  private async doClose (): Promise<void> {
    if (this.state === 'opening') await this.opening!.catch(() => {})
    if (this.state !== 'open') {
      this.state = 'closed'
      return
    }
    this.state = 'closing'
    while (this.draining) await this.draining
    await this.db!.close()
    this.state = 'closed'
    this.log.info({ path: this.path, count: this.count }, 'pending store closed')
  }

  private openDb (): Db {
    if (this.state !== 'open' || !this.db) throw new StoreClosedError(`at ${this.path}`)
    return this.db
  }

  private enqueueDelete (seq: number, reason: QueuedDelete['reason']): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.state !== 'open') return reject(new StoreClosedError(`at ${this.path}`))
      this.deleteQueue.push({ seq, reason, resolve, reject })
      this.kick()
    })
  }

  private kick (): void {
    this.draining ??= this.drain()
  }

  /** Writes queued operations one group commit at a time until the queues are empty. */
  private async drain (): Promise<void> {
    await new Promise(resolve => setImmediate(resolve)) // let this tick's appends join the group
    try {
      while (this.appendQueue.length > 0 || this.deleteQueue.length > 0) {
        await this.commit(this.takeAppends(), this.deleteQueue.splice(0, MAX_GROUP_APPENDS))
      }
    } finally {
      this.draining = undefined
    }
  }

  private takeAppends (): QueuedAppend[] {
    if (this.fsync === 'always') return this.appendQueue.splice(0, 1)
    let n = 0
    let bytes = 0
    while (n < this.appendQueue.length && n < MAX_GROUP_APPENDS && (n === 0 || bytes < MAX_GROUP_BYTES)) {
      bytes += this.appendQueue[n++]!.value.length
    }
    return this.appendQueue.splice(0, n)
  }

  private async commit (appends: QueuedAppend[], deletes: QueuedDelete[]): Promise<void> {
    let plan: CommitPlan
    try {
      plan = await planCommit(this.db!, this.counters, this.options, appends, deletes)
      if (plan.ops.length > 0) {
        await this.db!.batch(plan.ops, { sync: this.fsync !== 'never' })
        this._stats.batches++
      }
    } catch (err) {
      this.log.error({ path: this.path, err }, 'pending store write failed')
      for (const op of [...appends, ...deletes]) op.reject(err as Error)
      return
    }
    this.counters = plan.after
    this.report(plan)
    for (const { append, seq } of plan.stored) append.resolve({ ...append.msg, seq })
    for (const { append, error } of plan.rejected) append.reject(error)
    for (const d of deletes) d.resolve()
  }

  private report (plan: CommitPlan): void {
    const s = this._stats
    s.appended += plan.stored.length
    s.deleted += plan.acked
    s.expired += plan.expired.count
    s.droppedOverflow += plan.overflow.count
    s.rejectedFull += plan.rejected.length
    if (plan.rejected.length > 0) {
      this.log.warn({ path: this.path, count: plan.rejected.length, stored: this.count, bytes: this.bytes }, 'pending store full: rejected new messages')
    }
    for (const [tally, reason] of [[plan.overflow, 'overflow'], [plan.expired, 'expired']] as const) {
      if (tally.count === 0) continue
      const event = tally.event(reason)
      this.log.warn({ path: this.path, ...event }, 'pending store dropped messages')
      try {
        this.emit('dropped', event)
      } catch (err) {
        this.log.error({ path: this.path, err }, 'pending store: dropped listener threw')
      }
    }
  }
}
