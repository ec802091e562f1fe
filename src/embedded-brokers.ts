import { Aedes } from 'aedes'
import { EMBEDDED_HOST } from './config/demo.js'
import { DualBrokerError } from './errors.js'
import { type Listener, listenTcp } from './listeners.js'

export interface EmbeddedBrokers {
  /** Their URLs, with the ports actually bound (a port asked as 0 is the one the system chose). */
  urls: [string, string]
  close: () => Promise<void>
}

/**
 * Two plain Aedes brokers on 127.0.0.1, so that the server runs on a fresh
 * machine with nothing else installed (`npm start`). Loopback only: they take
 * any client without credentials.
 */
export async function startEmbeddedBrokers (ports: readonly [number, number]): Promise<EmbeddedBrokers> {
  const started: Array<{ aedes: Aedes, listener?: Listener }> = []
  const close = async (): Promise<void> => {
    for (const { aedes, listener } of started.splice(0)) {
      await listener?.close()
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
    }
  }
  const urls: string[] = []
  try {
    for (const port of ports) {
      const entry: { aedes: Aedes, listener?: Listener } = { aedes: await Aedes.createBroker() }
      started.push(entry)
      entry.listener = await listenTcp(entry.aedes, EMBEDDED_HOST, port)
      urls.push(`mqtt://${EMBEDDED_HOST}:${entry.listener.address.port}`)
    }
  } catch (error) {
    await close()
    throw new DualBrokerError('DUALBROKER_ERR_EMBEDDED_BROKERS', `embedded brokers cannot listen on ${EMBEDDED_HOST}:${ports.join('/')} (--embedded-ports A,B chooses others): ${(error as Error).message}`)
  }
  return { urls: [urls[0]!, urls[1]!], close }
}
