import type { BrokerName } from '../upstream/broker-endpoint.js'

/**
 * Running totals of what the tier did with publishes, exposed in `tier.state`
 * so that metrics are read at scrape time instead of counted per event.
 */
export interface TierCounters {
  /** Publishes a broker acked (QoS 1/2) or that were written to it (QoS 0), per QoS. */
  forwarded: Record<BrokerName, [number, number, number]>
  /** Publishes committed to the pending store. */
  stored: number
  /** Stored publishes Broker1 (or Broker2) acked on replay. */
  replayed: number
  dropped: { policy: number, overflow: number, expired: number, qos0: number }
  failovers: number
  failbacks: number
  /** Copies of a message recognised and not delivered to a terminal again. */
  duplicates: number
  /** Terminals refused (CONNACK 3) for a ceiling of the node: `source-ports`, no source port free for their upstream sockets. */
  refused: { 'source-ports': number }
}

export function newCounters (): TierCounters {
  return {
    forwarded: { broker1: [0, 0, 0], broker2: [0, 0, 0] },
    stored: 0,
    replayed: 0,
    dropped: { policy: 0, overflow: 0, expired: 0, qos0: 0 },
    failovers: 0,
    failbacks: 0,
    duplicates: 0,
    refused: { 'source-ports': 0 }
  }
}
