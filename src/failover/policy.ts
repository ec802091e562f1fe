import { Qlobber } from 'qlobber'
import type { PolicyMode, PolicyRule } from '../config/schema.js'

export type Qos = 0 | 1 | 2

export interface Policy {
  mode: PolicyMode
  /** Stored messages expire this many ms after they were accepted. */
  ttl?: number
  /** Forwarded at no higher QoS than this. */
  maxQos?: Qos
}

const CACHE_LIMIT = 10_000

/**
 * Per-topic failover policy: the first rule whose MQTT filter matches wins,
 * `defaultPolicy` otherwise. Matching is qlobber's (what Aedes itself uses),
 * configured for MQTT; answers are cached per topic since terminals publish on
 * few topics many times.
 */
export class PolicyTable {
  private readonly matcher = new Qlobber<number>({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true })
  private readonly policies: Policy[]
  private readonly fallback: Policy
  private readonly cache = new Map<string, Policy>()

  constructor (rules: readonly PolicyRule[], defaultMode: PolicyMode) {
    this.policies = rules.map(({ mode, ttl, maxQos }) => ({
      mode, ...(ttl !== undefined && { ttl }), ...(maxQos !== undefined && { maxQos })
    }))
    rules.forEach((rule, index) => this.matcher.add(rule.topic, index))
    this.fallback = { mode: defaultMode }
  }

  lookup (topic: string): Policy {
    let policy = this.cache.get(topic)
    if (policy !== undefined) return policy
    const matches = this.matcher.match(topic)
    policy = matches.length === 0 ? this.fallback : this.policies[Math.min(...matches)]!
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear()
    this.cache.set(topic, policy)
    return policy
  }
}
