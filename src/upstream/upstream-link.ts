import type { IConnectPacket, IPublishPacket } from 'mqtt-packet'
import type { BrokerEndpoint } from './broker-endpoint.js'
import { type ConnectionOwner, type ConnectOutcome, type Grant, type Qos, serviceOwner, UpstreamConnection, type UpstreamPublish } from './connection.js'
import { FAILURE } from '../mqtt/protocol.js'
import { SingleCopy } from './single-copy.js'

export type { ConnectOutcome, Grant, Qos, UpstreamPublish }

/** What a terminal's CONNECT carried, replayed to each broker. */
export interface TerminalIdentity {
  clientId: string
  username?: string
  password?: Buffer
  clean: boolean
  keepalive: number
  will?: { topic: string, payload: Buffer, qos: Qos, retain: boolean }
  /** One of the tier's own sessions (the node's): its credentials are its own, not replaced by the broker's `username`. */
  service?: boolean
}

/** Where a link reports that its broker acked a publish (the terminal's outbox). */
export interface PublishAcks {
  published (message: UpstreamPublish, link: UpstreamLink): void
  /** The broker refused the message for good (MQTT 5, see `isFinalRefusal`). */
  refused (message: UpstreamPublish, link: UpstreamLink, reasonCode: number): void
}

/** The terminal's session, told what the brokers send and when a link goes offline. */
export interface LinkOwner {
  /** The link lost its connection after having been online (not on `end`, `release` or `drop`'s caller's behalf). */
  offline: (link: UpstreamLink) => void
}

/** Where what the broker sends the session goes: straight to the relay that writes it to the terminal. */
export interface DeliverySink {
  deliver: (packet: IPublishPacket, connection: UpstreamConnection, from: 0 | 1) => void
  released: (messageId: number, connection: UpstreamConnection, from: 0 | 1) => void
}

export interface UpstreamLinkOptions {
  readonly endpoint: BrokerEndpoint
  /** 0: the terminal's session at Broker1; 1: at Broker2. */
  readonly index: 0 | 1
  readonly identity: TerminalIdentity
  readonly owner: LinkOwner
  readonly deliveries: DeliverySink
  readonly acks: PublishAcks
}

function ignore (): void {}

const BUSY: ConnectOutcome = { kind: 'unreachable', reason: 'busy' }

/**
 * One terminal's session at one broker, across connections: a fresh
 * connection per attempt, so that nothing queued for a dead connection is
 * ever re-sent behind the tier's back (the terminal session re-routes what
 * was in flight), and the subscriptions the broker is known to hold.
 */
export class UpstreamLink implements ConnectionOwner {
  /** Subscriptions this broker is known to hold for the terminal: re-applied after a reconnect. */
  readonly applied = new Map<string, number>()
  readonly endpoint: BrokerEndpoint
  readonly index: 0 | 1
  private readonly identity: TerminalIdentity
  private readonly owner: LinkOwner
  private readonly deliveries: DeliverySink
  private readonly acks: PublishAcks
  private connection: UpstreamConnection | undefined
  private ended = false
  /** The filters as the broker holds them, for one copy per message over MQTT 5 (see SingleCopy). */
  private readonly copies = new SingleCopy()
  /** QoS 2 copies settled as extra whose PUBREL is still to come: answered here, the terminal never saw them. */
  private extraReleases: Set<number> | undefined

  constructor ({ endpoint, index, identity, owner, deliveries, acks }: UpstreamLinkOptions) {
    this.endpoint = endpoint
    this.index = index
    this.identity = identity
    this.owner = owner
    this.deliveries = deliveries
    this.acks = acks
  }

  get online (): boolean {
    return this.connection?.online === true
  }

  get connecting (): boolean {
    return this.connection !== undefined && !this.connection.online
  }

  /** One connection attempt, bounded by `health.connectTimeoutMs`. */
  connect (): Promise<ConnectOutcome> {
    if (this.connection !== undefined || this.ended) return Promise.resolve(BUSY)
    this.connection = new UpstreamConnection(this, this.endpoint, this.connectPacket())
    return this.connection.open().then((outcome) => {
      // A new session at the broker holds no filter [MQTT-3.1.2-6], and no exchange of the old one.
      if (outcome.kind === 'accepted' && !outcome.sessionPresent) {
        this.copies.clear()
        this.extraReleases = undefined
      }
      return outcome
    })
  }

  /**
   * The terminal's CONNECT as this broker gets it. Over MQTT 5 it also carries what 3.1.1 cannot
   * say: the Receive Maximum that bounds the deliveries in flight to this terminal
   * [MQTT-3.3.4-9], a persistent session's expiry (clean = false: `sessions.expirySeconds`,
   * "never" by default, the 3.1.1 meaning [MQTT-3.1.2-23]; clean = true: none, the session ends
   * with the connection), and the will's delay, so that a terminal whose node was lost and that
   * is back within it, through any node, publishes no will [MQTT-3.1.3-9].
   */
  private connectPacket (): IConnectPacket {
    const { identity, endpoint } = this
    const { options, terms } = endpoint
    const protocolVersion = endpoint.protocolVersion
    const own = identity.service === true
    const username = own ? identity.username : options.username ?? identity.username
    const password = own || options.password === undefined ? identity.password : Buffer.from(options.password)
    const mqtt5 = protocolVersion === 5
    return {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion,
      clientId: options.clientIdPrefix + identity.clientId,
      clean: identity.clean,
      keepalive: identity.keepalive,
      ...(username !== undefined && { username }),
      ...(password !== undefined && { password }),
      ...(identity.will !== undefined && {
        will: mqtt5 && terms.willDelaySeconds > 0 ? { ...identity.will, properties: { willDelayInterval: terms.willDelaySeconds } } : identity.will
      }),
      ...(mqtt5 && {
        properties: { receiveMaximum: terms.receiveMaximum, ...(!identity.clean && { sessionExpiryInterval: terms.sessionExpirySeconds }) }
      })
    }
  }

  /**
   * The connection that acknowledges a delivery the broker sent on `sentOn`:
   * that one while it is open; after a reconnect the new one, if the broker
   * kept the session (the packet identifier is the session's, [MQTT-4.4.0-1]);
   * otherwise none, and the ack has nothing left to settle.
   */
  ackingFor (sentOn: UpstreamConnection): UpstreamConnection | undefined {
    if (sentOn.online) return sentOn
    const current = this.connection
    return current?.online === true && current.sessionPresent && !this.identity.clean ? current : undefined
  }

  holdDeliveries (): void {
    this.connection?.holdDeliveries()
  }

  resumeDeliveries (): void {
    this.connection?.resumeDeliveries()
  }

  publish (message: UpstreamPublish): void {
    this.connection!.publish(message)
  }

  /** Resolves with the grants, or undefined if the link is offline, was lost or timed out. */
  subscribe (subscriptions: ReadonlyArray<{ topic: string, qos: Qos }>): Promise<Grant[] | undefined> {
    if (!this.online) return Promise.resolve(undefined)
    const connection = this.connection!
    if (!connection.subscriptionIdentifiers) return connection.subscribe(subscriptions)
    return this.subscribeIdentified(connection, subscriptions)
  }

  /**
   * Over MQTT 5 each wildcard filter goes in a SUBSCRIBE of its own, with its Subscription
   * Identifier (one per packet, §3.8.2.1.2); the filters without wildcards go together in one,
   * without. The grants come back in the order asked.
   */
  private async subscribeIdentified (connection: UpstreamConnection, subscriptions: ReadonlyArray<{ topic: string, qos: Qos }>): Promise<Grant[] | undefined> {
    const packets = new Map<number | undefined, number[]>()
    subscriptions.forEach(({ topic }, i) => {
      const identifier = this.copies.sent(topic)
      const indexes = packets.get(identifier)
      if (indexes === undefined) packets.set(identifier, [i])
      else indexes.push(i)
    })
    const answers = await Promise.all([...packets].map(([identifier, indexes]) => connection.subscribe(indexes.map((i) => subscriptions[i]), identifier)))
    const grants: Grant[] = new Array(subscriptions.length)
    let lost = false
    let p = 0
    for (const indexes of packets.values()) {
      const answer = answers[p++]
      if (answer === undefined) { lost = true; continue } // no SUBACK: recognised, never the copy kept
      indexes.forEach((i, k) => {
        grants[i] = answer[k]
        this.copies.granted(answer[k].topic, answer[k].qos === FAILURE ? undefined : answer[k].qos)
      })
    }
    return lost ? undefined : grants
  }

  unsubscribe (topics: string[]): void {
    for (const topic of topics) this.applied.delete(topic)
    if (!this.online) return
    const connection = this.connection!
    if (!connection.subscriptionIdentifiers) return connection.unsubscribe(topics)
    // Copies the broker sent before it read the UNSUBSCRIBE come before its UNSUBACK: until then the filters count.
    for (const topic of topics) this.copies.leaving(topic)
    connection.unsubscribe(topics, () => { for (const topic of topics) this.copies.left(topic) })
  }

  ping (): void {
    if (this.online) this.connection!.sendPing()
  }

  /**
   * Gives up on a connection the health link found dead (a frozen broker sends
   * no reset). DISCONNECT is written first so that a broker which thaws later
   * does not publish the terminal's will for a drop that was the tier's choice.
   */
  drop (): void {
    const connection = this.connection
    if (connection === undefined) return
    this.connection = undefined
    const wasOnline = connection.online
    void connection.close(true)
    if (wasOnline && !this.ended) this.owner.offline(this)
  }

  /**
   * Ends this connection with DISCONNECT (no will) and resolves once it is
   * closed. Unlike `end`, the link may connect again later, and the owner is
   * not told: the terminal session chose this.
   */
  release (): Promise<void> {
    const connection = this.connection
    this.connection = undefined
    return connection?.close(true) ?? Promise.resolve()
  }

  /**
   * Leaves no session of the terminal at this broker: the connection ends with DISCONNECT, then
   * a clean CONNECT (no will) and its DISCONNECT end the session there [MQTT-3.1.2-6]. For a
   * session the broker came back without and the tier cannot make whole: the terminal's next
   * CONNECT then reads session present 0 here, as it would straight at this broker.
   */
  async discard (): Promise<void> {
    await this.release()
    const packet = this.connectPacket()
    delete packet.will
    delete packet.properties
    const wipe = new UpstreamConnection(serviceOwner({ published: ignore, closed: ignore }), this.endpoint, { ...packet, clean: true })
    await wipe.open()
    await wipe.close(true)
  }

  /**
   * Graceful: DISCONNECT, so the broker discards the will. Otherwise the
   * connection drops without DISCONNECT and the broker publishes the will.
   */
  end (graceful: boolean): Promise<void> {
    this.ended = true
    const connection = this.connection
    this.connection = undefined
    return connection?.close(graceful) ?? Promise.resolve()
  }

  published (message: UpstreamPublish): void {
    this.acks.published(message, this)
  }

  refused (message: UpstreamPublish, reasonCode: number): void {
    this.acks.refused(message, this, reasonCode)
  }

  /** [MQTT-3.3.5-1] as a 3.1.1 session: of an MQTT 5 broker's copies per matching filter, one reaches the owner; the others are settled here. */
  deliver (packet: IPublishPacket, connection: UpstreamConnection): void {
    if (connection.subscriptionIdentifiers && this.copies.extra(packet)) return this.settleExtra(packet, connection)
    this.deliveries.deliver(packet, connection, this.index)
  }

  private settleExtra (packet: IPublishPacket, connection: UpstreamConnection): void {
    if (packet.qos === 1) connection.acknowledge('puback', packet.messageId!)
    if (packet.qos !== 2) return
    connection.acknowledge('pubrec', packet.messageId!)
    this.extraReleases ??= new Set()
    this.extraReleases.add(packet.messageId!)
  }

  released (messageId: number, connection: UpstreamConnection): void {
    if (this.extraReleases?.delete(messageId) === true) return connection.acknowledge('pubcomp', messageId)
    this.deliveries.released(messageId, connection, this.index)
  }

  closed (connection: UpstreamConnection, wasOnline: boolean): void {
    if (this.connection !== connection) return
    this.connection = undefined
    if (wasOnline && !this.ended) this.owner.offline(this)
  }
}
