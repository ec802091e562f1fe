import type { Aedes, Client } from './aedes/internals.js'
import { connectionOf } from './aedes/internals.js'
import { peerAddress } from './listeners.js'
import type { Logger } from './logger.js'

/** CONNACK return codes (MQTT 3.1.1 §3.2.2.3, Table 3.1): what an operator reads in a `terminal refused` line. */
const RETURN_CODES: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized'
}

/**
 * Logs each terminal refused with a CONNACK return code at `info`, with the reason: a protocol
 * version Aedes does not speak, credentials a broker or the user's own hook refused, no broker
 * reachable. Aedes marks such errors with `errorCode`; every other client error is not a refusal.
 */
export function logRefusals (aedes: Aedes, logger: Logger): void {
  const onError = (client: Client, error: Error & { errorCode?: unknown }): void => {
    if (typeof error.errorCode !== 'number') return
    const returnCode = error.errorCode
    logger.info({
      clientId: client.id,
      remote: peerAddress(connectionOf(client)),
      returnCode,
      reason: RETURN_CODES[returnCode] ?? error.message,
      ...(error.message !== RETURN_CODES[returnCode] && { detail: error.message })
    }, 'terminal refused')
  }
  aedes.on('clientError', onError)
  aedes.on('connectionError', onError)
}
