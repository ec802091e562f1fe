/**
 * DISCONNECT, or a drop without one: both upstream sessions end the same way,
 * so the brokers publish the terminal's will exactly when MQTT says they must.
 */
import { type Client, sentDisconnect } from '../aedes/internals.js'
import type { SessionRegistry } from '../terminal/registry.js'

export function onClientDisconnect (sessions: SessionRegistry): (client: Client) => void {
  return (client) => {
    const session = sessions.get(client)
    // [MQTT-3.1.2-10]: the will is discarded only after a DISCONNECT packet.
    if (session !== undefined) sessions.end(session, sentDisconnect(client))
  }
}

/**
 * Aedes emits 'clientDisconnect' only for a client it registered, a few asynchronous steps after
 * `authenticate` allowed it: a terminal whose socket closed in between (or just before) kept both
 * upstream sessions open for ever (found by the hostile-terminal soak). Its socket's close ends
 * them too; for a client Aedes did register, 'clientDisconnect' came first and this finds nothing.
 */
export function endWithSocket (sessions: SessionRegistry, client: Client): void {
  const end = (): void => { setImmediate(onClientDisconnect(sessions), client) }
  if (client.conn.destroyed) end()
  else client.conn.once('close', end)
}
