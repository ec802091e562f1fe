import { EventEmitter } from 'node:events'
import { checkBounds } from './bounds.js'
import { checkMessage, messageSize } from './codec.js'
import { openedTwiceError, StoreClosedError, StoreFullError } from './errors.js'
import { silentLogger } from '../logger.js'
import { Tally } from './tally.js'
import { pages } from './paging.js'
import type {
  DroppedEvent, MemoryPendingStoreOptions, PendingMessage, PendingStore, PendingStoreEvents, StoreBounds, StoreLogger,
  StoredMessage, StoreStats
} from './types.js'

const DEFAULT_PAGE = 100
/** Entries a full store looks at for expired ones before it refuses or evicts, as LevelDB's does. */
const SWEEP_LIMIT = 10_000
/** Holes at the head kept before the array is cut: cutting at every ack would copy it each time. */
const COMPACT_AT = 1024
const WHERE = 'in memory'

interface Entry { message: StoredMessage, size: number }

/**
 * A `PendingStore` in the process's memory: the same bounds, overflow, expiry, seq order and
 * stats as `LevelPendingStore`, and **not durable** — the backlog is lost with the process. For
 * tests, and for deployments that accept that loss in exchange for no disk.
 *
 * Seqs are contiguous here (a refused append takes none), so an entry is found by its index:
 * `slots[seq - base]`. An acked, expired or evicted entry leaves a hole until the head passes it.
 */
export class MemoryPendingStore extends EventEmitter<PendingStoreEvents> implements PendingStore {
  private readonly bounds: StoreBounds
  private readonly log: StoreLogger
  private state: 'new' | 'open' | 'closed' = 'new'
  private slots: Array<Entry | undefined> = []
  /** Seq of `slots[0]`. */
  private base = 1
  /** Index of the first live slot (or `slots.length`). */
  private head = 0
  private lastSeq = 0
  private _count = 0
  private _bytes = 0
  private readonly _stats: StoreStats = { appended: 0, deleted: 0, droppedOverflow: 0, rejectedFull: 0, expired: 0, batches: 0 }

  /** Throws `DUALBROKER_ERR_STORE_OPTIONS` for options it cannot use. */
  constructor (options: MemoryPendingStoreOptions) {
    super()
    checkBounds(options)
    this.bounds = { maxMessages: options.maxMessages, maxBytes: options.maxBytes, overflow: options.overflow }
    this.log = options.logger ?? silentLogger
  }

  get count (): number { return this._count }
  get bytes (): number { return this._bytes }
  get stats (): Readonly<StoreStats> { return { ...this._stats } }

  open (): Promise<void> {
    if (this.state !== 'new') return Promise.reject(openedTwiceError(WHERE, this.state))
    this.state = 'open'
    return Promise.resolve()
  }

  append (msg: PendingMessage): Promise<StoredMessage> {
    if (this.state !== 'open') return Promise.reject(new StoreClosedError(WHERE))
    try {
      checkMessage(msg)
    } catch (err) {
      return Promise.reject(err)
    }
    const size = messageSize(msg)
    const { maxBytes, overflow } = this.bounds
    if (size > maxBytes) return this.refuse(`message of ${size} bytes exceeds maxBytes ${maxBytes}`)
    // Expired entries make room before anything live is refused or evicted, and count as expired.
    if (this.needsRoom(size)) this.sweepExpired(size)
    if (overflow === 'reject-new' && this.needsRoom(size)) return this.refuse(`pending store full (${this._count} messages, ${this._bytes} bytes)`)
    const message = copyOf(++this.lastSeq, msg)
    this.slots.push({ message, size })
    this._count++
    this._bytes += size
    this._stats.appended++
    if (this.overLimit()) this.evictOldest()
    return Promise.resolve({ ...message })
  }

  async read (afterSeq = 0, limit = DEFAULT_PAGE): Promise<StoredMessage[]> {
    if (this.state !== 'open') throw new StoreClosedError(WHERE)
    if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw new RangeError(`invalid afterSeq ${afterSeq}`)
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`invalid limit ${limit}`)
    const out: StoredMessage[] = []
    const expired = new Tally()
    const now = Date.now()
    for (let i = Math.max(afterSeq + 1 - this.base, this.head); i < this.slots.length && out.length < limit; i++) {
      const entry = this.slots[i]
      if (entry === undefined) continue
      const { message } = entry
      if (message.expiresAt !== undefined && message.expiresAt <= now) {
        this.remove(i)
        expired.add(message.topic)
      } else {
        out.push({ ...message })
      }
    }
    this._stats.expired += expired.count
    this.compact()
    this.report(expired, 'expired')
    return out
  }

  iterate (afterSeq = 0, pageSize = DEFAULT_PAGE): AsyncIterableIterator<StoredMessage> {
    return pages(this, afterSeq, pageSize)
  }

  delete (seq: number): Promise<void> {
    if (!Number.isSafeInteger(seq) || seq < 1) return Promise.reject(new RangeError(`invalid seq ${seq}`))
    if (this.state !== 'open') return Promise.reject(new StoreClosedError(WHERE))
    const index = seq - this.base
    if (index >= this.head && this.slots[index] !== undefined) {
      this.remove(index)
      this._stats.deleted++
      this.compact()
    }
    return Promise.resolve()
  }

  close (): Promise<void> {
    if (this.state === 'open') this.log.info({ store: WHERE, count: this._count }, 'pending store closed: its messages are gone with it')
    this.state = 'closed'
    this.slots = []
    return Promise.resolve()
  }

  private needsRoom (size: number): boolean {
    return this._count + 1 > this.bounds.maxMessages || this._bytes + size > this.bounds.maxBytes
  }

  private overLimit (): boolean {
    return this._count > this.bounds.maxMessages || this._bytes > this.bounds.maxBytes
  }

  private remove (index: number): void {
    const entry = this.slots[index]!
    this.slots[index] = undefined
    this._count--
    this._bytes -= entry.size
  }

  /** Moves the head past holes; cuts them off once they are many and most of the array. */
  private compact (): void {
    while (this.head < this.slots.length && this.slots[this.head] === undefined) this.head++
    if (this.head === this.slots.length) {
      this.slots = []
      this.base = this.lastSeq + 1
      this.head = 0
    } else if (this.head >= COMPACT_AT && this.head * 2 >= this.slots.length) {
      this.slots = this.slots.slice(this.head)
      this.base += this.head
      this.head = 0
    }
  }

  private sweepExpired (size: number): void {
    const expired = new Tally()
    const now = Date.now()
    const end = Math.min(this.slots.length, this.head + SWEEP_LIMIT)
    for (let i = this.head; i < end && this.needsRoom(size); i++) {
      const message = this.slots[i]?.message
      if (message?.expiresAt === undefined || message.expiresAt > now) continue
      this.remove(i)
      expired.add(message.topic)
    }
    this._stats.expired += expired.count
    this.compact()
    this.report(expired, 'expired')
  }

  /** Drop-oldest: the newest entry always fits (an oversized one was refused), so only older ones go. */
  private evictOldest (): void {
    const overflow = new Tally()
    while (this.overLimit()) {
      overflow.add(this.slots[this.head]!.message.topic)
      this.remove(this.head)
      this.compact()
    }
    this._stats.droppedOverflow += overflow.count
    this.report(overflow, 'overflow')
  }

  private refuse (why: string): Promise<never> {
    this._stats.rejectedFull++
    this.log.warn({ store: WHERE, count: 1, stored: this._count, bytes: this._bytes }, 'pending store full: rejected new messages')
    return Promise.reject(new StoreFullError(why))
  }

  private report (tally: Tally, reason: DroppedEvent['reason']): void {
    if (tally.count === 0) return
    const event = tally.event(reason)
    this.log.warn({ store: WHERE, ...event }, 'pending store dropped messages')
    try {
      this.emit('dropped', event)
    } catch (err) {
      this.log.error({ store: WHERE, err }, 'pending store: dropped listener threw')
    }
  }
}

/** The store's own copy, in the shape LevelDB's decoding gives: optional fields only when set. */
function copyOf (seq: number, msg: PendingMessage): StoredMessage {
  const copy: StoredMessage = {
    seq,
    topic: msg.topic,
    payload: Buffer.from(msg.payload),
    qos: msg.qos,
    retain: msg.retain,
    clientId: msg.clientId,
    acceptedAt: msg.acceptedAt
  }
  if (msg.expiresAt !== undefined) copy.expiresAt = msg.expiresAt
  if (msg.anyBroker === true) copy.anyBroker = true
  if (msg.id !== undefined && msg.id !== '') copy.id = msg.id
  return copy
}
