import type { EventEmitter } from 'node:events'
import type { Qos } from './mqtt/protocol.js'
import type { BrokerName } from './state.js'

export type { BrokerName, BrokerState, BrokerStatus, TierCounters, TierMode, TierState, UpstreamProtocol } from './state.js'

/** Typed events of a `DualBroker` (see README, "Events"). */
export interface DualBrokerEvents {
  /** `protocolVersion`: what the upstream sessions speak until the broker is lost again. */
  'broker-up': [event: { broker: BrokerName, protocolVersion: 4 | 5 }]
  'broker-down': [event: { broker: BrokerName, reason: string }]
  /** Broker1 went down: publishes now follow the per-topic policy. */
  failover: [event: { reason: string }]
  /** Broker1 is back and nothing is pending: traffic returns to it. */
  failback: [event: { downMs: number }]
  /** Broker1 has been stable for `health.failbackDelayMs` and the store is replayed to it. */
  'replay-start': [event: { pending: number }]
  /** At most once a second during a replay. */
  'replay-progress': [event: { replayed: number, pending: number }]
  'replay-end': [event: { replayed: number, durationMs: number }]
  /** Messages discarded: by a `drop` policy, by a full store (`drop-oldest`), or expired (TTL). */
  dropped: [event: { reason: 'policy' | 'overflow' | 'expired' | 'refused', count: number, topic?: string }]
  /** A broker came back without some terminals' sessions: not whole there until restored or the terminals are back. */
  'sessions-lost': [event: { broker: BrokerName }]
  /** Every connected terminal's session at that broker is whole again. */
  'sessions-whole': [event: { broker: BrokerName }]
  /** A live publish was acked by its broker (emitted only while someone listens; for latency metrics). */
  'publish-acked': [event: { broker: BrokerName, qos: Qos, seconds: number }]
}

/** What the parts of the tier that report events see of it. */
export type TierEmitter = Pick<EventEmitter<DualBrokerEvents>, 'emit' | 'listenerCount'>
