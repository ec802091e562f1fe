/**
 * PUBACK, PUBREC, PUBREL and PUBCOMP from a terminal. The terminal's ack of a
 * delivery the tier wrote goes upstream, to the broker that sent it: the
 * broker's message is acknowledged when — and only when — the terminal
 * acknowledged it [MQTT-4.3.2-2] [MQTT-4.3.3-2], and Aedes, which never saw
 * that message, does not see its ack either. A PUBREL ends a QoS 2 publish of
 * the terminal's own: its exchange is over, and Aedes answers it with PUBCOMP
 * [MQTT-4.3.3-2].
 */
import type { Client, TerminalAck } from '../aedes/internals.js'
import type { SessionRegistry } from '../terminal/registry.js'

/** True when the ack was the tier's to take (Aedes does not get it). */
export type TerminalAckHandler = (client: Client, ack: TerminalAck) => boolean

export function onTerminalAck (sessions: SessionRegistry): TerminalAckHandler {
  return function terminalAck (client, ack) {
    const session = sessions.get(client)
    if (session === undefined) return false
    if (ack.cmd === 'pubrel') {
      session.qos2.released(ack.messageId)
      return false
    }
    return session.relay.acked(ack)
  }
}
