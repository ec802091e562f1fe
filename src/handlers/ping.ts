/**
 * PINGREQ, step 4 of the method: the terminal's heartbeat keeps both upstream
 * sessions alive. Aedes answers PINGRESP itself in the same tick.
 */
import type { Client } from '../aedes/internals.js'
import type { SessionRegistry } from '../terminal/registry.js'

export function onPing (sessions: SessionRegistry): (packet: unknown, client: Client) => void {
  return (_packet, client) => {
    sessions.get(client)?.ping()
  }
}
