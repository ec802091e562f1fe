import type { IPublishPacket } from 'mqtt-packet'
import type { Callback, MessageHandler, PublishPacket } from '../aedes/internals.js'
import { DualBrokerError } from '../errors.js'
import { FAILURE, type Qos } from '../mqtt/protocol.js'
import { invalidFilter, invalidTopic } from '../mqtt/topic-rules.js'
import { Outbox, type OutboxPorts, OutgoingPublish } from '../routing/outbox.js'
import type { TierCounters } from '../state.js'
import type { BrokerHealth } from '../upstream/broker-health.js'
import type { UpstreamConnection } from '../upstream/connection.js'
import { type DedupOptions, Deduplicator } from '../upstream/dedup.js'
import type { MessageIds } from '../upstream/message-ids.js'
import { type DeliverySink, type LinkOwner, UpstreamLink } from '../upstream/upstream-link.js'
import { type PublishObservers, PublishObservations } from './observations.js'
import { ServerSubscriptions } from './server-subscriptions.js'

export interface NodeSessionOptions {
  /** The node's client id at both brokers (`node.clientId`). */
  readonly clientId: string
  readonly healths: readonly [BrokerHealth, BrokerHealth]
  readonly outbox: OutboxPorts
  readonly counters: TierCounters
  readonly dedup: DedupOptions
  readonly messageIds: MessageIds | undefined
  readonly observers: PublishObservers
  /** What the handlers of `aedes.subscribe` are given: a packet as Aedes makes it. */
  readonly packetFor: (content: { topic: string, payload: Buffer, qos: number, retain: boolean }) => PublishPacket
}

/** The deployment's code hears the brokers as a QoS 2 subscriber would: every message at the QoS it was published with. */
const SUBSCRIBE_QOS: Qos = 2
const KEEPALIVE_SECONDS = 60

/**
 * The node as one more client of the brokers: its own upstream session on each
 * (a clean one: what it holds — the deployment's handlers — lives only in this
 * process). The deployment's `aedes.publish` goes out through it, routed by the
 * topic's policy like a terminal's publish, and what its `aedes.subscribe`
 * filters match at the brokers comes back through it, to those handlers.
 */
export class NodeSession implements LinkOwner, DeliverySink {
  readonly links: readonly [UpstreamLink, UpstreamLink]
  readonly outbox: Outbox
  readonly clientId: string
  private readonly subscriptions = new ServerSubscriptions()
  private readonly dedup: Deduplicator
  private readonly observations: PublishObservations
  private readonly retryTimers = new Set<NodeJS.Timeout>()
  private readonly opening: [Promise<void> | undefined, Promise<void> | undefined] = [undefined, undefined]
  private closed = false

  constructor (private readonly options: NodeSessionOptions) {
    const { clientId, healths } = options
    this.clientId = clientId
    this.outbox = new Outbox(options.outbox)
    this.dedup = new Deduplicator(options.dedup)
    this.observations = new PublishObservations(null, options.observers)
    const link = (index: 0 | 1): UpstreamLink => new UpstreamLink({
      endpoint: healths[index].endpoint,
      index,
      // The tier's own credentials (`service`), never a terminal's.
      identity: { clientId, clean: true, keepalive: KEEPALIVE_SECONDS, service: true, ...credentialsOf(healths[index].endpoint.serviceCredentials) },
      owner: this,
      deliveries: this,
      acks: this.outbox
    })
    this.links = [link(0), link(1)]
    this.outbox.routeTo(this.links)
  }

  /** Opens both sessions (a broker known down is brought in line when back). */
  async open (): Promise<void> {
    await Promise.all([this.bringInLine(0), this.bringInLine(1)])
  }

  /** A broker came back (or a retry is due): re-open the session and subscribe every filter again. */
  bringInLine (index: 0 | 1): Promise<void> {
    const link = this.links[index]
    if (this.closed || link.online || this.options.healths[index].state === 'down') return Promise.resolve()
    // One attempt at a time; whoever asks meanwhile (the start, a broker's return) waits for that one.
    this.opening[index] ??= this.reopen(link).finally(() => { this.opening[index] = undefined })
    return this.opening[index]
  }

  private async reopen (link: UpstreamLink): Promise<void> {
    const outcome = await link.connect()
    if (outcome.kind !== 'accepted') return this.retryLater(link.index)
    const filters = [...this.subscriptions.filters]
    // A clean session holds nothing of a previous connection's [MQTT-3.1.2-6]: every filter again.
    if (filters.length > 0) await link.subscribe(filters.map((topic) => ({ topic, qos: SUBSCRIBE_QOS })))
    this.outbox.flush()
  }

  private retryLater (index: 0 | 1): void {
    if (this.closed || this.options.healths[index].state === 'down') return
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer)
      void this.bringInLine(index)
    }, this.options.healths[index].endpoint.health.reconnectPeriodMs)
    this.retryTimers.add(timer)
  }

  /**
   * A publish of the deployment's own code: `done` once it is safe (QoS 0:
   * written to a broker), with an error when it cannot be — dropped by the
   * policy, refused by the store, or the tier closing.
   */
  publish (packet: PublishPacket, done: Callback): void {
    if (this.closed) return done(CLOSING)
    const invalid = invalidTopic(packet.topic)
    if (invalid !== undefined) return done(new DualBrokerError('DUALBROKER_ERR_INVALID_TOPIC', `aedes.publish: ${invalid}`))
    const { payload } = packet
    const content = {
      topic: packet.topic,
      payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload ?? ''),
      qos: Math.min(packet.qos ?? 0, 2) as Qos,
      retain: packet.retain === true
    }
    const message: OutgoingPublish = new OutgoingPublish(content, this.clientId, this.options.messageIds?.next(), (error) => {
      done(error ?? (message.dropped ? dropped(message) : undefined))
    })
    if (this.options.observers.active()) this.observations.expect(message, packet)
    this.outbox.send(message)
  }

  /** `done` once every reachable broker answered; with an error if one refused the filter. */
  subscribe (filter: string, handler: MessageHandler, done: Callback): void {
    // A broker closes the connection that sends a malformed filter: the node's session would never stay up.
    const invalid = invalidFilter(filter)
    if (invalid !== undefined) return done(new DualBrokerError('DUALBROKER_ERR_INVALID_TOPIC', `aedes.subscribe: ${invalid}`))
    if (!this.subscriptions.add(filter, handler)) return done()
    const subscribed = this.links.map((link) => link.subscribe([{ topic: filter, qos: SUBSCRIBE_QOS }]))
    void Promise.all(subscribed).then((grants) => {
      const refused = grants.some((granted) => granted?.[0]?.qos === FAILURE)
      done(refused ? new DualBrokerError('DUALBROKER_ERR_SUBSCRIBE_REFUSED', `a broker refused the node's subscription to ${filter}`) : undefined)
    })
  }

  unsubscribe (filter: string, handler: MessageHandler): void {
    if (this.subscriptions.remove(filter, handler)) for (const link of this.links) link.unsubscribe([filter])
  }

  /** A message the brokers routed to the node: to the deployment's handlers, acked upstream once they all called back. */
  deliver (packet: IPublishPacket, connection: UpstreamConnection, from: 0 | 1): void {
    // [MQTT-3.3.1-8] retain is set only on what a new subscription brings: `aedes.subscribe` is never sent retained messages.
    if (packet.retain) return settle(packet, connection)
    if (this.dedup.isDuplicate(packet, from)) {
      this.options.counters.duplicates++
      return settle(packet, connection)
    }
    const message = this.options.packetFor({ topic: packet.topic, payload: packet.payload as Buffer, qos: packet.qos, retain: false })
    this.subscriptions.deliver(message, () => settle(packet, connection))
  }

  released (messageId: number, connection: UpstreamConnection): void {
    connection.acknowledge('pubcomp', messageId)
  }

  offline (link: UpstreamLink): void {
    this.outbox.reroute(link)
    this.retryLater(link.index)
  }

  /** Ends both sessions; what the deployment published and is not yet safe is answered with an error. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const timer of this.retryTimers) clearTimeout(timer)
    this.outbox.clear(CLOSING)
    await Promise.all(this.links.map((link) => link.end(true)))
  }
}

function settle (packet: IPublishPacket, connection: UpstreamConnection): void {
  if (packet.qos > 0) connection.acknowledge(packet.qos === 1 ? 'puback' : 'pubrec', packet.messageId!)
}

const CLOSING = new DualBrokerError('DUALBROKER_ERR_CLOSING', 'the tier is closing: the publish was not made safe')

function dropped (message: OutgoingPublish): DualBrokerError {
  if (message.refusedWith !== undefined) {
    return new DualBrokerError('DUALBROKER_ERR_DROPPED', `publish to ${message.topic} refused by the broker (MQTT 5 reason 0x${message.refusedWith.toString(16)})`)
  }
  return new DualBrokerError('DUALBROKER_ERR_DROPPED', message.qos === 0
    ? `QoS 0 publish to ${message.topic} dropped: no broker could take it, and QoS 0 is never held`
    : `publish to ${message.topic} dropped by its policy while Broker1 is down`)
}

function credentialsOf ({ username, password }: { username?: string, password?: string }): { username?: string, password?: Buffer } {
  return { ...(username !== undefined && { username }), ...(password !== undefined && { password: Buffer.from(password) }) }
}
