import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { IClientPublishOptions, MqttClient } from 'mqtt'
import type { Logger } from '../logger.js'
import type { TierCounters } from '../state.js'
import type { PendingStore, StoredMessage } from '../store/index.js'
import type { BrokerEndpoint } from '../upstream/broker-endpoint.js'
import { MESSAGE_ID_PROPERTY } from '../mqtt/protocol.js'
import type { BrokerHealth } from '../upstream/broker-health.js'

export interface ReplayOptions {
  /** QoS 1/2 publishes in flight at once (mqtt.js has no window of its own). */
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

export interface ReplayerOptions {
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
  private client: MqttClient | undefined
  private inflight = 0
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

  constructor ({ health, store, replay, accepts, gate, counters, logger }: ReplayerOptions) {
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
    const client = await this.connect()
    if (client === undefined) return false
    const watchdog = setInterval(() => this.checkAcks(), this.health.endpoint.health.ackTimeoutMs / 2)
    try {
      return await this.stream(client)
    } finally {
      clearInterval(watchdog)
      this.client = undefined
      client.end(!client.connected)
    }
  }

  private async stream (client: MqttClient): Promise<boolean> {
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
        while (this.inflight >= this.options.window && !this.stopped) await this.waitForAck()
        if (this.stopped) return false
        if (this.options.ratePerSecond > 0) {
          const due = started + (sent / this.options.ratePerSecond) * 1000 - Date.now()
          if (due > 0) await sleep(due)
        }
        sent++
        this.publish(client, message)
      }
    }
  }

  private publish (client: MqttClient, message: StoredMessage): void {
    if (this.inflight++ === 0) this.lastAckAt = Date.now()
    client.publish(message.topic, message.payload, publishOptions(this.health.endpoint, message.qos, message.retain, message.id), (error) => {
      if (error != null) return // the connection is gone: the entry stays and is replayed again
      this.inflight--
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
    })
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
    while ((this.inflight > 0 || this.deleting > 0) && !this.stopped) await this.waitForAck()
  }

  /** A broker that takes a publish but never acks it is suspect: the replay stops and the broker is marked down. */
  private checkAcks (): void {
    if (this.inflight === 0 || Date.now() - this.lastAckAt < this.health.endpoint.health.ackTimeoutMs) return
    this.logger.warn({ broker: this.health.endpoint.name, inflight: this.inflight }, 'replay acks timed out')
    this.health.suspect('replay acks timed out')
    this.stop()
  }

  private connect (): Promise<MqttClient | undefined> {
    const { endpoint } = this.health
    const { options } = endpoint
    const client = endpoint.connectService({
      clientId: `${options.clientIdPrefix}dual-broker-replay-${randomBytes(4).toString('hex')}`,
      clean: true,
      keepalive: endpoint.health.keepaliveSeconds,
      ...endpoint.serviceCredentials
    })
    this.client = client
    client.on('error', (err) => this.logger.warn({ broker: endpoint.name, err: err.message }, 'replay session error'))
    client.on('close', () => this.stop())
    return new Promise((resolve) => {
      client.once('connect', () => {
        noDelay(client)
        resolve(client)
      })
      client.once('close', () => resolve(undefined))
    })
  }

  stop (): void {
    if (this.stopped) return
    this.stopped = true
    this.wake?.()
    this.client?.end(true)
  }
}

/** The tier's message id travels as a user property where the broker speaks MQTT 5 (see Deduplicator). */
function publishOptions (endpoint: BrokerEndpoint, qos: 0 | 1 | 2, retain: boolean, id: string | undefined): IClientPublishOptions {
  if (id === undefined || endpoint.options.protocolVersion !== 5) return { qos, retain }
  return { qos, retain, properties: { userProperties: { [MESSAGE_ID_PROPERTY]: id } } }
}

/** Replayed publishes are small writes: see listeners.ts on Nagle's algorithm. */
function noDelay (client: MqttClient): void {
  const socket = client.stream as { setNoDelay?: (noDelay: boolean) => void } | undefined
  socket?.setNoDelay?.(true)
}
