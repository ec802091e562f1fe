import type { Logger } from '../logger.js'
import type { Qos } from '../mqtt/protocol.js'

/** A publish accepted from a terminal, waiting to be forwarded to Broker1. */
export interface PendingMessage {
  topic: string
  /** Stored and returned byte for byte. */
  payload: Buffer
  qos: Qos
  retain: boolean
  clientId: string
  /** When the access tier accepted the publish (ms since epoch). */
  acceptedAt: number
  /** Absolute expiry (ms since epoch), e.g. derived from a TTL; omitted = never expires. */
  expiresAt?: number
  /** May be delivered to whichever broker is back first (policy `failover`), not only Broker1. */
  anyBroker?: boolean
  /** The tier's message id, sent as an MQTT 5 user property so copies can be recognised. */
  id?: string
}

/**
 * A message as committed to the store. `seq` is a positive safe integer,
 * strictly increasing in append order and across restarts (never reused,
 * not necessarily contiguous).
 */
export interface StoredMessage extends PendingMessage {
  seq: number
}

export interface StoreStats {
  /** Appends that were committed (including ones later dropped as oldest). */
  appended: number
  /** Entries removed by `delete()` (acknowledged by Broker1). */
  deleted: number
  /** Entries dropped to make room under `overflow: 'drop-oldest'`. */
  droppedOverflow: number
  /** Appends rejected with `StoreFullError` under `overflow: 'reject-new'`. */
  rejectedFull: number
  /** Entries found expired by `read()` and deleted. */
  expired: number
  /** `db.batch` writes issued by LevelDB (one per group commit); always 0 in memory. */
  batches: number
}

export interface DroppedEvent {
  reason: 'overflow' | 'expired'
  count: number
  /** Set when every dropped entry of this event had the same topic. */
  topic?: string
}

export interface PendingStoreEvents {
  dropped: [DroppedEvent]
}

/**
 * The FIFO of publishes waiting for Broker1: everything the tier asks of a pending store, so that
 * any implementation fits behind it (the plugin's `pendingStore` option), as Aedes takes any
 * persistence. `LevelPendingStore` (durable, the default) and `MemoryPendingStore` (not durable)
 * both keep it; test/store-contract.test.ts runs the same suite against each.
 *
 * The tier owns the store's life: it calls `open()` once at start and `close()` when it closes.
 */
export interface PendingStore {
  /** Called once, before any other method; rejects when the store cannot be used. */
  open(): Promise<void>
  /**
   * Resolves once the message is committed (durable per the store's own terms). Rejects with
   * `StoreFullError` when a bound refuses it, `StoreClosedError` when the store is not open.
   */
  append(msg: PendingMessage): Promise<StoredMessage>
  /**
   * Up to `limit` live messages with seq > `afterSeq`, in seq order.
   * Expired entries met on the way are skipped, deleted and counted.
   * An empty result means there is nothing after `afterSeq`.
   */
  read(afterSeq?: number, limit?: number): Promise<StoredMessage[]>
  /** Pages through `read()`; memory stays bounded by `pageSize`. */
  iterate(afterSeq?: number, pageSize?: number): AsyncIterableIterator<StoredMessage>
  /** Removes an entry once Broker1 acknowledged it. Unknown seqs are ignored. */
  delete(seq: number): Promise<void>
  readonly count: number
  /** Sum of topic (utf8) + payload bytes of the stored entries. */
  readonly bytes: number
  readonly stats: Readonly<StoreStats>
  /** Flushes queued writes, then closes; later calls of the other methods reject with `StoreClosedError`. */
  close(): Promise<void>
  /** `dropped`: entries removed unacknowledged (a bound under `drop-oldest`, or expired); the tier counts and re-emits it. */
  on<E extends keyof PendingStoreEvents>(event: E, listener: (...args: PendingStoreEvents[E]) => void): unknown
  off<E extends keyof PendingStoreEvents>(event: E, listener: (...args: PendingStoreEvents[E]) => void): unknown
}

export type FsyncMode = 'always' | 'batch' | 'never'
export type OverflowPolicy = 'drop-oldest' | 'reject-new'

/** The store writes to the tier's logger (any pino instance fits). */
export type StoreLogger = Pick<Logger, 'info' | 'warn' | 'error'>

/** What every store bounds itself by; checked by its constructor. */
export interface StoreBounds {
  /** Most messages kept (a positive integer). */
  maxMessages: number
  /** Most bytes kept, counted as topic (utf8) + payload (a positive integer). */
  maxBytes: number
  /** At a bound: evict the oldest entries (`dropped` event), or refuse the new message (`StoreFullError`). */
  overflow: OverflowPolicy
  logger?: StoreLogger
}

export interface LevelPendingStoreOptions extends StoreBounds {
  path: string
  /**
   * 'always': one synced write per append (no grouping);
   * 'batch' (default): group commit, every group written with sync;
   * 'never': group commit without sync (survives a process crash, not an OS crash).
   */
  fsync?: FsyncMode
}

/** `MemoryPendingStore` keeps the same bounds; it has no file and no fsync. */
export type MemoryPendingStoreOptions = StoreBounds
