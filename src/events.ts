import type { BrokerName } from './upstream/broker-endpoint.js'
import type { BrokerState } from './upstream/broker-health.js'

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
}

/** Typed events of a `DualBroker` (see README, "Events"). */
export interface DualBrokerEvents {
  'broker-up': [event: { broker: BrokerName }]
  'broker-down': [event: { broker: BrokerName, reason: string }]
  /** Broker1 went down: publishes now follow the per-topic policy. */
  failover: [event: { reason: string }]
  /** Broker1 is back and nothing is pending: traffic returns to it. */
  failback: [event: { downMs: number }]
  error: [error: Error]
}
