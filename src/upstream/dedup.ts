import type { IPublishPacket } from 'mqtt-packet'
import { MESSAGE_ID_PROPERTY } from '../mqtt/protocol.js'
import { type Digest, DigestRing, digest } from './digest-ring.js'


export interface DedupOptions {
  /** Copies of the same topic and payload from the other broker within this window are dropped. */
  windowMs: number
  /** Ids and digests remembered per terminal, at most. */
  maxEntries: number
}

/**
 * Recognises a message that reaches a terminal a second time through its other
 * broker: by the tier's message id where the upstream speaks MQTT 5 (a copy sent
 * to Broker2 during an outage and replayed to Broker1 later, however far
 * apart), and whatever the upstream by topic and payload seen from the other
 * broker within `windowMs` (brokers that bridge to each other, whose bridge may
 * not carry the id). The same payload twice from one broker is never dropped: a
 * sensor may well repeat a value.
 */
export class Deduplicator {
  /** Made on the first delivery: most terminals only publish. */
  private ring: DigestRing | undefined
  private readonly scratch: Digest = { key: 0, check: 0 }

  constructor (private readonly options: DedupOptions) {}

  private get seen (): DigestRing {
    this.ring ??= new DigestRing(this.options.maxEntries)
    return this.ring
  }

  isDuplicate (packet: IPublishPacket, from: 0 | 1): boolean {
    if (this.options.maxEntries === 0) return false
    const id = packet.properties?.userProperties?.[MESSAGE_ID_PROPERTY]
    const now = Date.now()
    if (typeof id === 'string') {
      // An id is one message: any second arrival, from either broker, is a copy.
      const key = digest(this.scratch, BY_ID, id)
      if (this.seen.find(key) !== -1) return true
      this.seen.add(key, now, from)
    }
    // By content too: a copy can lose the id on its way (a 3.1.1 bridge between the brokers).
    return this.options.windowMs !== 0 && this.sameContent(packet, from, now)
  }

  private sameContent (packet: IPublishPacket, from: 0 | 1, now: number): boolean {
    const key = digest(this.scratch, BY_CONTENT, packet.topic, packet.payload as Buffer)
    const slot = this.seen.find(key)
    if (slot !== -1 && now - this.seen.atOf(slot) <= this.options.windowMs && this.seen.unmatchedOf(slot) > 0) {
      if (this.seen.fromOf(slot) !== from) {
        this.seen.matched(slot) // the other broker's copy of one we delivered
        return true
      }
      this.seen.repeated(slot, now)
      return false
    }
    this.seen.add(key, now, from)
    return false
  }
}

const BY_ID = 1
const BY_CONTENT = 2
