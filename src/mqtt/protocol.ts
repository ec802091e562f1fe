/** The few MQTT facts more than one part of the tier relies on, stated once. */

export type Qos = 0 | 1 | 2

/**
 * SUBACK's failure return code [MQTT-3.9.3-2]. In MQTT 5 every reason code
 * from 0x80 up is a failure (§2.4), of a SUBACK, PUBACK or PUBREC alike.
 */
export const FAILURE = 0x80

/** Packet identifiers are 16 bits and never 0 [MQTT-2.3.1-1]; also MQTT 5's default receive maximum (§3.1.2.11.3). */
export const MAX_PACKET_ID = 65535

/** The MQTT 5 user property that carries the tier's id of a message upstream (see upstream/dedup.ts). */
export const MESSAGE_ID_PROPERTY = 'dual-broker-id'

const RETAIN_BIT = 4

/**
 * A message's QoS and retain flag in one byte: bits 0–1 QoS, bit 2 retain.
 * Free bits above are the caller's (the store keeps its own flags there).
 */
export function packQosRetain (qos: Qos, retain: boolean): number {
  return qos | (retain ? RETAIN_BIT : 0)
}

export function unpackQos (flags: number): Qos {
  return (flags & 3) as Qos
}

export function unpackRetain (flags: number): boolean {
  return (flags & RETAIN_BIT) !== 0
}

/**
 * MQTT 5 PUBACK/PUBREC reason codes (§3.4.2.1) that answer the message itself, not the moment:
 * sending it again gets the same answer. 0x80 unspecified error, 0x97 quota exceeded and others
 * may pass; these do not.
 */
const FINAL_REFUSALS = new Set([
  0x83, // implementation specific error (mosquitto: a plugin refused it)
  0x87, // not authorized
  0x90, // topic name invalid
  0x99 // payload format invalid
])

export function isFinalRefusal (reasonCode: number): boolean {
  return FINAL_REFUSALS.has(reasonCode)
}
