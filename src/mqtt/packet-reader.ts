import type { IPublishPacket, Packet, Parser, QoS } from 'mqtt-packet'
import { MESSAGE_ID_PROPERTY } from './protocol.js'

/**
 * mqtt-packet's parser, with the state the reader reads to know when it may decode again:
 * `error` while it refuses what it was given (until its next `parse`), the bytes it holds,
 * and where in a packet it stands.
 */
export type FallbackParser = Parser & { error: Error | null, _list: { length: number }, _stateCounter: number }

/**
 * Cuts a byte stream into MQTT packets and decodes those that every message
 * crosses — PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, PINGREQ, PINGRESP —
 * straight from the bytes it read: no buffer list, no copy of a packet that
 * arrived in one piece, no state machine per field. Every other packet, and
 * any of those that is unusual in any way (a flag, a length, an MQTT 5
 * property the tier does not read), goes whole to `fallback`, an mqtt-packet
 * parser, which decodes or refuses it exactly as it would have: this reader
 * decodes nothing mqtt-packet would decode differently.
 */
export class PacketReader {
  /** The start of a packet whose bytes have not all arrived. */
  private held: Buffer[] = []
  private heldBytes = 0
  /** The whole size of the held packet, once its fixed header is in; 0 before. */
  private awaited = 0

  /** Hands the fallback one whole packet (or the malformed rest of a chunk). */
  private readonly parseWhole: (bytes: Buffer) => unknown

  constructor (
    private readonly fallback: FallbackParser,
    private readonly emit: (packet: Packet) => void,
    /** The MQTT version the packets are in (a terminal's parser learns it from CONNECT). */
    private readonly version: () => number
  ) {
    // Bound now: where this reader takes the place of the fallback's own `parse`, the original is kept.
    this.parseWhole = fallback.parse.bind(fallback)
  }

  /** A packet has begun whose bytes have not all arrived. */
  get holding (): boolean {
    return this.heldBytes > 0
  }

  read (chunk: Buffer): void {
    if (this.heldBytes === 0 && this.fallbackBusy()) {
      this.parseWhole(chunk)
      return
    }
    let data = chunk
    if (this.heldBytes > 0) {
      this.held.push(chunk)
      this.heldBytes += chunk.length
      if (this.heldBytes < this.awaited) return
      data = Buffer.concat(this.held, this.heldBytes)
      this.held = []
      this.heldBytes = 0
      this.awaited = 0
    }
    let at = 0
    while (at < data.length) {
      // [MQTT-2.2.2-2] refused at the first byte, as mqtt-packet does, not once the packet is in.
      if (badFlags(data[at]!)) return this.handOver(data, at)
      // §2.2.3 Remaining Length: 7 bits a byte, at most four bytes.
      let remaining = 0
      let multiplier = 1
      let header = 1
      let complete = false
      while (at + header < data.length && header <= 4) {
        const byte = data[at + header++]!
        remaining += (byte & 0x7f) * multiplier
        multiplier *= 128
        if ((byte & 0x80) === 0) {
          complete = true
          break
        }
      }
      if (!complete && header > 4) return this.handOver(data, at) // malformed: mqtt-packet says how
      const size = header + remaining
      if (!complete || at + size > data.length) return this.hold(data.subarray(at), complete ? size : 0)
      if (!this.decode(data, at, header, at + size)) return this.handOver(data, at)
      at += size
    }
  }

  private hold (start: Buffer, size: number): void {
    this.held.push(start)
    this.heldBytes = start.length
    this.awaited = size
  }

  /**
   * From a packet this reader does not decode on, the fallback reads the stream, as it would have
   * all along (some of its refusals look past the packet's end), until it holds nothing again.
   */
  private handOver (data: Buffer, at: number): void {
    this.parseWhole(data.subarray(at))
  }

  /** The fallback is inside a packet, or refused one (its next `parse` starts afresh, and it decides from there). */
  private fallbackBusy (): boolean {
    const fallback = this.fallback
    return fallback.error !== null || fallback._list.length > 0 || fallback._stateCounter !== 0
  }

  /** False: not a packet this reader decodes; the fallback gets it. */
  private decode (data: Buffer, at: number, header: number, end: number): boolean {
    const first = data[at]!
    const type = first >> 4
    const body = at + header
    const length = end - body
    switch (type) {
      case 3: return this.publish(data, first, body, end)
      case 4: return this.ack('puback', 0, data, body, length)
      case 5: return this.ack('pubrec', 0, data, body, length)
      case 6: return this.ack('pubrel', 1, data, body, length) // [MQTT-3.6.1-1] flags 0010: QoS 1 to mqtt-packet
      case 7: return this.ack('pubcomp', 0, data, body, length)
      case 12: return length === 0 && this.empty('pingreq')
      case 13: return length === 0 && this.empty('pingresp')
      default: return false
    }
  }

  /** [MQTT-3.3.1] / §3.3 PUBLISH; in MQTT 5 only User Properties and Subscription Identifiers are read here. */
  private publish (data: Buffer, first: number, body: number, end: number): boolean {
    const qos = ((first >> 1) & 3) as QoS | 3
    if (qos === 3) return false // [MQTT-3.3.1-4]: the fallback refuses it
    let at = body
    if (end - at < 2) return false
    const topicLength = data.readUInt16BE(at)
    at += 2
    if (at + topicLength > end) return false
    const topic = data.toString('utf8', at, at + topicLength)
    at += topicLength
    let messageId = 0
    if (qos > 0) {
      if (end - at < 2) return false
      messageId = data.readUInt16BE(at)
      at += 2
    }
    let properties: PublishProperties | undefined
    if (this.version() === 5) {
      const read = readPublishProperties(data, at, end)
      if (read === false) return false
      properties = read
      at = cursor
    }
    const packet: IPublishPacket = qos === 0
      ? { cmd: 'publish', retain: (first & 1) !== 0, qos, dup: (first & 8) !== 0, length: end - body, topic, payload: data.subarray(at, end) }
      : { cmd: 'publish', retain: (first & 1) !== 0, qos, dup: (first & 8) !== 0, length: end - body, topic, payload: data.subarray(at, end), messageId }
    if (properties !== undefined) packet.properties = properties
    this.emit(packet)
    return true
  }

  /**
   * §3.4–§3.7: the packet identifier. In MQTT 5 a success may also come as reason code 0 with or
   * without an empty property block (§3.4.2.1); any other reason code is the fallback's to check.
   */
  private ack (cmd: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp', qos: 0 | 1, data: Buffer, body: number, length: number): boolean {
    if (length < 2) return false
    const messageId = data.readUInt16BE(body)
    let packet: object
    if (this.version() === 5) {
      if (length > 4 || (length > 2 && data[body + 2] !== 0) || (length === 4 && data[body + 3] !== 0)) return false
      packet = { cmd, retain: false, qos, dup: false, length, topic: null, payload: null, messageId, reasonCode: 0 }
    } else {
      if (length !== 2) return false
      packet = { cmd, retain: false, qos, dup: false, length, topic: null, payload: null, messageId }
    }
    this.emit(packet as Packet)
    return true
  }

  private empty (cmd: 'pingreq' | 'pingresp'): boolean {
    this.emit({ cmd, retain: false, qos: 0, dup: false, length: 0, topic: null, payload: null } as unknown as Packet)
    return true
  }
}

/** Table 2.2 Flag Bits: what each packet type's flags must be; where none are required (PUBLISH), QoS is not 3. */
const REQUIRED_FLAGS = [-1, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0]

function badFlags (first: number): boolean {
  const required = REQUIRED_FLAGS[first >> 4]!
  return required < 0 ? (first & 0x06) === 0x06 : (first & 0x0f) !== required
}

interface PublishProperties {
  userProperties?: Record<string, string>
  subscriptionIdentifier?: number
}

const SUBSCRIPTION_IDENTIFIER = 0x0b // §3.3.2.3.8
const USER_PROPERTY = 0x26 // §3.3.2.3.7
/** The name nearly every user property on the tier's path has: its bytes are compared, not decoded. */
const ID_NAME = Buffer.from(MESSAGE_ID_PROPERTY)

/**
 * Where the helpers below stopped reading: one position for all of them, so that
 * reading a property allocates nothing but the values it returns.
 */
let cursor = 0

/** The property block of an MQTT 5 PUBLISH, if it holds nothing but what the tier reads, each once per name; `cursor` after it. */
function readPublishProperties (data: Buffer, at: number, end: number): PublishProperties | undefined | false {
  const length = readVarInt(data, at, end)
  if (length < 0) return false
  const stop = cursor + length
  if (stop > end) return false
  if (length === 0) return undefined
  const properties: PublishProperties = {}
  while (cursor < stop) {
    const id = data[cursor++]
    if (id === SUBSCRIPTION_IDENTIFIER && properties.subscriptionIdentifier === undefined) {
      const value = readVarInt(data, cursor, stop)
      if (value < 0) return false
      properties.subscriptionIdentifier = value
    } else if (id === USER_PROPERTY) {
      const name = readString(data, cursor, stop)
      if (name === undefined) return false
      const value = readString(data, cursor, stop)
      if (value === undefined) return false
      properties.userProperties ??= Object.create(null) as Record<string, string>
      if (name in properties.userProperties) return false // a repeated name is an array in mqtt-packet
      properties.userProperties[name] = value
    } else {
      return false
    }
  }
  return cursor === stop ? properties : false
}

/** §1.5.5 Variable Byte Integer; -1 when it does not end within four bytes before `end`. */
function readVarInt (data: Buffer, at: number, end: number): number {
  let value = 0
  let multiplier = 1
  for (let i = 0; i < 4 && at < end; i++) {
    const byte = data[at++]!
    value += (byte & 0x7f) * multiplier
    if ((byte & 0x80) === 0) {
      cursor = at
      return value
    }
    multiplier *= 128
  }
  return -1
}

/** §1.5.4 UTF-8 Encoded String. */
function readString (data: Buffer, at: number, end: number): string | undefined {
  if (end - at < 2) return undefined
  const length = data.readUInt16BE(at)
  const from = at + 2
  cursor = from + length
  if (cursor > end) return undefined
  if (length === ID_NAME.length && data.compare(ID_NAME, 0, length, from, cursor) === 0) return MESSAGE_ID_PROPERTY
  return data.toString('utf8', from, cursor)
}
