import type { PendingMessage, StoredMessage } from './types.js'
import { entryError, messageError } from './errors.js'
import { packQosRetain, unpackQos, unpackRetain } from '../mqtt/protocol.js'

// Key space: 'm' + 8-byte big-endian seq for messages (byte order = seq order),
// 's' for the highest seq ever assigned (so seqs stay monotonic when the store empties).
const MSG_PREFIX = 0x6d // 'm'
export const SEQ_KEY = Buffer.from('s')
export const MSG_RANGE_START = Buffer.from([MSG_PREFIX])
export const MSG_RANGE_END = Buffer.from([MSG_PREFIX + 1])

export function encodeKey (seq: number): Buffer {
  const key = Buffer.allocUnsafe(9)
  key[0] = MSG_PREFIX
  key.writeUInt32BE(Math.floor(seq / 2 ** 32), 1)
  key.writeUInt32BE(seq >>> 0, 5)
  return key
}

export function decodeKey (key: Buffer): number {
  if (key.length !== 9 || key[0] !== MSG_PREFIX) throw entryError(`not a message key: ${key.toString('hex')}`)
  return key.readUInt32BE(1) * 2 ** 32 + key.readUInt32BE(5)
}

export function encodeSeq (seq: number): Buffer {
  const value = Buffer.allocUnsafe(8)
  value.writeDoubleBE(seq)
  return value
}

export function decodeSeq (value: Buffer): number {
  return value.readDoubleBE(0)
}

// Value: version(1) flags(1) acceptedAt(f64) expiresAt(f64) topicLen(u16) clientIdLen(u16) idLen(u8)
//        topic(utf8) clientId(utf8) id(utf8) payload(raw bytes)
// flags: bits 0-2 qos and retain (packQosRetain), bit 3 has expiresAt, bit 4 any broker (policy `failover`).
const VERSION = 2
const HEADER = 23
const MAX_ID = 0xff
const MAX_STR = 0xffff

/**
 * Refuses what the value format cannot hold, with `DUALBROKER_ERR_STORE_MESSAGE`: every store
 * checks appends with it, so that a message one store takes is taken by all.
 */
export function checkMessage (msg: PendingMessage): void {
  checkTypes(msg)
  checkLengths(Buffer.byteLength(msg.topic, 'utf8'), Buffer.byteLength(msg.clientId, 'utf8'), Buffer.byteLength(msg.id ?? '', 'utf8'))
}

function checkTypes (msg: PendingMessage): void {
  if (!(msg.payload instanceof Uint8Array)) throw messageError('payload must be a Buffer')
  if (typeof msg.topic !== 'string' || typeof msg.clientId !== 'string') throw messageError('topic and clientId must be strings')
  if (msg.id !== undefined && typeof msg.id !== 'string') throw messageError('id must be a string')
  if (msg.qos !== 0 && msg.qos !== 1 && msg.qos !== 2) throw messageError(`invalid qos ${String(msg.qos)}`)
}

function checkLengths (topic: number, clientId: number, id: number): void {
  if (topic > MAX_STR) throw messageError('topic longer than 65535 bytes')
  if (clientId > MAX_STR) throw messageError('clientId longer than 65535 bytes')
  if (id > MAX_ID) throw messageError('message id longer than 255 bytes')
}

export function encodeValue (msg: PendingMessage): Buffer {
  checkTypes(msg)
  const topic = Buffer.from(msg.topic, 'utf8')
  const clientId = Buffer.from(msg.clientId, 'utf8')
  const id = Buffer.from(msg.id ?? '', 'utf8')
  checkLengths(topic.length, clientId.length, id.length)
  const hasExpiry = msg.expiresAt !== undefined
  const value = Buffer.allocUnsafe(HEADER + topic.length + clientId.length + id.length + msg.payload.length)
  value[0] = VERSION
  value[1] = packQosRetain(msg.qos, msg.retain) | (hasExpiry ? 8 : 0) | (msg.anyBroker === true ? 16 : 0)
  value.writeDoubleBE(msg.acceptedAt, 2)
  value.writeDoubleBE(msg.expiresAt ?? 0, 10)
  value.writeUInt16BE(topic.length, 18)
  value.writeUInt16BE(clientId.length, 20)
  value[22] = id.length
  topic.copy(value, HEADER)
  clientId.copy(value, HEADER + topic.length)
  id.copy(value, HEADER + topic.length + clientId.length)
  value.set(msg.payload, HEADER + topic.length + clientId.length + id.length)
  return value
}

function checkHeader (value: Buffer): void {
  if (value.length < HEADER || value[0] !== VERSION || (value[1]! & 3) === 3) throw entryError('unknown value format')
  if (HEADER + value.readUInt16BE(18) + value.readUInt16BE(20) + value[22]! > value.length) throw entryError('truncated value')
}

/** Bytes an entry counts against `maxBytes`: topic + payload. */
export function storedSize (value: Buffer): number {
  checkHeader(value)
  return value.length - HEADER - value.readUInt16BE(20) - value[22]!
}

export function messageSize (msg: PendingMessage): number {
  return Buffer.byteLength(msg.topic, 'utf8') + msg.payload.length
}

export function topicOf (value: Buffer): string {
  checkHeader(value)
  return value.toString('utf8', HEADER, HEADER + value.readUInt16BE(18))
}

/** Expiry without decoding the strings; undefined when the entry never expires. */
export function expiresAtOf (value: Buffer): number | undefined {
  checkHeader(value)
  return (value[1]! & 8) !== 0 ? value.readDoubleBE(10) : undefined
}

export function decodeValue (seq: number, value: Buffer): StoredMessage {
  checkHeader(value)
  const flags = value[1]!
  const topicEnd = HEADER + value.readUInt16BE(18)
  const clientIdEnd = topicEnd + value.readUInt16BE(20)
  const idEnd = clientIdEnd + value[22]!
  const msg: StoredMessage = {
    seq,
    topic: value.toString('utf8', HEADER, topicEnd),
    payload: value.subarray(idEnd),
    qos: unpackQos(flags),
    retain: unpackRetain(flags),
    clientId: value.toString('utf8', topicEnd, clientIdEnd),
    acceptedAt: value.readDoubleBE(2)
  }
  if ((flags & 8) !== 0) msg.expiresAt = value.readDoubleBE(10)
  if ((flags & 16) !== 0) msg.anyBroker = true
  if (idEnd > clientIdEnd) msg.id = value.toString('utf8', clientIdEnd, idEnd)
  return msg
}
