import { type IConnectPacket, type Packet, parser } from 'mqtt-packet'
import type { Test } from 'tap'
import { startRelay } from './relay.js'

export interface WindowProbe {
  url: string
  /** Per client id, the receive maximum its CONNACK announced (MQTT 5). */
  receiveMaximum: Map<string, number | undefined>
  /** Per client id, the most QoS 1/2 publishes that were ever unacknowledged at once. */
  maxOutstanding: Map<string, number>
  /** Per client id, the most QoS 1/2 deliveries from the broker that were ever unacknowledged at once. */
  maxDelivering: Map<string, number>
  /** Per client id, the properties of its (last) CONNECT (MQTT 5). */
  connectProperties: Map<string, IConnectPacket['properties']>
}

/**
 * A TCP relay that reads both directions of every connection with
 * mqtt-packet, for what the tier's sessions do at the packet level. Both
 * directions are parsed as `protocolVersion` speaks (mqtt-packet decodes a
 * PUBLISH by the version it was made for, not the one CONNECT announced).
 */
export async function startWindowProbe (t: Test, targetPort: number, protocolVersion: 4 | 5 = 5): Promise<WindowProbe> {
  const receiveMaximum = new Map<string, number | undefined>()
  const maxOutstanding = new Map<string, number>()
  const maxDelivering = new Map<string, number>()
  const connectProperties = new Map<string, IConnectPacket['properties']>()
  const relay = await startRelay(t, targetPort, () => {
    let clientId = ''
    const outstanding = new Set<number>()
    const delivering = new Set<number>()
    const fromClient = parser({ protocolVersion })
    const fromBroker = parser({ protocolVersion })
    fromClient.on('packet', (packet: Packet) => {
      if (packet.cmd === 'connect') {
        clientId = packet.clientId
        connectProperties.set(clientId, packet.properties)
      }
      if (packet.cmd === 'puback' || packet.cmd === 'pubcomp') delivering.delete(packet.messageId!)
      if (packet.cmd === 'publish' && packet.qos > 0) {
        outstanding.add(packet.messageId!)
        maxOutstanding.set(clientId, Math.max(maxOutstanding.get(clientId) ?? 0, outstanding.size))
      }
    })
    fromBroker.on('packet', (packet: Packet) => {
      if (packet.cmd === 'connack') receiveMaximum.set(clientId, packet.properties?.receiveMaximum)
      if (packet.cmd === 'puback' || packet.cmd === 'pubcomp') outstanding.delete(packet.messageId!)
      if (packet.cmd === 'publish' && packet.qos > 0) {
        delivering.add(packet.messageId!)
        maxDelivering.set(clientId, Math.max(maxDelivering.get(clientId) ?? 0, delivering.size))
      }
    })
    return (towardsBroker, chunk) => (towardsBroker ? fromClient : fromBroker).parse(chunk)
  })
  return { url: relay.url, receiveMaximum, maxOutstanding, maxDelivering, connectProperties }
}
