import { newRefusalCounts, type RefusalCounts } from './limits/refusals.js'

export type BrokerName = 'broker1' | 'broker2'

/** `unknown` until the broker's health link has a first verdict. */
export type BrokerState = 'unknown' | 'up' | 'down'

export type TierMode = 'normal' | 'failover' | 'replaying'

/** The MQTT version of a broker's upstream sessions: 4 (3.1.1) or 5; null until `auto` has decided. */
export type UpstreamProtocol = 4 | 5 | null

export interface BrokerStatus {
  state: BrokerState
  url: string
  /** What the upstream sessions speak in this broker connection epoch (`broker*.protocolVersion`, `auto` decided). */
  protocolVersion: UpstreamProtocol
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
  /**
   * Connected terminals whose session at that broker is not whole: the broker came back without
   * it and the tier is re-subscribing, or the terminal was asked to reconnect and is not back yet.
   */
  sessionsLost: Record<BrokerName, number>
  counters: TierCounters
  /** The node's own session (the deployment's `aedes.publish` and `aedes.subscribe`): its client id, and where it is online. */
  node: { clientId: string, online: Record<BrokerName, boolean> }
}

/**
 * Why a terminal was asked to reconnect (its connection ended without a will) after a broker
 * came back without its session: `unknown-subscriptions`, the tier does not know them all (the
 * terminal's CONNACK said session present: they were made in an earlier connection or through
 * another node); `restore-refused`, the broker refused one of them again.
 */
export type ReconnectReason = 'unknown-subscriptions' | 'restore-refused'

export interface SessionLossCounts {
  /** Sessions a broker came back without, made whole again by re-subscribing what the tier knew. */
  restored: Record<BrokerName, number>
  /** Terminals asked to reconnect (ended without a will) because a broker lost their session, per reason. */
  reconnectsAsked: Record<BrokerName, Record<ReconnectReason, number>>
}

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
  dropped: { policy: number, overflow: number, expired: number, qos0: number, refused: number }
  failovers: number
  failbacks: number
  /** Copies of a message recognised and not delivered to a terminal again. */
  duplicates: number
  /** Connections, CONNECTs and filters refused by a limit, per reason (src/limits/refusals.ts). */
  refused: RefusalCounts
  /** Brokers that came back without a terminal's session (README "What a persistent terminal can rely on"). */
  sessions: SessionLossCounts
}

export function newCounters (): TierCounters {
  return {
    forwarded: { broker1: [0, 0, 0], broker2: [0, 0, 0] },
    stored: 0,
    replayed: 0,
    dropped: { policy: 0, overflow: 0, expired: 0, qos0: 0, refused: 0 },
    failovers: 0,
    failbacks: 0,
    duplicates: 0,
    refused: newRefusalCounts(),
    sessions: {
      restored: { broker1: 0, broker2: 0 },
      reconnectsAsked: {
        broker1: { 'unknown-subscriptions': 0, 'restore-refused': 0 },
        broker2: { 'unknown-subscriptions': 0, 'restore-refused': 0 }
      }
    }
  }
}
