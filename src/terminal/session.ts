import type { IPublishPacket } from 'mqtt-packet'
import type { Client } from '../aedes/internals.js'
import type { ReconnectReason, TierCounters } from '../state.js'
import { InboundFlow } from '../limits/inbound-flow.js'
import { FAILURE, type Qos } from '../mqtt/protocol.js'
import { Outbox, type OutboxPorts } from '../routing/outbox.js'
import type { BrokerHealth } from '../upstream/broker-health.js'
import type { UpstreamConnection } from '../upstream/connection.js'
import { type DedupOptions, Deduplicator } from '../upstream/dedup.js'
import { type ConnectOutcome, type LinkOwner, type TerminalIdentity, UpstreamLink } from '../upstream/upstream-link.js'
import { DeliveryRelay, type ForwardFilter, type RelayOwner } from './delivery-relay.js'
import type { Qos2Exchanges } from './qos2-exchanges.js'
import type { SessionLoss } from './session-loss.js'
import { type Grants, SubscribeBatch } from './subscribe-batch.js'

export interface TerminalSessionOptions {
  readonly client: Client
  /** What the terminal's CONNECT carried, with the client id Aedes settled on. */
  readonly identity: TerminalIdentity
  readonly healths: readonly [BrokerHealth, BrokerHealth]
  readonly outbox: OutboxPorts
  readonly counters: TierCounters
  readonly dedup: DedupOptions
  /** limits.maxInflight: the terminal's publishes not yet safe before Aedes stops reading it. */
  readonly maxInflight: number
  /** The Aedes instance's own authorizeForward, when it is not Aedes' default. */
  readonly forwardFilter: ForwardFilter | undefined
  /** The terminal's QoS 2 publishes until its PUBREL (see SessionRegistry.qos2Exchanges). */
  readonly qos2: Qos2Exchanges
  /** The node's record of sessions a broker came back without, until they are whole again. */
  readonly loss: SessionLoss
}

/**
 * One terminal's pair of upstream sessions (Broker1, Broker2), what it
 * subscribed to, and its publishes in flight. Keeps both sessions in line with
 * the terminal: a session lost while its broker is up is re-opened, and a
 * re-opened session gets the terminal's subscriptions again.
 */
export class TerminalSession implements LinkOwner, RelayOwner {
  readonly links: readonly [UpstreamLink, UpstreamLink]
  readonly subscriptions = new Map<string, Qos>()
  readonly outbox: Outbox
  readonly flow: InboundFlow
  /** Another connection with the same client id took over: never reconnect. */
  superseded = false
  /** A connection with the same client id is being opened upstream: hold reconnects. */
  private yielding = false
  private closed = false
  private closing: Promise<void> = Promise.resolve()
  private readonly retryTimers = new Set<NodeJS.Timeout>()
  /** What the brokers send this terminal, written to it; the terminal's acks of it go back through `acked`. */
  readonly relay: DeliveryRelay
  /** The filters subscribed in this turn, sent together at its end. */
  private batch: SubscribeBatch | undefined

  readonly client: Client
  readonly identity: TerminalIdentity
  readonly qos2: Qos2Exchanges
  private readonly healths: readonly [BrokerHealth, BrokerHealth]
  private readonly counters: TierCounters
  private readonly loss: SessionLoss
  /**
   * Every subscription of the terminal's session went through this connection, so `subscriptions`
   * holds them all: a clean session, or a CONNACK that told the terminal session present 0. With
   * session present 1 some were made in an earlier connection or through another node.
   */
  private knowsAll = true
  /** Asked to reconnect, and back: its first SUBSCRIBE ends the node's wait for it (SessionLoss.back). */
  private returning = false
  /** Asked to reconnect: its connection is being ended. */
  private asking = false

  constructor (options: TerminalSessionOptions) {
    const { client, identity, healths } = options
    this.client = client
    this.identity = identity
    this.qos2 = options.qos2
    this.healths = healths
    this.counters = options.counters
    this.loss = options.loss
    this.relay = new DeliveryRelay(client, this, new Deduplicator(options.dedup), options.forwardFilter, !identity.clean)
    this.flow = new InboundFlow(options.maxInflight)
    this.outbox = new Outbox(options.outbox)
    const link = (index: 0 | 1): UpstreamLink => new UpstreamLink({ endpoint: healths[index].endpoint, index, identity, owner: this, deliveries: this.relay, acks: this.outbox })
    this.links = [link(0), link(1)]
    this.relay.links = this.links
    this.outbox.routeTo(this.links)
  }

  /** The terminal is gone (or the tier closing): it takes no more publishes. */
  get ended (): boolean {
    return this.closed
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

  /**
   * A broker came back (or a lost session's retry is due): re-open, re-subscribe, send what waited.
   * A persistent terminal's session that the broker no longer has (session present 0) is made
   * whole before that broker carries the terminal's traffic: re-subscribed when the tier knows
   * every subscription (one SUBSCRIBE per broker, no sign of it to the terminal); otherwise the
   * terminal is asked to reconnect, as a broker that lost its session would have dropped it, and
   * reads session present 0 (see `askToReconnect`). Restoring costs a SUBACK round trip; asking
   * costs the terminal a reconnect and a SUBSCRIBE, but needs no copy of sessions in the tier.
   */
  async bringInLine (index: 0 | 1): Promise<void> {
    const link = this.links[index]
    if (this.closed || this.asking || this.superseded || this.yielding || link.online || link.connecting) return
    this.loss.opens(this, index) // failback waits for it from now on
    const outcome = await link.connect()
    if (outcome.kind !== 'accepted') {
      this.loss.opened(this, index)
      this.retryLater(index)
      return
    }
    if (this.closed || this.asking || this.superseded) return
    const lost = !outcome.sessionPresent && !this.identity.clean
    if (lost && !this.knowsAll) return this.askToReconnect(index, 'unknown-subscriptions')
    if (lost) this.loss.restoreBegins(this, index)
    const result = await this.resubscribe(link, outcome.sessionPresent)
    if (result === 'refused' && !this.identity.clean) return this.askToReconnect(index, 'restore-refused')
    if (result === 'whole') this.loss.restored(this, index)
    this.loss.opened(this, index)
    this.outbox.flush()
  }

  /**
   * The broker lost what the tier cannot give it back: the terminal's connection ends without
   * a will (the device did not go away). The session this connection just opened there is
   * discarded, so that the terminal's next CONNECT reads session present 0 and it subscribes
   * again, exactly as straight at that broker; the other broker's session ends with
   * DISCONNECT and keeps what it queued, delivered after the reconnect. Only then is the
   * terminal's socket closed, so its reconnect (through any node) finds all this done.
   */
  private async askToReconnect (index: 0 | 1, reason: ReconnectReason): Promise<void> {
    if (this.asking || this.closed) return
    this.asking = true
    this.loss.forget(this)
    this.loss.asked(this.identity.clientId, index, reason)
    await this.links[index].discard()
    await this.close(true)
    this.client.close()
  }

  /** What the terminal's CONNACK said: with session present 1 the tier knows only what it subscribes from now on. */
  reported (sessionPresent: boolean): void {
    this.knowsAll = this.identity.clean || !sessionPresent
    if (!this.knowsAll || this.identity.clean) this.loss.back(this.identity.clientId)
    else this.returning = true
  }

  /**
   * Registered at last: a broker that came back while the CONNECT was being
   * answered told only the sessions registered then, so a link it left
   * unopened is opened now.
   */
  catchUp (): void {
    for (const index of [0, 1] as const) {
      if (this.healths[index].state !== 'down') void this.bringInLine(index)
    }
  }

  /** Subscribes at both brokers; resolves with each one's granted QoS (undefined: unreachable now). */
  subscribeUpstream (topic: string, qos: Qos): Promise<Grants> {
    if (this.batch === undefined) {
      this.batch = new SubscribeBatch(this.links)
      process.nextTick(() => { this.batch = undefined })
    }
    const grants = this.batch.add(topic, qos)
    if (this.returning) {
      this.returning = false
      void grants.then(() => this.loss.back(this.identity.clientId))
    }
    return grants
  }

  /** Applies the subscriptions the broker lacks: `whole`, or `refused` (a filter got 0x80), or `lost` (no SUBACK: retried). */
  private async resubscribe (link: UpstreamLink, sessionPresent: boolean): Promise<'whole' | 'refused' | 'lost'> {
    if (!sessionPresent) link.applied.clear()
    const missing: Array<{ topic: string, qos: Qos }> = []
    for (const [topic, qos] of this.subscriptions) if (link.applied.get(topic) !== qos) missing.push({ topic, qos })
    if (missing.length === 0) return 'whole'
    const granted = await link.subscribe(missing)
    if (granted === undefined) {
      if (link.online) link.drop() // timed out while online: a new connection tries again
      return 'lost'
    }
    let refused = false
    for (const grant of granted) {
      if (grant.qos !== FAILURE) link.applied.set(grant.topic, grant.qos)
      else refused = true
    }
    return refused ? 'refused' : 'whole'
  }

  offline (link: UpstreamLink): void {
    this.outbox.reroute(link)
    this.retryLater(link.index)
  }

  /** While the broker is down the health link's 'up' brings the session back instead. */
  private retryLater (index: 0 | 1): void {
    if (this.closed || this.asking || this.superseded || this.yielding || this.healths[index].state === 'down') return
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer)
      void this.bringInLine(index)
    }, this.healths[index].endpoint.health.reconnectPeriodMs)
    this.retryTimers.add(timer)
  }

  /** The terminal has its CONNACK: deliveries may go out. */
  ready (): void {
    this.relay.ready()
  }

  duplicate (): void {
    this.counters.duplicates++
  }

  servesRetained (from: 0 | 1): boolean {
    return from === 0 || !this.links[0].online
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
   * Resolves once both brokers closed their side (see UpstreamConnection.close).
   */
  close (graceful: boolean): Promise<void> {
    if (this.closed) return this.closing
    this.closed = true
    this.loss.forget(this)
    for (const timer of this.retryTimers) clearTimeout(timer)
    this.retryTimers.clear()
    this.outbox.clear()
    this.relay.clear()
    const willAt = graceful ? undefined : this.links.find((link) => link.online)
    this.closing = Promise.all(this.links.map((link) => link.end(link !== willAt))).then(() => {})
    return this.closing
  }
}
