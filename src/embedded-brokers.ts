import { Aedes } from 'aedes'
import { type Listener, listenTcp } from './listeners.js'

export const EMBEDDED_PORTS = [1884, 1885] as const

export interface EmbeddedBrokers {
  urls: [string, string]
  close: () => Promise<void>
}

/**
 * Two plain Aedes brokers on 127.0.0.1:1884 and :1885, so that the server
 * runs on a fresh machine with nothing else installed (`npm start`).
 */
export async function startEmbeddedBrokers (): Promise<EmbeddedBrokers> {
  const started: Array<{ aedes: Aedes, listener?: Listener }> = []
  const close = async (): Promise<void> => {
    for (const { aedes, listener } of started.splice(0)) {
      await listener?.close()
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
    }
  }
  try {
    for (const port of EMBEDDED_PORTS) {
      const entry: { aedes: Aedes, listener?: Listener } = { aedes: await Aedes.createBroker() }
      started.push(entry)
      entry.listener = await listenTcp(entry.aedes, '127.0.0.1', port)
    }
  } catch (error) {
    await close()
    throw new Error(`embedded brokers cannot listen on 127.0.0.1:${EMBEDDED_PORTS.join('/')}: ${(error as Error).message}`)
  }
  return { urls: [`mqtt://127.0.0.1:${EMBEDDED_PORTS[0]}`, `mqtt://127.0.0.1:${EMBEDDED_PORTS[1]}`], close }
}
