import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../logger.js'
import type { TierCounters } from '../state.js'
import type { PendingStore, StoredMessage } from '../store/index.js'
import type { BrokerHealth } from '../upstream/broker-health.js'
import { type ConnectionOwner, type ConnectOutcome, serviceOwner, UpstreamConnection, type UpstreamPublish } from '../upstream/connection.js'

export interface ReplayOptions {
  /** Publishes in flight at once: written but not yet acked (QoS 1/2) or taken by the socket (QoS 0). */
  window: number
  /** Messages per second; 0 = as fast as the broker acks. */
  ratePerSecond: number
}

export interface ReplayProgress { replayed: number, pending: number }

/** How a replay learns that nothing more is on its way into the store. */
export interface ReplayGate {
  /** Appends between their call and their commit: the replay is drained only at 0. */
  appending: () => number
  /** Resolves when `appending()` is 0. */
  whenQuiet: () => Promise<void>
  /**
   * The replay caught up with the store: new publishes must stop going into it (they wait
   * briefly instead), or under steady traffic the store is never seen empty.
   */
  caughtUp: () => void
}

export interface ReplayerParts {
  /** The health link of the broker replayed to: its endpoint, and whom to tell when acks time out. */
  health: BrokerHealth
  store: PendingStore
  replay: ReplayOptions
  /** Which entries this replay delivers; the others stay for a later one. */
  accepts: (message: StoredMessage) => boolean
  gate: ReplayGate
  counters: TierCounters
  logger: Logger
}

export interface ReplayerEvents {
  progress: [ReplayProgress]
}

const PROGRESS_INTERVAL_MS = 1000

/**
 * Streams the pending store to one broker over the tier's own replay session,
 * in seq order, with a window of in-flight publishes: memory stays bounded
 * whatever the backlog. An entry is deleted only after the broker acked it, so
 * a crash at any point replays it again (at least once), never loses it.
 */
export class Replayer extends EventEmitter<ReplayerEvents> {
  replayed = 0
  private connection: UpstreamConnection | undefined
  /** Written and not yet acked, with the store entry each one is. */
  private readonly inflight = new Map<UpstreamPublish, StoredMessage>()
  /** Acked entries whose delete is not committed yet: a drained replay leaves the store empty. */
  private deleting = 0
  private lastAckAt = 0
  private stopped = false
  private wake: (() => void) | undefined
  private lastProgressAt = 0
  private readonly health: BrokerHealth
  private readonly store: PendingStore
  private readonly options: ReplayOptions
  private readonly accepts: (message: StoredMessage) => boolean
  private readonly gate: ReplayGate
  private readonly counters: TierCounters
  private readonly logger: Logger
  private readonly owner: ConnectionOwner = serviceOwner({
    published: (message) => this.acked(message),
    closed: (connection, wasOnline) => this.onClosed(connection, wasOnline)
  })

  constructor ({ health, store, replay, accepts, gate, counters, logger }: ReplayerParts) {
    super()
    this.health = health
    this.store = store
    this.options = replay
    this.accepts = accepts
    this.gate = gate
    this.counters = counters
    this.logger = logger
  }

  /** Resolves true once everything it accepts was acked and nothing is left, false if interrupted. */
  async run (): Promise<boolean> {
    const connection = await this.connect()
    if (connection === undefined) return false
    const watchdog = setInterval(() => this.checkAcks(), this.health.endpoint.health.ackTimeoutMs / 2)
    try {
      return await this.stream(connection)
    } finally {
      clearInterval(watchdog)
      this.connection = undefined
      // Drained: DISCONNECT after the last acks. Interrupted: `stop` already dropped it.
      void connection.close(true)
    }
  }

  private async stream (connection: UpstreamConnection): Promise<boolean> {
    const pageSize = Math.max(this.options.window * 4, 256)
    const started = Date.now()
    let lastSeq = 0
    let sent = 0
    for (;;) {
      const page = await this.store.read(lastSeq, pageSize)
      if (page.length === 0) {
        await this.drainInflight()
        if (this.stopped) return false
        this.gate.caughtUp()
        await this.gate.whenQuiet()
        const rest = await this.store.read(lastSeq, 1)
        // Checked again after the read: publishes routed to the store while it ran go behind it, and
        // the caller switches to live traffic in the same turn of the event loop as this return.
        if (rest.length === 0 && !this.stopped && this.gate.appending() === 0) return true
        continue
      }
      for (const message of page) {
        lastSeq = message.seq
        if (!this.accepts(message)) continue
        while (this.inflight.size >= this.options.window && !this.stopped) await this.waitForAck()
        if (this.stopped) return false
        if (this.options.ratePerSecond > 0) {
          const due = started + (sent / this.options.ratePerSecond) * 1000 - Date.now()
          if (due > 0) await sleep(due)
        }
        sent++
        this.publish(connection, message)
      }
    }
  }

  /** The tier's message id travels as a user property where the broker speaks MQTT 5 (see Deduplicator). */
  private publish (connection: UpstreamConnection, message: StoredMessage): void {
    if (this.inflight.size === 0) this.lastAckAt = Date.now()
    const upstream: UpstreamPublish = { topic: message.topic, payload: message.payload, qos: message.qos, retain: message.retain, id: message.id }
    this.inflight.set(upstream, message)
    connection.publish(upstream)
  }

  /** Acked by the broker (QoS 1 PUBACK, QoS 2 PUBCOMP), or for QoS 0 taken by the socket: the entry goes. */
  private acked (upstream: UpstreamPublish): void {
    const message = this.inflight.get(upstream)
    if (message === undefined) return
    this.inflight.delete(upstream)
    // QoS 0 is reported as well when it was lost with the connection: then it stays for the next replay.
    if (this.connection?.online !== true) return
    this.replayed++
    this.counters.replayed++
    this.lastAckAt = Date.now()
    this.deleting++
    this.store.delete(message.seq)
      .catch((err: Error) => this.logger.error({ err, seq: message.seq }, 'pending store delete failed'))
      .finally(() => {
        this.deleting--
        this.wake?.()
      })
    this.reportProgress()
    this.wake?.()
  }

  private reportProgress (): void {
    const now = Date.now()
    if (now - this.lastProgressAt < PROGRESS_INTERVAL_MS) return
    this.lastProgressAt = now
    this.emit('progress', { replayed: this.replayed, pending: this.store.count })
  }

  private waitForAck (): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.wake = undefined
        resolve()
      }
    })
  }

  private async drainInflight (): Promise<void> {
    while ((this.inflight.size > 0 || this.deleting > 0) && !this.stopped) await this.waitForAck()
  }

  /** A broker that takes a publish but never acks it is suspect: the replay stops and the broker is marked down. */
  private checkAcks (): void {
    if (this.inflight.size === 0 || Date.now() - this.lastAckAt < this.health.endpoint.health.ackTimeoutMs) return
    this.logger.warn({ broker: this.health.endpoint.name, inflight: this.inflight.size }, 'replay acks timed out')
    this.health.suspect('replay acks timed out')
    this.stop()
  }

  private async connect (): Promise<UpstreamConnection | undefined> {
    const { endpoint } = this.health
    // QoS 2 entries go at PUBCOMP: nothing resends what a broker PUBRECed before the session ended.
    const connection = new UpstreamConnection(this.owner, endpoint, endpoint.serviceConnect('replay'), {
      localAddress: endpoint.serviceAddress,
      qos2SafeAtPubcomp: true
    })
    this.connection = connection
    const outcome = await connection.open()
    if (outcome.kind === 'accepted' && connection.online) return connection
    if (outcome.kind !== 'accepted' && !this.stopped) this.logger.warn({ broker: endpoint.name, err: describe(outcome) }, 'replay session error')
    return undefined
  }

  private onClosed (connection: UpstreamConnection, wasOnline: boolean): void {
    if (wasOnline && !this.stopped) this.logger.warn({ broker: this.health.endpoint.name, err: connection.closeReason }, 'replay session error')
    this.stop()
  }

  stop (): void {
    if (this.stopped) return
    this.stopped = true
    this.wake?.()
    void this.connection?.abort('replay stopped')
  }
}

function describe (outcome: Exclude<ConnectOutcome, { kind: 'accepted' }>): string {
  return outcome.kind === 'refused' ? `connection refused: return code ${outcome.returnCode}` : outcome.reason
}
