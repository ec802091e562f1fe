/**
 * The conformance suite's frame: every scenario runs once with the terminal
 * straight at Broker1 and once through the tier in front of it, and the two
 * observations are compared. Deliberate differences are listed in README
 * ("What a terminal observes"); any other one fails the scenario.
 */
import type { Test } from 'tap'
import type { IPublishPacket, Packet } from 'mqtt-packet'
import { type BrokerKind, type OracleBroker, type OracleOptions, startBroker } from './broker-pair.js'
import { rawConnect, type RawTerminal } from './raw-terminal.js'
import { startTier, type TierOptions, type TierUnderTest } from './tier.js'

export { BROKER_KINDS } from './broker-pair.js'

/**
 * What the suite's tier speaks upstream: on `mosquitto` and `aedes` the product's default
 * (`protocolVersion: auto`: MQTT 5 at mosquitto, 3.1.1 at Aedes 1.2, which refuses 5), and on
 * `mosquitto-3.1.1` mosquitto with the upstream sessions set to 3.1.1.
 */
export type Upstream = BrokerKind | 'mosquitto-3.1.1'
export const UPSTREAMS: readonly Upstream[] = ['mosquitto', 'aedes', 'mosquitto-3.1.1']

export function brokerOf (upstream: Upstream): BrokerKind {
  return upstream === 'mosquitto-3.1.1' ? 'mosquitto' : upstream
}

/** The tier's options for `upstream` in front of these two brokers. */
export function upstreamOptions (upstream: Upstream, broker1: string, broker2: string, options: TierOptions = {}): TierOptions {
  if (upstream !== 'mosquitto-3.1.1') return options
  return { ...options, plugin: { broker1: { url: broker1, protocolVersion: 4 }, broker2: { url: broker2, protocolVersion: 4 }, ...options.plugin } }
}

/** Long, so that a CONNACK or SUBACK that waited for an ack timeout could not pass for prompt. */
export const ACK_TIMEOUT_MS = 20_000

export type Way = 'direct' | 'tier'

export interface Differential {
  broker1: OracleBroker
  broker2: OracleBroker
  tier: TierUnderTest
  /** Both ways of reaching Broker1, the oracle first. */
  targets: Array<[Way, string]>
}

export async function differential (t: Test, kind: Upstream, given: TierOptions = {}, brokers: OracleOptions = {}): Promise<Differential> {
  const broker1 = await startBroker(t, brokerOf(kind), brokers)
  const broker2 = await startBroker(t, brokerOf(kind), brokers)
  const options = upstreamOptions(kind, broker1.url, broker2.url, given)
  const tier = await startTier(t, broker1.url, broker2.url, {
    ...options,
    plugin: {
      // Not a failover suite: a health link slow enough not to see a loaded machine as a broker down.
      health: { keepaliveSeconds: 5, connectTimeoutMs: 10_000, ackTimeoutMs: ACK_TIMEOUT_MS, failbackDelayMs: 200, reconnectPeriodMs: 100 },
      // Wills compared with a broker that publishes them at once: their delay over MQTT 5 is a
      // deliberate difference (README "What a terminal observes"), tested in protocol-auto.test.ts.
      wills: { delaySeconds: 0 },
      ...options.plugin
    }
  })
  return { broker1, broker2, tier, targets: [['direct', broker1.url], ['tier', tier.url]] }
}

export const range = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => String(from + i))

export const publishes = (packets: readonly Packet[]): IPublishPacket[] => packets.filter((p): p is IPublishPacket => p.cmd === 'publish')

/** SUBSCRIBE and its SUBACK's return codes. */
export async function subscribe (terminal: RawTerminal, topic: string | string[], qos: 0 | 1 | 2): Promise<number[]> {
  const topics = Array.isArray(topic) ? topic : [topic]
  const from = terminal.packets.length
  terminal.send({ cmd: 'subscribe', messageId: 1, subscriptions: topics.map((filter) => ({ topic: filter, qos })) })
  const suback = await terminal.next((p) => p.cmd === 'suback', 5000, from)
  return (suback as { granted: number[] }).granted
}

/** A will as a subscriber sees it: topic, payload, QoS, retain. */
export type SeenWill = [string, string, number, boolean]

export interface WillWatch {
  /** Resolves with the first will (already seen or future) on `topic` at Broker1. */
  atBroker1: (topic: string) => Promise<void>
  /**
   * Once both brokers no longer hold any of `clientIds` (each published
   * whatever will its end called for) and a marker published after that came
   * through at each: every will seen at Broker1 and at Broker2.
   */
  settle: (clientIds: readonly string[]) => Promise<{ broker1: SeenWill[], broker2: SeenWill[] }>
}

/**
 * A raw subscriber to `${prefix}/#` straight at each broker, so that a will is
 * counted wherever it is published: through the tier the terminal has a
 * session at both brokers, and its will must still be published once. Raw,
 * so that a QoS 2 will is seen as it arrives, before the marker behind it.
 */
export async function watchWills (t: Test, { broker1, broker2 }: Differential, way: Way, prefix: string): Promise<WillWatch> {
  const watchers = await Promise.all([broker1, broker2].map(async (broker, i) => {
    const watcher = await rawConnect(t, broker.url, { clientId: `will-watcher-${i + 1}-${prefix}` }, { autoAck: true })
    await subscribe(watcher, `${prefix}/#`, 2)
    return watcher
  }))
  const marker = `${prefix}/marker`
  const seen = (watcher: RawTerminal): SeenWill[] => publishes(watcher.packets).filter((p) => p.topic !== marker)
    .map((p) => [p.topic.slice(prefix.length + 1), p.payload.toString(), p.qos, p.retain])
  return {
    atBroker1: async (topic) => { await watchers[0]!.next((p) => p.cmd === 'publish' && p.topic === topic) },
    settle: async (clientIds) => {
      // Straight at Broker1 the terminals never reached Broker2.
      const reached = way === 'tier' ? [broker1, broker2] : [broker1]
      await Promise.all(reached.flatMap((broker) => clientIds.map((id) => broker.gone(id))))
      await Promise.all([broker1.publish(marker, ['marker'], 1), broker2.publish(marker, ['marker'], 1)])
      await Promise.all(watchers.map((watcher) => watcher.next((p) => p.cmd === 'publish' && p.topic === marker)))
      return { broker1: seen(watchers[0]!), broker2: seen(watchers[1]!) }
    }
  }
}
