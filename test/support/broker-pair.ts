import type { Test } from 'tap'
import { startAedes, type AedesBroker } from './aedes-broker.js'
import { connectClient } from './client.js'
import { startMosquitto, type MosquittoBroker } from './mosquitto.js'

export type BrokerKind = 'mosquitto' | 'aedes'
export const BROKER_KINDS: readonly BrokerKind[] = ['mosquitto', 'aedes']

/** One real broker of either kind, as the tests' oracle. */
export interface OracleBroker {
  readonly kind: BrokerKind
  readonly url: string
  /** Publishes `payloads` in order; resolves once the broker has queued them for every subscriber. */
  publish: (topic: string, payloads: readonly string[], qos: 0 | 1 | 2, retain?: boolean) => Promise<void>
  readonly mosquitto?: MosquittoBroker
  readonly aedes?: AedesBroker
}

export async function startBroker (t: Test, kind: BrokerKind): Promise<OracleBroker> {
  if (kind === 'aedes') {
    const broker = await startAedes(t)
    return {
      kind,
      url: broker.url,
      aedes: broker,
      // Aedes' own publish calls back once the message is routed and queued for offline sessions.
      publish: async (topic, payloads, qos, retain = false) => {
        for (const payload of payloads) {
          await new Promise<void>((resolve, reject) => broker.aedes.publish(
            { cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain, dup: false },
            (error) => (error != null ? reject(error) : resolve())))
        }
      }
    }
  }
  const broker = await startMosquitto(t)
  const publisher = await connectClient(t, broker.url, { clientId: `oracle-publisher-${broker.port}` })
  return {
    kind,
    url: broker.url,
    mosquitto: broker,
    // mosquitto queues a QoS 1/2 message for every subscriber before it acknowledges it.
    publish: async (topic, payloads, qos, retain = false) => {
      await Promise.all(payloads.map((payload) => publisher.publishAsync(topic, payload, { qos: qos === 0 ? 1 : qos, retain })))
    }
  }
}
