import type { Duplex } from 'node:stream'
import { generate, type IConnackPacket, type IConnectPacket, type IPublishPacket, type ISubackPacket, type ISubscribePacket, type IUnsubackPacket, type Packet, parser, type Parser } from 'mqtt-packet'
import type { BrokerEndpoint } from './broker-endpoint.js'
import { type KeepaliveTarget, keepalives } from './keepalive.js'
import { ackPacket } from '../mqtt/ack-packets.js'
import { FAILURE, isFinalRefusal, MAX_PACKET_ID, type Qos } from '../mqtt/protocol.js'
import { PacketWriter } from '../mqtt/packet-writer.js'
import { type FallbackParser, PacketReader } from '../mqtt/packet-reader.js'
import { publishPacket, publishWithId } from '../mqtt/publish-packet.js'
import { toMqtt311ReturnCode } from '../mqtt/return-codes.js'
import { isSourcePortError } from './source-addresses.js'
import { openTransport } from './transport.js'

export type { Qos }

/** A terminal publish as one broker sees it. */
export interface UpstreamPublish {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: Qos
  readonly retain: boolean
  /** The tier's message id, sent as a user property to MQTT 5 brokers (see Deduplicator). */
  readonly id: string | undefined
}

export type ConnectOutcome =
  | { kind: 'accepted', sessionPresent: boolean }
  | { kind: 'refused', returnCode: number }
  /** `sourcePorts`: no source port was free for the socket (see SourceAddresses). */
  | { kind: 'unreachable', reason: string, sourcePorts?: true }

/** The granted QoS per topic filter; FAILURE (0x80) = refused. */
export interface Grant { topic: string, qos: number }

/** Who hears what happens on a connection: the terminal's session, or one of the tier's own sessions. */
export interface ConnectionOwner {
  /** QoS 1/2: the broker acked the message. QoS 0: written, or lost with the connection. */
  published: (message: UpstreamPublish) => void
  /**
   * MQTT 5: the broker refused the message for good (`isFinalRefusal`: not authorized, an invalid
   * topic or payload); without this, such a refusal settles it as `published` does, as a 3.1.1
   * broker acks and drops it.
   */
  refused?: (message: UpstreamPublish, reasonCode: number) => void
  /** A message for the terminal; its QoS 1/2 ack is sent with `acknowledge` once the terminal acked. */
  deliver: (packet: IPublishPacket, connection: UpstreamConnection) => void
  /** The broker's PUBREL of a QoS 2 delivery: its PUBCOMP waits for the terminal's. */
  released: (messageId: number, connection: UpstreamConnection) => void
  /** Closed; `wasOnline` unless it never got its CONNACK or was closed by `close`. */
  closed: (connection: UpstreamConnection, wasOnline: boolean) => void
}

/** How one connection differs from a terminal's (the defaults): for the tier's own sessions. */
export interface ConnectionOptions {
  /** How long `open` waits for the CONNACK; default `health.connectTimeoutMs`. */
  connectTimeoutMs?: number
  /** The socket's source address, instead of one from the endpoint's pool (`broker*.localAddresses`); undefined: from the pool. */
  localAddress?: string
  /**
   * QoS 2 is reported safe at PUBCOMP, not at PUBREC: for a session with no resend window behind
   * it (the replay). A broker that releases QoS 2 on PUBREL (mosquitto) drops a message whose
   * PUBREL it never read when a clean session ends [MQTT-3.1.2-6].
   */
  qos2SafeAtPubcomp?: boolean
}

/**
 * The owner of one of the tier's own sessions (health link, replay): they subscribe to nothing,
 * so nothing is delivered to them.
 */
export function serviceOwner (owner: Pick<ConnectionOwner, 'published' | 'closed'>): ConnectionOwner {
  return { published: owner.published, closed: owner.closed, deliver: ignore, released: ignore }
}

function ignore (): void {}

const TERMINAL: ConnectionOptions = {}

const DISCONNECT = Buffer.from([0xe0, 0x00]) // [MQTT-3.14.1]: remaining length 0; valid in 3.1.1 and 5
const PINGREQ = Buffer.from([0xc0, 0x00]) // [MQTT-3.12.1]
/** The close reason of a connection whose broker did not answer CONNECT within the connect timeout. */
export const NO_CONNACK = 'no CONNACK in time'
/** How long a closing connection may take to hand its last packets to a broker that does not read them. */
const CLOSE_GRACE_MS = 1000

/**
 * One MQTT client connection to one broker, on `mqtt-packet` over a socket:
 * a terminal needs two of these, so each is kept to what the tier uses (no
 * reconnects, no offline queue, no per-connection timers: keepalives share one
 * wheel). Publishes from the broker are handed on as they are parsed and
 * acknowledged when the terminal acknowledged them, so the broker's own
 * in-flight window paces them, as for a terminal connected to it directly.
 */
export class UpstreamConnection implements KeepaliveTarget {
  online = false
  /** The broker accepted the CONNECT (the connection may have closed since). */
  accepted = false
  /** What the broker's CONNACK said: it kept the session, and resends what the terminal had not acked [MQTT-4.4.0-1]. */
  sessionPresent = false
  lastReadAt = performance.now()
  pingSentAt = 0
  private readonly socket: Duplex
  private readonly writer: PacketWriter<UpstreamPublish>
  private readonly parser: Parser
  private readonly writeOptions: { protocolVersion: 4 | 5 }
  private opened: ((outcome: ConnectOutcome) => void) | undefined
  private connectTimer: NodeJS.Timeout | undefined
  /** Why it closed: the last socket error (a certificate that does not verify, a reset), a timeout. */
  closeReason = 'connection closed'
  /** MQTT 5, and the broker takes Subscription Identifiers (its CONNACK did not say otherwise, §3.2.2.3.12). */
  subscriptionIdentifiers = false
  /** The 3.1.1 return code of a CONNACK that refused the connection (MQTT 5 reason codes mapped). */
  refusedWith: number | undefined
  private sourcePorts = false
  /** The socket's source address: taken from the broker's pool, if it has one, unless the options name one. */
  private readonly localAddress: string | undefined
  private readonly pooled: boolean
  private nextPacketId = 0
  private receiveMaximum = MAX_PACKET_ID
  /** QoS 1/2 publishes awaiting their ack, by packet identifier. */
  private readonly sent = new Map<number, UpstreamPublish>()
  private held: UpstreamPublish[] = []
  /** SUBACKs awaited, by packet identifier; made on first use (most terminals only publish). */
  private requests: Map<number, (packet: ISubackPacket | IUnsubackPacket | undefined) => void> | undefined
  /** QoS 2 publishes the broker has PUBRECed (safe), whose PUBCOMP is still due. */
  private releasing: Set<number> | undefined

  constructor (
    private readonly owner: ConnectionOwner,
    readonly endpoint: BrokerEndpoint,
    private readonly connectPacket: IConnectPacket,
    private readonly options: ConnectionOptions = TERMINAL
  ) {
    // The CONNECT's own version: under `auto` the health link tries 5, then 4, on one endpoint.
    const protocolVersion = connectPacket.protocolVersion === 5 ? 5 : 4
    this.writeOptions = { protocolVersion }
    this.parser = parser({ protocolVersion })
    this.parser.on('packet', (packet) => this.onPacket(packet))
    this.parser.on('error', (error: Error) => this.fail(`bad packet from broker: ${error.message}`))
    this.pooled = options.localAddress === undefined && endpoint.sources !== undefined
    this.localAddress = options.localAddress ?? endpoint.sources?.take()
    this.socket = openTransport(endpoint.address, endpoint.tlsMaterial, this.localAddress)
    const reader = new PacketReader(this.parser as FallbackParser, (packet) => this.onPacket(packet), () => protocolVersion)
    this.socket.on('data', (chunk: Buffer) => reader.read(chunk))
    this.writer = new PacketWriter(this.socket, (message) => this.owner.published(message))
    this.socket.on('error', (error: Error & { code?: unknown, syscall?: unknown }) => {
      this.sourcePorts = isSourcePortError(error)
      this.closeReason = this.sourcePorts
        ? `no free source port${this.localAddress === undefined ? '' : ` at ${this.localAddress}`} (${String(error.code)})`
        : error.message
    })
    this.socket.on('close', () => this.onClose())
  }

  /** The MQTT version this connection speaks. */
  get protocolVersion (): 4 | 5 {
    return this.writeOptions.protocolVersion
  }

  get keepalive (): number {
    return this.connectPacket.keepalive ?? 0
  }

  /** Sends CONNECT; settles on CONNACK, or when the connection fails or the connect timeout passes. */
  open (): Promise<ConnectOutcome> {
    const opened = new Promise<ConnectOutcome>((resolve) => { this.opened = resolve })
    let connect: Buffer
    try {
      connect = generate(this.connectPacket, this.writeOptions)
    } catch (err) {
      // A CONNECT the protocol forbids, e.g. a password without a user name in MQTT 3.1.1
      // [MQTT-3.1.2-22]: this connection fails with the reason, the process goes on.
      this.fail((err as Error).message)
      return opened
    }
    this.writer.write(connect)
    this.connectTimer = setTimeout(() => this.fail(NO_CONNACK), this.options.connectTimeoutMs ?? this.endpoint.health.connectTimeoutMs)
    return opened
  }

  publish (message: UpstreamPublish): void {
    if (message.qos === 0) {
      // Settled once the socket takes it: QoS 0 backpressure.
      this.writer.write(this.encode(message, 0), message)
      return
    }
    // [MQTT-4.9.0-2] the broker's receive maximum; behind what is held already, in order: an
    // ack's callbacks may let the terminal publish again before the held ones were sent.
    if (this.held.length > 0 || this.sent.size >= this.receiveMaximum) {
      this.held.push(message)
      return
    }
    this.send(message)
  }

  private send (message: UpstreamPublish): void {
    const messageId = this.packetId()
    this.sent.set(messageId, message)
    this.writer.write(this.encode(message, messageId))
  }

  /** Over MQTT 5 with the tier's message id as a user property (see Deduplicator). */
  private encode (message: UpstreamPublish, messageId: number): Buffer {
    const { protocolVersion } = this.writeOptions
    if (message.id !== undefined && protocolVersion === 5) return publishWithId(message, message.id, messageId)
    return publishPacket(message, messageId, false, protocolVersion)
  }

  /**
   * Resolves with the grants, or undefined if the connection was lost or the broker took longer
   * than `health.ackTimeoutMs`. `identifier`: the Subscription Identifier of every filter in it
   * (MQTT 5 only, where `subscriptionIdentifiers`).
   */
  subscribe (subscriptions: ReadonlyArray<{ topic: string, qos: Qos }>, identifier?: number): Promise<Grant[] | undefined> {
    const messageId = this.packetId()
    return new Promise((resolve) => {
      const timer = setTimeout(() => answer(undefined), this.endpoint.health.ackTimeoutMs)
      const answer = (reply: ISubackPacket | IUnsubackPacket | undefined): void => {
        clearTimeout(timer)
        this.requests!.delete(messageId)
        const suback = reply?.cmd === 'suback' ? reply : undefined
        const codes = (suback?.granted ?? []) as Array<number | { qos: number }>
        resolve(suback && subscriptions.map(({ topic }, i) => ({ topic, qos: grantedQos(codes[i]) })))
      }
      this.requests ??= new Map()
      this.requests.set(messageId, answer)
      const packet: ISubscribePacket = { cmd: 'subscribe', messageId, subscriptions: subscriptions.slice() }
      if (identifier !== undefined) packet.properties = { subscriptionIdentifier: identifier }
      this.writer.write(generate(packet, this.writeOptions))
    })
  }

  /** `done` at the UNSUBACK, when the connection is lost, or after `health.ackTimeoutMs`: no copy through these filters follows. */
  unsubscribe (topics: string[], done?: () => void): void {
    const messageId = this.packetId()
    if (done !== undefined) {
      const timer = setTimeout(() => answer(), this.endpoint.health.ackTimeoutMs)
      const answer = (): void => {
        clearTimeout(timer)
        this.requests!.delete(messageId)
        done()
      }
      this.requests ??= new Map()
      this.requests.set(messageId, answer)
    }
    this.writer.write(generate({ cmd: 'unsubscribe', messageId, unsubscriptions: topics }, this.writeOptions))
  }

  sendPing (): void {
    this.pingSentAt ||= performance.now()
    this.writer.write(PINGREQ)
  }

  /**
   * The terminal acknowledged a delivery: PUBACK [MQTT-4.3.2-2], or for QoS 2
   * PUBREC and, after the broker's PUBREL, PUBCOMP [MQTT-4.3.3-2].
   */
  acknowledge (cmd: 'puback' | 'pubrec' | 'pubcomp', messageId: number): void {
    if (this.online) this.writer.write(ackPacket(cmd, messageId))
  }

  /** The terminal's socket is full: read no more deliveries until it drained. */
  holdDeliveries (): void {
    this.socket.pause()
  }

  resumeDeliveries (): void {
    this.socket.resume()
  }

  /**
   * What is already written goes out first — acks the terminal sent before it
   * went away among them. With `disconnect`, DISCONNECT follows, so the broker
   * discards the will [MQTT-3.14.4-3]; without, the broker sees the
   * connection end and publishes it. Resolves once the broker closed its side
   * too: it has then read everything, so that a next connection with the same
   * client id, which takes the session over, cannot overtake these last packets.
   */
  close (disconnect: boolean): Promise<void> {
    const closed = new Promise<void>((resolve) => this.socket.once('close', resolve))
    if (this.socket.destroyed) return Promise.resolve()
    if (this.online && this.socket.writable) {
      this.writer.flush()
      // A frozen broker never answers: the socket goes after a grace period regardless.
      const timer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref()
      this.socket.once('close', () => clearTimeout(timer))
      this.socket.end(disconnect ? DISCONNECT : undefined)
    } else {
      this.socket.destroy()
    }
    this.online = false
    return closed
  }

  /**
   * Drops the connection at once: no DISCONNECT, no grace for a broker that may be frozen.
   * `closeReason` becomes `reason`; resolves once the socket is closed.
   */
  abort (reason: string): Promise<void> {
    if (this.socket.closed) return Promise.resolve()
    const closed = new Promise<void>((resolve) => this.socket.once('close', resolve))
    this.fail(reason)
    return closed
  }

  expire (): void {
    this.fail('no PINGRESP within the keepalive')
  }

  private fail (reason: string): void {
    this.closeReason = reason
    this.socket.destroy()
  }

  get lastWriteAt (): number {
    return this.writer.lastWriteAt
  }

  private packetId (): number {
    do this.nextPacketId = (this.nextPacketId % MAX_PACKET_ID) + 1 // [MQTT-2.3.1-1] non-zero, unused
    while (this.sent.has(this.nextPacketId) || this.requests?.has(this.nextPacketId) === true)
    return this.nextPacketId
  }

  private onPacket (packet: Packet): void {
    this.lastReadAt = performance.now()
    switch (packet.cmd) {
      case 'connack': return this.onConnack(packet)
      case 'publish': return this.owner.deliver(packet, this)
      case 'puback': return this.acked(packet.messageId!, packet.reasonCode)
      case 'pubrec':
        if ((packet.reasonCode ?? 0) >= FAILURE) return this.acked(packet.messageId!, packet.reasonCode) // [MQTT-4.3.3-4] exchange over
        this.writer.write(ackPacket('pubrel', packet.messageId!))
        return this.received(packet.messageId!)
      case 'pubcomp': return this.completed(packet.messageId!)
      case 'pubrel': return this.owner.released(packet.messageId!, this)
      case 'suback':
      case 'unsuback': return this.requests?.get(packet.messageId!)?.(packet)
      case 'pingresp':
        this.pingSentAt = 0
        return
      // MQTT 5 server-initiated [MQTT-3.14.2-1]: its reason is the close reason the logs show.
      case 'disconnect': return this.fail(`DISCONNECT from broker, reason 0x${(packet.reasonCode ?? 0).toString(16).padStart(2, '0')}${packet.properties?.reasonString === undefined ? '' : ` (${packet.properties.reasonString})`}`)
    }
  }

  private onConnack (packet: IConnackPacket): void {
    clearTimeout(this.connectTimer)
    this.connectTimer = undefined
    const code = packet.returnCode ?? packet.reasonCode ?? 0
    if (code !== 0) {
      this.refusedWith = toMqtt311ReturnCode(code)
      this.settleOpen({ kind: 'refused', returnCode: this.refusedWith })
      this.socket.destroy()
      return
    }
    this.online = true
    this.accepted = true
    this.sessionPresent = packet.sessionPresent
    this.receiveMaximum = packet.properties?.receiveMaximum ?? MAX_PACKET_ID
    this.subscriptionIdentifiers = this.protocolVersion === 5 && packet.properties?.subscriptionIdentifiersAvailable !== false
    keepalives.add(this)
    this.settleOpen({ kind: 'accepted', sessionPresent: packet.sessionPresent })
  }

  /**
   * An MQTT 5 refusal (reason code ≥ 0x80, e.g. 0x97 quota exceeded) does not
   * make the message safe: it stays unacknowledged for the outbox, whose ack
   * timeout moves it on, as for a broker that never answers. A final one (not
   * authorized, say) is the broker's answer to the message: sending it again,
   * or suspecting the broker, would change nothing.
   */
  private acked (messageId: number, reasonCode = 0): void {
    const message = this.sent.get(messageId)
    if (message === undefined) return
    this.sent.delete(messageId)
    if (reasonCode < FAILURE) this.owner.published(message)
    else if (isFinalRefusal(reasonCode)) this.refused(message, reasonCode)
    this.sendHeld()
  }

  private refused (message: UpstreamPublish, reasonCode: number): void {
    if (this.owner.refused === undefined) this.owner.published(message)
    else this.owner.refused(message, reasonCode)
  }

  private sendHeld (): void {
    while (this.held.length > 0 && this.sent.size < this.receiveMaximum && this.online) this.send(this.held.shift()!)
  }

  /**
   * QoS 2: the broker's PUBREC says it owns the message [MQTT-4.3.3-2], so it
   * is safe now, one round trip sooner than at PUBCOMP; the identifier stays
   * taken until PUBCOMP. A connection lost before the broker read the PUBREL
   * is covered like a QoS 1 message the broker acked but had not passed on:
   * the outbox sends what its broker acked within `health.resendWindowMs` again.
   */
  private received (messageId: number): void {
    const message = this.sent.get(messageId)
    if (message === undefined || this.releasing?.has(messageId) === true) return
    this.releasing ??= new Set()
    this.releasing.add(messageId)
    if (this.options.qos2SafeAtPubcomp !== true) this.owner.published(message)
  }

  private completed (messageId: number): void {
    if (this.releasing?.delete(messageId) !== true) return this.acked(messageId)
    if (this.options.qos2SafeAtPubcomp === true) this.owner.published(this.sent.get(messageId)!)
    this.sent.delete(messageId)
    this.sendHeld()
  }

  private settleOpen (outcome: ConnectOutcome): void {
    const opened = this.opened
    this.opened = undefined
    opened?.(outcome)
  }

  private onClose (): void {
    clearTimeout(this.connectTimer)
    keepalives.delete(this)
    if (this.pooled) this.endpoint.sources!.release(this.localAddress!)
    const wasOnline = this.online
    this.online = false
    this.settleOpen({ kind: 'unreachable', reason: this.closeReason, ...(this.sourcePorts && { sourcePorts: true }) })
    for (const answer of [...this.requests?.values() ?? []]) answer(undefined)
    this.writer.release()
    this.owner.closed(this, wasOnline)
  }
}

function grantedQos (code: number | { qos: number } | undefined): number {
  const qos = typeof code === 'number' ? code : code?.qos ?? FAILURE
  return qos >= FAILURE ? FAILURE : qos
}
