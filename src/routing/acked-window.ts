import { packQosRetain, type Qos, unpackQos, unpackRetain } from '../mqtt/protocol.js'

/** What is kept of a live publish its broker acked: enough to send it again. */
export interface AckedPublish {
  topic: string
  payload: Buffer
  qos: Qos
  retain: boolean
  id: string | undefined
}

const NO_ID = -1
// Zero-length, so never written: shared by every empty window.
const NO_BYTES = Buffer.alloc(0)
const NO_INTS = new Int32Array(0)
const NO_TIMES = new Float64Array(0)

/**
 * One terminal's live publishes acked in the last `windowMs`, oldest first,
 * for the resend window (see Outbox). They are kept as bytes in one buffer,
 * their fields in typed arrays: kept as objects, every message outlived a few
 * young-generation collections, doubled their pauses and was promoted. Both
 * grow as needed, are compacted as entries expire, and are let go when the
 * window is empty.
 */
export class AckedWindow {
  private bytes = NO_BYTES
  private bytesEnd = 0
  private starts = NO_INTS
  private topicLengths = NO_INTS
  private payloadLengths = NO_INTS
  private idLengths = NO_INTS
  private links: Uint8Array = NO_BYTES
  private qosRetain: Uint8Array = NO_BYTES
  private ackedAt = NO_TIMES
  private head = 0
  private tail = 0

  constructor (private readonly windowMs: number) {}

  add (message: AckedPublish, link: number, at: number): void {
    this.expire(at)
    const room = message.topic.length * 3 + message.payload.length + (message.id?.length ?? 0) * 3
    this.makeRoom(room)
    const slot = this.tail++
    const start = this.bytesEnd
    const topicLength = this.bytes.write(message.topic, start)
    message.payload.copy(this.bytes, start + topicLength)
    let end = start + topicLength + message.payload.length
    const idLength = message.id === undefined ? NO_ID : this.bytes.write(message.id, end)
    if (idLength > 0) end += idLength
    this.bytesEnd = end
    this.starts[slot] = start
    this.topicLengths[slot] = topicLength
    this.payloadLengths[slot] = message.payload.length
    this.idLengths[slot] = idLength
    this.links[slot] = link
    this.qosRetain[slot] = packQosRetain(message.qos, message.retain)
    this.ackedAt[slot] = at
  }

  /**
   * The publishes `link`'s broker acked since `now - windowMs`, in order,
   * taken out of the window; what the other broker acked stays, for a loss of
   * that broker within its window.
   */
  takeAckedBy (link: number, now: number): AckedPublish[] {
    this.expire(now)
    const taken: AckedPublish[] = []
    const kept: Array<{ message: AckedPublish, link: number, at: number }> = []
    for (let slot = this.head; slot < this.tail; slot++) {
      if (this.links[slot] === link) taken.push(this.read(slot))
      else kept.push({ message: this.read(slot), link: this.links[slot]!, at: this.ackedAt[slot]! })
    }
    this.clear()
    for (const entry of kept) this.add(entry.message, entry.link, entry.at)
    return taken
  }

  /** Empty again: the storage goes too (a terminal that publishes now and then holds none in between). */
  clear (): void {
    this.head = 0
    this.tail = 0
    this.bytesEnd = 0
    this.bytes = NO_BYTES
    this.starts = this.topicLengths = this.payloadLengths = this.idLengths = NO_INTS
    this.links = this.qosRetain = NO_BYTES
    this.ackedAt = NO_TIMES
  }

  private read (slot: number): AckedPublish {
    const start = this.starts[slot]!
    const topicEnd = start + this.topicLengths[slot]!
    const payloadEnd = topicEnd + this.payloadLengths[slot]!
    const idLength = this.idLengths[slot]!
    const flags = this.qosRetain[slot]!
    return {
      topic: this.bytes.toString('utf8', start, topicEnd),
      payload: Buffer.from(this.bytes.subarray(topicEnd, payloadEnd)),
      qos: unpackQos(flags),
      retain: unpackRetain(flags),
      id: idLength === NO_ID ? undefined : this.bytes.toString('utf8', payloadEnd, payloadEnd + idLength)
    }
  }

  private expire (now: number): void {
    const oldest = now - this.windowMs
    while (this.head < this.tail && this.ackedAt[this.head]! < oldest) this.head++
    if (this.head === this.tail) this.clear()
  }

  /** Room for one more entry and `bytes` more bytes: compacts first, grows if that is not enough. */
  private makeRoom (bytes: number): void {
    if (this.tail === this.starts.length || this.bytesEnd + bytes > this.bytes.length) this.compact()
    if (this.tail === this.starts.length) this.growEntries(Math.max(16, this.starts.length * 2))
    if (this.bytesEnd + bytes > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(4096, this.bytes.length * 2, this.bytesEnd + bytes))
      this.bytes.copy(grown, 0, 0, this.bytesEnd)
      this.bytes = grown
    }
  }

  private compact (): void {
    if (this.head === 0) return
    const from = this.starts[this.head]!
    this.bytes.copyWithin(0, from, this.bytesEnd)
    this.bytesEnd -= from
    for (const array of [this.starts, this.topicLengths, this.payloadLengths, this.idLengths, this.links, this.qosRetain, this.ackedAt]) {
      array.copyWithin(0, this.head, this.tail)
    }
    this.tail -= this.head
    this.head = 0
    for (let slot = 0; slot < this.tail; slot++) this.starts[slot]! -= from
  }

  private growEntries (length: number): void {
    const grow = <T extends Int32Array | Uint8Array | Float64Array>(old: T, made: T): T => {
      made.set(old.subarray(0, this.tail))
      return made
    }
    this.starts = grow(this.starts, new Int32Array(length))
    this.topicLengths = grow(this.topicLengths, new Int32Array(length))
    this.payloadLengths = grow(this.payloadLengths, new Int32Array(length))
    this.idLengths = grow(this.idLengths, new Int32Array(length))
    this.links = grow(this.links, new Uint8Array(length))
    this.qosRetain = grow(this.qosRetain, new Uint8Array(length))
    this.ackedAt = grow(this.ackedAt, new Float64Array(length))
  }
}
