/**
 * Retained status topics on the tier's own Aedes (README "Operating it"), for operators
 * and dashboards that speak MQTT rather than HTTP:
 *
 *   $SYS/dual-broker/state     JSON: mode, both brokers, clients, pending
 *   $SYS/dual-broker/mode      normal | failover | replaying
 *   $SYS/dual-broker/broker1   up | down | unknown
 *   $SYS/dual-broker/broker2   up | down | unknown
 *
 * The tier serves `$SYS/dual-broker/` locally and never mirrors it upstream.
 * Publishes are client-less, so they take Aedes' own path (retained store and
 * local subscribers). A topic is published again only when its payload changed.
 */
import type { Aedes } from 'aedes'
import { type DualBroker, type TierState, tierPlugin } from '../src/index.js'
import { LOCAL_TOPIC_PREFIX } from '../src/local-topics.js'
import type { ObservedTier } from './metrics.js'

export interface SysTopicsOptions {
  /** How often the state is checked for changes the tier has no event for (the pending depth); default 1000 ms. */
  intervalMs?: number
}

export interface SysTopicsPlugin {
  /** Resolves once the current state is published (and retained). */
  refresh: () => Promise<void>
  /** Stops publishing; the retained values stay as last published. */
  close: () => Promise<void>
}

const EVENTS = ['broker-up', 'broker-down', 'failover', 'failback', 'replay-start', 'replay-end'] as const

function payloads (state: TierState): Record<string, string> {
  const { mode, brokers, clients, pending } = state
  return {
    state: JSON.stringify({ mode, brokers, clients, pending }),
    mode,
    broker1: brokers.broker1.state,
    broker2: brokers.broker2.state
  }
}

export function sysTopicsPlugin (tier: ObservedTier, aedes: Aedes, options: SysTopicsOptions = {}): SysTopicsPlugin {
  const published = new Map<string, string>()
  let closed = false
  // One refresh at a time, so that retained values are stored in the order the states were read.
  let chain = Promise.resolve()

  const publish = (topic: string, payload: string): Promise<void> => new Promise((resolve) => {
    aedes.publish({ topic, payload: Buffer.from(payload), qos: 0, retain: true, cmd: 'publish', dup: false }, () => resolve())
  })
  const refresh = (): Promise<void> => {
    chain = chain.then(async () => {
      if (closed) return
      for (const [name, payload] of Object.entries(payloads(tier.state))) {
        if (published.get(name) === payload) continue
        published.set(name, payload)
        await publish(LOCAL_TOPIC_PREFIX + name, payload)
      }
    })
    return chain
  }
  const onEvent = (): void => { void refresh() }
  for (const event of EVENTS) tier.on(event, onEvent)
  const timer = setInterval(onEvent, options.intervalMs ?? 1000).unref()
  void refresh()

  const close = async (): Promise<void> => {
    if (!closed) {
      closed = true
      clearInterval(timer)
      for (const event of EVENTS) tier.off(event, onEvent)
      aedes.off('closed', close)
    }
    await chain
  }
  // An Aedes closed before this plugin takes no more publishes.
  aedes.once('closed', close)
  return { refresh, close }
}

/** `await tier.register(sysTopics, options)`: the status topics on the tier's own Aedes, closed with the tier. */
export const sysTopics = tierPlugin('sys-topics', (tier: DualBroker, options: SysTopicsOptions | undefined) => sysTopicsPlugin(tier, tier.aedes, options))
