/**
 * Where a terminal's publish goes, in every mode (docs/ARCHITECTURE.md,
 * "A PUBLISH's path"): the per-topic policy that applies to its topic, and the
 * route that policy, the tier's mode and the links' state give it. Pure: the
 * failover mode machine sets the mode, the outbox asks for routes.
 */
import { Qlobber } from 'qlobber'
import type { PolicyMode, PolicyRule } from '../config/schema.js'
import type { TierMode } from '../events.js'
import type { Qos } from '../mqtt/protocol.js'

export interface Policy {
  mode: PolicyMode
  /** Stored messages expire this many ms after they were accepted. */
  ttl?: number
  /** Forwarded at no higher QoS than this. */
  maxQos?: Qos
}

/** What routing needs of one of the terminal's upstream sessions. */
export interface RouteTarget {
  readonly online: boolean
}

/**
 * Where one terminal publish goes (README "Per-topic policy"):
 * - `live`: sent on the terminal's own session at that broker; acked when the broker acks.
 * - `store`: committed to the pending store, replayed to Broker1 (or, `anyBroker`, to the first broker back).
 * - `both`: sent live to Broker2 and stored for Broker1.
 * - `wait`: held in memory, unacknowledged, until a session comes online (no store, or the
 *   terminal's own Broker1 session is reconnecting while Broker1 is up).
 * - `drop`: discarded by policy, counted.
 */
export type Route<Target extends RouteTarget = RouteTarget> =
  | { kind: 'live', link: Target }
  | { kind: 'store', anyBroker: boolean }
  | { kind: 'both', link: Target }
  | { kind: 'wait' }
  | { kind: 'drop' }

const WAIT = { kind: 'wait' } as const
const DROP = { kind: 'drop' } as const
const STORE = { kind: 'store', anyBroker: false } as const
const STORE_ANY = { kind: 'store', anyBroker: true } as const

const POLICY_CACHE_LIMIT = 10_000

/**
 * Per-topic failover policy: the first rule whose MQTT filter matches wins,
 * `defaultPolicy` otherwise. Matching is qlobber's (what Aedes itself uses),
 * configured for MQTT; answers are cached per topic since terminals publish on
 * few topics many times.
 */
export class PolicyTable {
  private readonly matcher = new Qlobber<number>({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true })
  private readonly policies: Policy[]
  /** Rules whose filter begins with a wildcard: they match no `$` topic [MQTT-4.7.2-1]. */
  private readonly wildcardFirst: boolean[]
  private readonly fallback: Policy
  private readonly cache = new Map<string, Policy>()

  constructor (rules: readonly PolicyRule[], defaultMode: PolicyMode) {
    this.policies = rules.map(({ mode, ttl, maxQos }) => ({
      mode, ...(ttl !== undefined && { ttl }), ...(maxQos !== undefined && { maxQos })
    }))
    this.wildcardFirst = rules.map(({ topic }) => topic.startsWith('#') || topic.startsWith('+'))
    rules.forEach((rule, index) => this.matcher.add(rule.topic, index))
    this.fallback = { mode: defaultMode }
  }

  lookup (topic: string): Policy {
    let policy = this.cache.get(topic)
    if (policy !== undefined) return policy
    let matches = this.matcher.match(topic)
    if (topic.startsWith('$')) matches = matches.filter((index) => !this.wildcardFirst[index])
    policy = matches.length === 0 ? this.fallback : this.policies[Math.min(...matches)]!
    if (this.cache.size >= POLICY_CACHE_LIMIT) this.cache.clear()
    this.cache.set(topic, policy)
    return policy
  }
}

/**
 * The routing decision, in one place. `links[0]` is the terminal's session at
 * Broker1, `links[1]` at Broker2. While a backlog is replaying, everything for
 * Broker1 goes behind it into the store, so Broker1 sees the accepted order.
 */
export function route<Target extends RouteTarget> (policy: Policy, mode: TierMode, links: readonly Target[], hasStore: boolean): Route<Target> {
  const [primary, standby] = links as unknown as [Target, Target]
  if (mode === 'normal') return primary.online ? { kind: 'live', link: primary } : WAIT
  if (mode === 'replaying') return hasStore ? STORE : WAIT
  switch (policy.mode) {
    case 'drop': return DROP
    case 'failover':
      if (standby.online) return { kind: 'live', link: standby }
      return hasStore ? STORE_ANY : WAIT
    case 'queue': return hasStore ? STORE : WAIT
    case 'both':
      if (standby.online) return hasStore ? { kind: 'both', link: standby } : { kind: 'live', link: standby }
      return hasStore ? STORE : WAIT
  }
}

/**
 * The tier's routing state, shared by every terminal's outbox: the policies
 * (replaced whole on a reload; publishes already routed keep theirs), the
 * mode, and whether the pending store takes publishes now.
 */
export class RoutingTable {
  mode: TierMode = 'normal'
  /** False without a store, and while a replay that caught up holds new publishes back from it. */
  storeOpen: boolean

  constructor (private policies: PolicyTable, readonly hasStore: boolean) {
    this.storeOpen = hasStore
  }

  usePolicies (policies: PolicyTable): void {
    this.policies = policies
  }

  policyFor (topic: string): Policy {
    return this.policies.lookup(topic)
  }

  route<Target extends RouteTarget> (policy: Policy, links: readonly Target[]): Route<Target> {
    return route(policy, this.mode, links, this.storeOpen)
  }
}
