/**
 * DISCONNECT, or a drop without one: both upstream sessions end the same way,
 * so the brokers publish the terminal's will exactly when MQTT says they must.
 */
import { type Client, sentDisconnect } from '../aedes-types.js'
import type { DualBroker } from '../plugin.js'

export function onClientDisconnect (tier: DualBroker): (client: Client) => void {
  return (client) => {
    const session = tier.sessions.get(client)
    if (session === undefined) return
    tier.unregister(session)
    // [MQTT-3.1.2-10]: the will is discarded only after a DISCONNECT packet.
    tier.sessionEnding(session.client.id, session.close(sentDisconnect(client)))
  }
}
