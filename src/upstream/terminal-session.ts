import { generate, type IPublishPacket } from 'mqtt-packet'
import { type Client, watchDrain } from '../aedes-types.js'
import { type Forwarding, type OutgoingPublish, Outbox } from '../failover/outbox.js'
import { InboundFlow } from '../limits/inbound-flow.js'
import { corkForTurn } from './packet-writer.js'
import type { UpstreamConnection } from './connection.js'
import { type DedupOptions, Deduplicator } from './dedup.js'
import type { BrokerHealth } from './broker-health.js'
import { type ConnectOutcome, type LinkOwner, type Qos, type TerminalIdentity, UpstreamLink, type UpstreamPublish } from './upstream-link.js'

export type { Qos }

const TERMINAL_GONE = new Error('terminal gone')

/**
 * One terminal's pair of upstream sessions (Broker1, Broker2), what it
 * subscribed to, and its publishes in flight. Keeps both sessions in line with
 * the terminal: a session lost while its broker is up is re-opened, and a
 * re-opened session gets the terminal's subscriptions again.
 */
export class TerminalSession implements LinkOwner {
  readonly links: readonly [UpstreamLink, UpstreamLink]
  readonly subscriptions = new Map<string, Qos>()
  readonly outbox: Outbox
  readonly flow: InboundFlow
  /** Another connection with the same client id took over: never reconnect. */
  superseded = false
  /** A connection with the same client id is being opened upstream: hold reconnects. */
  private yielding = false
  private closed = false
  private readonly retryTimers = new Set<NodeJS.Timeout>()
  private readonly dedup: Deduplicator
  /** Deliveries to a clean terminal handed to Aedes, not yet written to its socket: Aedes calls back in order. */
  private readonly unwritten: Array<{ packet: IPublishPacket, connection: UpstreamConnection }> = []
  /** Deliveries that came before the terminal was ready (a persistent session's queue, resent at once); undefined after. */
  private early: Array<{ packet: IPublishPacket, connection: UpstreamConnection, from: 0 | 1 }> | undefined = []
  private watchingDrain = false
  private readonly drained = (): void => { this.watchingDrain = false }
  private readonly written = (): void => {
    const { packet, connection } = this.unwritten.shift()!
    connection.delivered(packet)
  }

  constructor (
    readonly client: Client,
    readonly identity: TerminalIdentity,
    private readonly healths: readonly [BrokerHealth, BrokerHealth],
    private readonly forwarding: Forwarding,
    dedup: DedupOptions,
    maxInflight: number,
    /** QoS 0 deliveries to a clean terminal may bypass Aedes (see `deliver`). */
    private readonly qos0Direct: boolean
  ) {
    this.dedup = new Deduplicator(dedup)
    this.flow = new InboundFlow(maxInflight)
    this.links = [new UpstreamLink(healths[0].endpoint, 0, identity, this), new UpstreamLink(healths[1].endpoint, 1, identity, this)]
    this.outbox = new Outbox(this.links, forwarding, healths[0].endpoint.health.resendWindowMs)
  }

  /** Opens both sessions at once; a broker known down is skipped (it is brought in line when back). */
  open (): Promise<[ConnectOutcome, ConnectOutcome]> {
    return Promise.all([this.openLink(0), this.openLink(1)])
  }

  private openLink (index: 0 | 1): Promise<ConnectOutcome> {
    if (this.healths[index].state === 'down') return Promise.resolve({ kind: 'unreachable', reason: 'broker down' })
    return this.links[index].connect().then((outcome) => {
      // Up but slow (or lost before CONNACK): try again, as for a session lost later.
      if (outcome.kind === 'unreachable') this.retryLater(index)
      return outcome
    })
  }

  /** A broker came back (or a lost session's retry is due): re-open, re-subscribe, send what waited. */
  async bringInLine (index: 0 | 1): Promise<void> {
    const link = this.links[index]
    if (this.closed || this.superseded || this.yielding || link.online || link.connecting) return
    const outcome = await link.connect()
    if (outcome.kind !== 'accepted') {
      this.retryLater(index)
      return
    }
    if (this.closed || this.superseded) return
    await this.resubscribe(link, outcome.sessionPresent)
    this.outbox.flush()
  }

  private async resubscribe (link: UpstreamLink, sessionPresent: boolean): Promise<void> {
    if (!sessionPresent) link.applied.clear()
    const missing: Array<{ topic: string, qos: Qos }> = []
    for (const [topic, qos] of this.subscriptions) if (link.applied.get(topic) !== qos) missing.push({ topic, qos })
    if (missing.length === 0) return
    const granted = await link.subscribe(missing)
    for (const grant of granted ?? []) if (grant.qos !== 128) link.applied.set(grant.topic, grant.qos)
  }

  offline (link: UpstreamLink): void {
    this.outbox.reroute(link)
    this.retryLater(link.index)
  }

  published (message: UpstreamPublish, link: UpstreamLink): void {
    this.outbox.published(message as OutgoingPublish, link) // the links carry only what the outbox gave them
  }

  /** While the broker is down the health link's 'up' brings the session back instead. */
  private retryLater (index: 0 | 1): void {
    if (this.closed || this.superseded || this.yielding || this.healths[index].state === 'down') return
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer)
      void this.bringInLine(index)
    }, this.healths[index].endpoint.health.reconnectPeriodMs)
    this.retryTimers.add(timer)
  }

  /** A message from either broker goes to this terminal only; the broker's ack waits for Aedes. */
  deliver (packet: IPublishPacket, connection: UpstreamConnection, from: 0 | 1): void {
    if (this.client.closed) return connection.delivered(packet, TERMINAL_GONE)
    if (this.early !== undefined) { // [MQTT-3.2.0-1] the CONNACK is the first packet the terminal gets
      this.early.push({ packet, connection, from })
      return
    }
    if (this.dedup.isDuplicate(packet, from)) {
      this.forwarding.duplicate()
      return connection.delivered(packet)
    }
    const message = { cmd: 'publish' as const, topic: packet.topic, payload: packet.payload as Buffer, qos: packet.qos, retain: packet.retain, dup: false }
    if (this.identity.clean && packet.qos === 0 && this.qos0Direct) {
      // Nothing for Aedes to keep or hook (the instance has no authorizeForward of its own):
      // written as Aedes would, minus its immediate and packet copies. The upstream ack waits
      // for the write (the delivery window bounds what is buffered), and a terminal that
      // stopped reading is disconnected after limits.drainTimeoutMs, as by Aedes' own writes.
      this.unwritten.push({ packet, connection })
      corkForTurn(this.client.conn)
      if (!this.client.conn.write(generate(message), this.written) && !this.watchingDrain) {
        this.watchingDrain = true
        watchDrain(this.client, this.drained)
      }
      return
    }
    if (this.identity.clean) {
      // A clean session promises nothing beyond its connection: acked upstream once written to the terminal.
      this.unwritten.push({ packet, connection })
      this.client.publish(message, this.written)
      // Aedes writes each delivery from an immediate of its own: a burst leaves in one write.
      corkForTurn(this.client.conn)
      return
    }
    // A persistent session's broker keeps the message until Aedes has it (queued durably for the terminal).
    this.client.publish(message, (error) => connection.delivered(packet, error))
  }

  /** The terminal has its CONNACK (and what Aedes held for it): what the brokers sent before goes out now, in arrival order. */
  ready (): void {
    const early = this.early
    this.early = undefined
    for (const { packet, connection, from } of early ?? []) this.deliver(packet, connection, from)
  }

  /**
   * The same client id is connecting again, and each broker will take this
   * session over. Only the will holder may (it publishes the will once, as a
   * single broker would); the other sessions end with DISCONNECT first.
   */
  async yieldToTakeover (): Promise<void> {
    this.yielding = true
    const willAt = this.links.find((link) => link.online)
    const released = this.links.filter((link) => link !== willAt)
    await Promise.all(released.map((link) => link.release()))
    for (const link of released) this.outbox.reroute(link)
  }

  /** The connection that was to take over was refused: this session is the terminal's again. */
  resumeAfterTakeover (): void {
    this.yielding = false
    void this.bringInLine(0)
    void this.bringInLine(1)
  }

  ping (): void {
    for (const link of this.links) link.ping()
  }

  /**
   * Graceful: DISCONNECT at both brokers, so neither publishes the will. A drop:
   * the will is published by the broker that was taking the terminal's
   * publishes (Broker1 while its session is online, else Broker2), and the other
   * session ends with DISCONNECT, so that exactly one will is ever published.
   */
  close (graceful: boolean): void {
    if (this.closed) return
    this.closed = true
    for (const timer of this.retryTimers) clearTimeout(timer)
    this.retryTimers.clear()
    this.outbox.clear()
    const willAt = graceful ? undefined : this.links.find((link) => link.online)
    for (const link of this.links) link.end(link !== willAt)
  }
}
