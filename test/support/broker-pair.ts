import type { Test } from 'tap'
import { startAedes, type AedesBroker } from './aedes-broker.js'
import { connectClient } from './client.js'
import { startMosquitto, type MosquittoBroker } from './mosquitto.js'
import { holding, untilBroker } from './observe.js'

export type BrokerKind = 'mosquitto' | 'aedes'
export const BROKER_KINDS: readonly BrokerKind[] = ['mosquitto', 'aedes']

/** One real broker of either kind, as the tests' oracle. */
export interface OracleBroker {
  readonly kind: BrokerKind
  readonly url: string
  /** Publishes `payloads` in order; resolves once the broker has queued them for every subscriber. */
  publish: (topic: string, payloads: readonly string[], qos: 0 | 1 | 2, retain?: boolean) => Promise<void>
  /**
   * Resolves once the broker holds no connection of `clientId` (it has handled
   * its DISCONNECT, its drop, its keepalive expiry or its takeover, and so
   * published whatever will that called for).
   */
  gone: (clientId: string, timeoutMs?: number) => Promise<void>
  readonly mosquitto?: MosquittoBroker
  readonly aedes?: AedesBroker
}

export interface OracleOptions {
  /** The highest QoS the broker grants a subscription (mosquitto's `max_qos`; an `authorizeSubscribe` that lowers it on Aedes). */
  maxQos?: 0 | 1
}

export async function startBroker (t: Test, kind: BrokerKind, options: OracleOptions = {}): Promise<OracleBroker> {
  const { maxQos } = options
  if (kind === 'aedes') {
    const broker = await startAedes(t, maxQos === undefined
      ? {}
      : { aedes: { authorizeSubscribe: (_client, subscription, done) => done(null, { ...subscription, qos: Math.min(subscription.qos, maxQos) as 0 | 1 }) } })
    return {
      kind,
      url: broker.url,
      aedes: broker,
      gone: (clientId, timeoutMs) => untilBroker(broker, () => holding(broker, clientId) === 0, `${clientId} gone from ${broker.url}`, timeoutMs),
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
  const broker = await startMosquitto(t, maxQos === undefined ? {} : { maxQos })
  const connections = mosquittoConnections(t, broker)
  const publisher = await connectClient(t, broker.url, { clientId: `oracle-publisher-${broker.port}` })
  return {
    kind,
    url: broker.url,
    mosquitto: broker,
    gone: connections.gone,
    // mosquitto queues a QoS 1/2 message for every subscriber before it acknowledges it.
    publish: async (topic, payloads, qos, retain = false) => {
      await Promise.all(payloads.map((payload) => publisher.publishAsync(topic, payload, { qos: qos === 0 ? 1 : qos, retain })))
    }
  }
}

const CONNECTED = /New client connected from \S+ as (.*) \(p\d, c\d, k\d+(, u'.*')?\)\.$/
const ENDED = /: Client (.*) (disconnected|closed its connection|has exceeded timeout|already connected, closing old connection)/

/** mosquitto's connections by client id, as its log tells them (it has no other way to ask). */
function mosquittoConnections (t: Test, broker: MosquittoBroker): Pick<OracleBroker, 'gone'> {
  const held = new Map<string, number>()
  const waiters = new Set<() => void>()
  const stop = broker.onLine((line) => {
    const connected = CONNECTED.exec(line)?.[1]
    const ended = ENDED.exec(line)?.[1]
    if (connected !== undefined) held.set(connected, (held.get(connected) ?? 0) + 1)
    if (ended !== undefined) held.set(ended, Math.max(0, (held.get(ended) ?? 0) - 1))
    for (const check of [...waiters]) check()
  })
  t.teardown(stop)
  return {
    gone: (clientId, timeoutMs = 5000) => new Promise((resolve, reject) => {
      const check = (): void => {
        // Not yet seen connected: the log line may come in after the CONNACK did.
        if ((held.get(clientId) ?? 1) > 0) return
        waiters.delete(check)
        clearTimeout(timer)
        resolve()
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`${clientId} still connected to ${broker.url} after ${timeoutMs} ms`))
      }, timeoutMs)
      waiters.add(check)
      check()
    })
  }
}
