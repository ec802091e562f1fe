import { generate, type IPublishPacket } from 'mqtt-packet'
import { announceAck, type Client, observesAcks, type TerminalAck, watchDrain } from '../aedes/internals.js'
import type { UpstreamConnection } from '../upstream/connection.js'
import { Deliveries, type Delivery } from './deliveries.js'
import type { Deduplicator } from '../upstream/dedup.js'
import { corkForTurn } from '../mqtt/packet-writer.js'
import { ackPacket } from '../mqtt/ack-packets.js'
import { type PublishContent, publishPacket } from '../mqtt/publish-packet.js'

/** A user's own `authorizeForward` on the Aedes instance: it may change or withhold a delivery. */
export type ForwardFilter = (client: Client, packet: IPublishPacket) => IPublishPacket | null | undefined

/** The terminal's session at one broker, as the relay needs it: the connection that acks, and its reads paused. */
export interface RelayLink {
  ackingFor: (sentOn: UpstreamConnection) => UpstreamConnection | undefined
  holdDeliveries: () => void
  resumeDeliveries: () => void
}

/** What the relay asks of the terminal's session. */
export interface RelayOwner {
  /** A copy of a message was recognised and not delivered again. */
  duplicate: () => void
  /** Whether this broker's retained messages count: the broker that takes publishes (Broker1 while up). */
  servesRetained: (from: 0 | 1) => boolean
}

/**
 * Bytes the terminal's socket may buffer before the brokers are held back:
 * about what one read of an upstream socket brings in, so that a burst leaves
 * in a few large writes (the socket's own high-water mark, 16 KiB, would hold
 * the brokers back many times per burst).
 */
const TERMINAL_BUFFER_BYTES = 256 * 1024

/** A broker's packet that came before the terminal's CONNACK: a PUBLISH, or a PUBREL resent after a reconnect. */
interface Early { packet: IPublishPacket | number, connection: UpstreamConnection, from: 0 | 1 }

/**
 * What the brokers send one terminal goes to that terminal only, written by
 * the tier itself, and each QoS 1/2 message is acknowledged upstream when —
 * and only when — the terminal acknowledged it: the brokers hold the session,
 * and what the terminal has not acked when it or the tier goes away is still
 * theirs to resend. The terminal's socket sets the pace: when it is full, the
 * upstream connections are not read until it drained.
 */
export class DeliveryRelay {
  /** Made on the first QoS 1/2 delivery: most terminals only publish. */
  private deliveries: Deliveries | undefined
  /** Until the terminal has its CONNACK [MQTT-3.2.0-1]; undefined after. */
  private early: Early[] | undefined = []
  private holding = false
  private watchingDrain = false
  private readonly drained = (): void => { this.watchingDrain = false }
  private readonly resume = (): void => {
    this.holding = false
    for (const link of this.links) link.resumeDeliveries()
  }

  /** The terminal's sessions at Broker1 and Broker2, which deliver through this relay. */
  links: readonly [RelayLink, RelayLink] | readonly [] = []

  constructor (
    private readonly client: Client,
    private readonly owner: RelayOwner,
    private readonly dedup: Deduplicator,
    private readonly forwardFilter: ForwardFilter | undefined,
    /** A persistent session: Aedes' `ack` event shows its messages (a clean one's it shows without). */
    private readonly persistent: boolean
  ) {}

  private get inFlight (): Deliveries {
    this.deliveries ??= new Deliveries()
    return this.deliveries
  }

  /** The terminal has its CONNACK: what the brokers sent before goes out now, in arrival order. */
  ready (): void {
    const early = this.early
    this.early = undefined
    for (const { packet, connection, from } of early ?? []) {
      if (typeof packet === 'number') this.released(packet, connection, from)
      else this.deliver(packet, connection, from)
    }
  }

  deliver (packet: IPublishPacket, connection: UpstreamConnection, from: 0 | 1): void {
    if (this.client.closed) return // not acked: the broker keeps it for the session's next connection
    if (this.early !== undefined) {
      this.early.push({ packet, connection, from })
      return
    }
    // [MQTT-3.3.1-9] retain is set only on what a new subscription brings: the retained value of
    // the broker that takes publishes is current, the other one's may be stale after an outage.
    if (packet.retain && !this.owner.servesRetained(from)) return this.settle(packet, connection)
    if (packet.qos === 0) return this.forward(packet, 0)
    const resent = this.inFlight.resent(from, packet.messageId!)
    if (resent !== undefined) {
      // [MQTT-4.4.0-1] only a session the broker kept resends, with DUP, on its next connection.
      if (packet.dup && resent.connection !== connection && connection.sessionPresent) return this.rebind(resent, connection)
      this.inFlight.detach(resent)
    }
    if (this.dedup.isDuplicate(packet, from)) {
      this.owner.duplicate()
      return this.settle(packet, connection)
    }
    const delivery = this.inFlight.open(from, packet.messageId!, packet.qos as 1 | 2, connection)
    if (delivery === undefined) return // 65,535 in flight: unacked, the broker resends it later
    // Kept for the `ack` event only while someone listens: a kept packet keeps the whole socket read it came in alive.
    if (this.persistent && observesAcks(this.client)) delivery.packet = packet
    this.forward(packet, delivery.downstreamId)
  }

  /** Not for the terminal: acked upstream at once. A QoS 2 message's PUBREL is passed on like any other (see `released`). */
  private settle (packet: IPublishPacket, connection: UpstreamConnection): void {
    if (packet.qos > 0) connection.acknowledge(packet.qos === 1 ? 'puback' : 'pubrec', packet.messageId!)
  }

  /**
   * A broker resends what it had not seen acked, after the tier's connection to
   * it was lost and re-opened: the terminal still has it under its identifier.
   */
  private rebind (delivery: Delivery, connection: UpstreamConnection): void {
    delivery.connection = connection
    if (delivery.stage === 'received') connection.acknowledge('pubrec', delivery.upstreamId)
  }

  /**
   * The broker's PUBREL. One the tier does not know (a session resent through a
   * new tier node, or a copy it acked itself) still goes to the terminal, which
   * answers PUBCOMP to any PUBREL [MQTT-4.3.3-2].
   */
  released (upstreamId: number, connection: UpstreamConnection, from: 0 | 1): void {
    if (this.client.closed) return
    if (this.early !== undefined) {
      this.early.push({ packet: upstreamId, connection, from })
      return
    }
    const delivery = this.inFlight.resent(from, upstreamId) ?? this.inFlight.open(from, upstreamId, 2, connection, 'released')
    if (delivery === undefined) return
    delivery.connection = connection
    delivery.stage = 'released'
    this.write(ackPacket('pubrel', delivery.downstreamId))
  }

  /** A PUBACK, PUBREC or PUBCOMP from the terminal: true when it answers one of the tier's deliveries. */
  acked (ack: TerminalAck): boolean {
    const delivery = this.deliveries?.get(ack.messageId)
    if (delivery === undefined) return false
    const expected = delivery.qos === 1 ? 'puback' : delivery.stage === 'sent' ? 'pubrec' : 'pubcomp'
    if (ack.cmd !== expected) return true // a repeated or out-of-turn ack: nothing more to settle
    if (ack.cmd === 'pubrec') delivery.stage = 'received'
    else this.inFlight.close(delivery)
    // The connection the broker sent it on, while it is up; else the one its session moved to (see `ackingFor`).
    const connection = delivery.connection.online ? delivery.connection : this.links[delivery.from]?.ackingFor(delivery.connection)
    connection?.acknowledge(ack.cmd, delivery.upstreamId)
    if (ack.cmd !== 'pubrec') announceAck(this.client, this.persistent ? ackedPacket : noPacket, delivery)
    return true
  }

  /** The terminal is gone: nothing more is acked, and the brokers keep what it had not acked. */
  clear (): void {
    this.deliveries?.clear()
    this.early = undefined
  }

  /** [MQTT-3.3.1-1] DUP as the broker sent it; [MQTT-3.3.1-9] retain as the broker set it. */
  private forward (packet: IPublishPacket, messageId: number): void {
    const dup = packet.qos > 0 && packet.dup
    if (this.forwardFilter === undefined) return this.write(publishPacket(packet as PublishContent, messageId, dup))
    const message: IPublishPacket = {
      cmd: 'publish',
      topic: packet.topic,
      payload: packet.payload,
      qos: packet.qos,
      retain: packet.retain,
      dup,
      ...(messageId !== 0 && { messageId })
    }
    const filtered = this.forwardFilter(this.client, message)
    if (filtered == null) return this.withheld(messageId)
    this.write(generate(filtered))
  }

  /** The user's authorizeForward withheld it: settled upstream as if the terminal had acked it. */
  private withheld (messageId: number): void {
    const delivery = messageId === 0 ? undefined : this.inFlight.get(messageId)
    if (delivery === undefined) return
    this.acked({ cmd: delivery.qos === 1 ? 'puback' : 'pubrec', messageId })
  }

  private write (bytes: Buffer): void {
    const conn = this.client.conn
    // The deliveries of one read of an upstream socket leave in one write.
    corkForTurn(conn)
    conn.write(bytes)
    if (this.holding || conn.writableLength < TERMINAL_BUFFER_BYTES) return
    this.holding = true
    for (const link of this.links) link.holdDeliveries()
    conn.once('drain', this.resume)
    // A terminal that stopped reading is disconnected after limits.drainTimeoutMs, as by Aedes' own writes.
    if (!this.watchingDrain) {
      this.watchingDrain = true
      watchDrain(this.client, this.drained)
    }
  }
}

/** A clean session's `ack` event: Aedes, which keeps nothing of it, shows no packet. */
function noPacket (): undefined {
  return undefined
}

/** What Aedes' persistence hands its `ack` event: the message at PUBACK, the PUBREL it stored at PUBCOMP. */
function ackedPacket (delivery: Delivery): object | undefined {
  if (delivery.qos === 2) return { cmd: 'pubrel', messageId: delivery.downstreamId }
  const packet = delivery.packet
  return packet && { cmd: 'publish', topic: packet.topic, payload: packet.payload, qos: packet.qos, retain: packet.retain, dup: packet.dup, messageId: delivery.downstreamId }
}
