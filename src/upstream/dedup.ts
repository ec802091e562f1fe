import { createHash } from 'node:crypto'
import type { IPublishPacket } from 'mqtt-packet'

/** MQTT 5 user property carrying the tier's message id upstream. */
export const MESSAGE_ID_PROPERTY = 'dual-broker-id'

export interface DedupOptions {
  /** Copies of the same topic and payload from the other broker within this window are dropped (MQTT 3.1.1 upstreams). */
  windowMs: number
  /** Ids and digests remembered per terminal, at most. */
  maxEntries: number
}

/**
 * Recognises a message that reaches a terminal a second time through its other
 * broker: by the tier's message id where the upstream speaks MQTT 5 (a copy sent
 * to Broker2 during an outage and replayed to Broker1 later, however far
 * apart), and otherwise by topic and payload seen from the other broker within
 * `windowMs` (brokers that bridge to each other). The same payload twice from
 * one broker is never dropped: a sensor may well repeat a value.
 */
export class Deduplicator {
  /** Per id or digest: arrivals from one broker that no copy from the other has matched yet. */
  private readonly seen = new Map<string, { at: number, from: number, unmatched: number }>()
  /**
   * Arrivals not hashed yet, per broker: while only one broker delivers (the
   * usual case) nothing can be a copy, so the digest waits until the other
   * broker delivers something within the window.
   */
  private readonly unhashed: [Arrival[], Arrival[]] = [[], []]
  /** When each broker's last arrival went into `seen`: a copy of it may still come. */
  private readonly lastHashed = [-Infinity, -Infinity]

  constructor (private readonly options: DedupOptions) {}

  isDuplicate (packet: IPublishPacket, from: 0 | 1): boolean {
    if (this.options.maxEntries === 0) return false
    const id = packet.properties?.userProperties?.[MESSAGE_ID_PROPERTY]
    const now = Date.now()
    if (typeof id === 'string') {
      // An id is one message: any second arrival, from either broker, is a copy.
      if (this.seen.has(`i${id}`)) return true
      this.remember(`i${id}`, { at: now, from, unmatched: 1 })
      return false
    }
    if (this.options.windowMs === 0) return false
    const other = this.unhashed[1 - from]!
    const own = this.unhashed[from]!
    this.forget(other, now)
    if (other.length === 0 && !this.hashedRecently(1 - from, now)) {
      this.forget(own, now)
      own.push({ at: now, packet })
      if (own.length > this.options.maxEntries) own.shift()
      return false
    }
    for (const arrival of other.splice(0)) this.check(arrival.packet, 1 - from, arrival.at)
    for (const arrival of own.splice(0)) this.check(arrival.packet, from, arrival.at)
    return this.check(packet, from, now)
  }

  private check (packet: IPublishPacket, from: number, now: number): boolean {
    const key = `h${createHash('sha1').update(packet.topic).update('\0').update(packet.payload).digest('base64')}`
    const entry = this.seen.get(key)
    if (entry !== undefined && now - entry.at <= this.options.windowMs && entry.unmatched > 0) {
      if (entry.from !== from) {
        entry.unmatched-- // the other broker's copy of one we delivered
        return true
      }
      entry.unmatched++
      entry.at = now
      return false
    }
    this.remember(key, { at: now, from, unmatched: 1 })
    this.lastHashed[from] = now
    return false
  }

  private hashedRecently (from: number, now: number): boolean {
    return now - this.lastHashed[from]! <= this.options.windowMs
  }

  private forget (arrivals: Arrival[], now: number): void {
    let expired = 0
    while (expired < arrivals.length && now - arrivals[expired]!.at > this.options.windowMs) expired++
    if (expired > 0) arrivals.splice(0, expired)
  }

  private remember (key: string, entry: { at: number, from: number, unmatched: number }): void {
    this.seen.delete(key)
    this.seen.set(key, entry)
    if (this.seen.size > this.options.maxEntries) this.seen.delete(this.seen.keys().next().value!)
  }
}

interface Arrival { at: number, packet: IPublishPacket }
