/**
 * PINGREQ, step 4 of the method: the terminal's heartbeat keeps both upstream
 * sessions alive. Aedes answers PINGRESP itself in the same tick.
 */
import type { Client } from '../aedes-types.js'
import type { DualBroker } from '../plugin.js'

export function onPing (tier: DualBroker): (packet: unknown, client: Client) => void {
  return (_packet, client) => {
    tier.sessions.get(client)?.ping()
  }
}
