/**
 * The conformance suite's frame: every scenario runs once with the terminal
 * straight at Broker1 and once through the tier in front of it, and the two
 * observations are compared. Deliberate differences are listed in README
 * ("What a terminal observes"); any other one fails the scenario.
 */
import type { Test } from 'tap'
import type { IPublishPacket, Packet } from 'mqtt-packet'
import { type BrokerKind, type OracleBroker, startBroker } from './broker-pair.js'
import type { RawTerminal } from './raw-terminal.js'
import { startTier, type TierOptions, type TierUnderTest } from './tier.js'

export { BROKER_KINDS } from './broker-pair.js'

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

export async function differential (t: Test, kind: BrokerKind, options: TierOptions = {}): Promise<Differential> {
  const broker1 = await startBroker(t, kind)
  const broker2 = await startBroker(t, kind)
  const tier = await startTier(t, broker1.url, broker2.url, {
    ...options,
    // Not a failover suite: a health link slow enough not to see a loaded machine as a broker down.
    plugin: { health: { keepaliveSeconds: 5, connectTimeoutMs: 10_000, ackTimeoutMs: ACK_TIMEOUT_MS, failbackDelayMs: 200, reconnectPeriodMs: 100 }, ...options.plugin }
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
