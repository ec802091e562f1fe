/**
 * PUBACK, PUBREC, PUBREL and PUBCOMP: a fixed header, remaining length 2 and
 * the packet identifier (MQTT 3.1.1 §3.4–§3.7; PUBREL's header has its
 * reserved bits 0010 [MQTT-3.6.1-1]). Written by hand: they are on the path
 * of every QoS 1/2 message, and mqtt-packet would build an object and a
 * generic encoder pass for four bytes. MQTT 5 accepts the same four bytes
 * (reason code 0 omitted, §3.4.2.1).
 */
const HEADER = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 } as const

export type AckCommand = keyof typeof HEADER

export function ackPacket (cmd: AckCommand, messageId: number): Buffer {
  const packet = Buffer.allocUnsafe(4)
  packet[0] = HEADER[cmd]
  packet[1] = 2
  packet[2] = messageId >> 8
  packet[3] = messageId & 0xff
  return packet
}
