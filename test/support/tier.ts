import { Aedes, type AedesOptions } from 'aedes'
import type { MqttClient } from 'mqtt'
import type { Test } from 'tap'
import { dualBroker, type DualBroker, type DualBrokerOptions } from '../../src/index.js'
import { listenTcp } from '../../src/listeners.js'

export interface TierUnderTest {
  aedes: Aedes
  tier: DualBroker
  port: number
  url: string
  close: () => Promise<void>
}

export interface TierOptions {
  aedes?: AedesOptions
  plugin?: Partial<DualBrokerOptions>
}

/** The access tier as users embed it: their Aedes on a TCP listener, the plugin attached. */
export async function startTier (t: Test, broker1: string, broker2: string, opts: TierOptions = {}): Promise<TierUnderTest> {
  const aedes = await Aedes.createBroker(opts.aedes)
  const tier = await dualBroker(aedes, {
    broker1: { url: broker1 },
    broker2: { url: broker2 },
    health: { keepaliveSeconds: 1, connectTimeoutMs: 2000, ackTimeoutMs: 2000, failbackDelayMs: 200, reconnectPeriodMs: 100 },
    ...opts.plugin
  })
  const listener = await listenTcp(aedes, '127.0.0.1', 0)
  const port = listener.address.port
  let closed: Promise<void> | undefined
  const close = (): Promise<void> => {
    closed ??= (async () => {
      await listener.close()
      await tier.close()
      await new Promise<void>((resolve) => aedes.close(() => resolve()))
    })()
    return closed
  }
  t.teardown(close)
  return { aedes, tier, port, url: `mqtt://127.0.0.1:${port}`, close }
}

export interface Received { topic: string, payload: Buffer, retain: boolean, qos: number }

/** Resolves with the next message the client receives. */
export function nextMessage (client: MqttClient): Promise<Received> {
  return new Promise((resolve) => {
    client.once('message', (topic, payload, packet) => resolve({ topic, payload, retain: packet.retain, qos: packet.qos }))
  })
}
