import type { BrokerName } from './upstream/broker-endpoint.js'
import type { BrokerState } from './upstream/broker-health.js'
import type { TierCounters } from './failover/counters.js'

export type { TierCounters }

export type { BrokerName, BrokerState }

export type TierMode = 'normal' | 'failover' | 'replaying'

export interface BrokerStatus {
  state: BrokerState
  url: string
}

/** `tier.state`: a snapshot, safe to serialise. */
export interface TierState {
  mode: TierMode
  brokers: Record<BrokerName, BrokerStatus>
  /** Connected terminals with an upstream session pair. */
  clients: number
  pending: { messages: number, bytes: number }
  /** Whether the pending store takes writes; `error` is the last write error while it does not. */
  store: { enabled: boolean, writable: boolean, error?: string }
  counters: TierCounters
}

/** Typed events of a `DualBroker` (see README, "Events"). */
export interface DualBrokerEvents {
  'broker-up': [event: { broker: BrokerName }]
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
  dropped: [event: { reason: 'policy' | 'overflow' | 'expired', count: number, topic?: string }]
  /** A live publish was acked by its broker (emitted only while someone listens; for latency metrics). */
  'publish-acked': [event: { broker: BrokerName, qos: 0 | 1 | 2, seconds: number }]
  error: [error: Error]
}
