import type { IPublishPacket } from 'mqtt-packet'
import { MAX_PACKET_ID } from '../mqtt/protocol.js'
import type { UpstreamConnection } from '../upstream/connection.js'

/**
 * Where a QoS 1/2 delivery stands: `sent` to the terminal (its PUBACK or PUBREC
 * awaited); QoS 2 `received` (the terminal sent PUBREC, the broker's PUBREL is
 * awaited); QoS 2 `released` (PUBREL passed on, the terminal's PUBCOMP awaited).
 */
export type Stage = 'sent' | 'received' | 'released'

/** One broker's QoS 1/2 message on its way to the terminal, until the terminal's last ack went upstream. */
export interface Delivery {
  /** The packet identifier the terminal sees. */
  readonly downstreamId: number
  readonly from: 0 | 1
  /** The packet identifier of the broker's session. */
  readonly upstreamId: number
  readonly qos: 1 | 2
  /** The connection the broker sent it on; a persistent session's later connection may take over its ack. */
  connection: UpstreamConnection
  stage: Stage
  /** A persistent terminal's message, kept for Aedes' `ack` event, which shows it as Aedes' persistence would. */
  packet?: IPublishPacket
}

/**
 * The packet identifiers of one terminal's deliveries in flight. Each broker
 * numbers its own deliveries; the terminal sees one numbering. A broker's own
 * identifier is kept when it is free, so that a session the broker resends
 * through another connection, or another tier node, reaches the terminal
 * under the identifier it already knows [MQTT-4.3.3-2].
 */
export class Deliveries {
  private readonly byDownstream = new Map<number, Delivery>()
  private readonly byUpstream: readonly [Map<number, Delivery>, Map<number, Delivery>] = [new Map(), new Map()]
  private lastAssigned = 0

  get size (): number {
    return this.byDownstream.size
  }

  /** The delivery a broker is resending (after a reconnect), if the tier still tracks it. */
  resent (from: 0 | 1, upstreamId: number): Delivery | undefined {
    return this.byUpstream[from].get(upstreamId)
  }

  /** Undefined when all 65,535 identifiers are in flight: the caller holds the broker back. */
  open (from: 0 | 1, upstreamId: number, qos: 1 | 2, connection: UpstreamConnection, stage: Stage = 'sent'): Delivery | undefined {
    const downstreamId = this.freeId(upstreamId)
    if (downstreamId === 0) return undefined
    const delivery: Delivery = { downstreamId, from, upstreamId, qos, connection, stage }
    this.byDownstream.set(downstreamId, delivery)
    this.byUpstream[from].set(upstreamId, delivery)
    return delivery
  }

  get (downstreamId: number): Delivery | undefined {
    return this.byDownstream.get(downstreamId)
  }

  close (delivery: Delivery): void {
    this.byDownstream.delete(delivery.downstreamId)
    const upstream = this.byUpstream[delivery.from]
    if (upstream.get(delivery.upstreamId) === delivery) upstream.delete(delivery.upstreamId)
  }

  /**
   * The broker reuses this delivery's identifier for a new message (its session
   * did not survive a reconnect): the terminal keeps the old one under its own
   * identifier until it acks it, but the broker's identifier is the new one's.
   */
  detach (delivery: Delivery): void {
    const upstream = this.byUpstream[delivery.from]
    if (upstream.get(delivery.upstreamId) === delivery) upstream.delete(delivery.upstreamId)
  }

  clear (): void {
    this.byDownstream.clear()
    this.byUpstream[0].clear()
    this.byUpstream[1].clear()
  }

  private freeId (preferred: number): number {
    if (!this.byDownstream.has(preferred)) return preferred
    if (this.byDownstream.size >= MAX_PACKET_ID) return 0
    let id = this.lastAssigned
    do id = (id % MAX_PACKET_ID) + 1
    while (this.byDownstream.has(id))
    this.lastAssigned = id
    return id
  }
}
