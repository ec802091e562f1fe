/**
 * Terminals speak MQTT 3.1.1; an MQTT 5 upstream refuses with a reason code.
 * Map it to the 3.1.1 CONNACK return code that means the same.
 */
/** CONNACK 0x01 [MQTT-3.1.2-2]: what a 3.1.1-only broker (Aedes 1.2) answers an MQTT 5 CONNECT. */
export const UNACCEPTABLE_PROTOCOL_VERSION = 1

const FROM_MQTT5: Record<number, number> = {
  0x84: 1, // unsupported protocol version
  0x85: 2, // client identifier not valid
  0x86: 4, // bad user name or password
  0x87: 5, // not authorized
  0x88: 3, // server unavailable
  0x89: 3, // server busy
  0x8a: 5, // banned
  0x8c: 4, // bad authentication method
  0x97: 3, // quota exceeded
  0x9f: 3 // connection rate exceeded
}

export function toMqtt311ReturnCode (code: number): number {
  if (code >= 1 && code <= 5) return code
  return FROM_MQTT5[code] ?? 5
}
