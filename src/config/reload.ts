import type { ResolvedServerConfig } from './schema.js'
import { getPath, isTree, setPath, type Tree } from './tree.js'

/**
 * The keys a running server takes over on a reload (SIGHUP) without dropping a terminal or a
 * stored message. Every other key (brokers, listeners, the data dir, the store, the embedded
 * brokers, `health.keepaliveSeconds`, replay and dedup) needs a restart.
 */
export const LIVE_KEYS: ReadonlySet<string> = new Set([
  'policies',
  'defaultPolicy',
  'logLevel',
  'health.connectTimeoutMs',
  'health.ackTimeoutMs',
  'health.failbackDelayMs',
  'health.sessionRestoreTimeoutMs',
  'health.reconnectPeriodMs',
  'health.resendWindowMs',
  'limits.maxInflight',
  'limits.maxPacketSize',
  'limits.maxConnections',
  'limits.connectionRatePerSecond',
  'limits.connectTimeoutMs',
  'limits.maxConnectionsPerSource',
  'limits.maxPendingConnectsPerSource',
  'limits.maxFiltersPerSubscribe',
  'limits.maxSubscriptionsPerTerminal',
  'limits.maxTopicLength',
  'limits.maxClientIdLength',
  'limits.drainTimeoutMs'
])

/** What a reload does: the keys that changed and were applied, and those that changed but wait for a restart. */
export interface ReloadPlan {
  applied: string[]
  restartNeeded: string[]
  /** The running configuration with the applied keys taken over (the others keep their running value). */
  next: ResolvedServerConfig
}

export function planReload (running: ResolvedServerConfig, wanted: ResolvedServerConfig): ReloadPlan {
  const changed = changedKeys(running, wanted)
  const applied = changed.filter((key) => LIVE_KEYS.has(key))
  const next = structuredClone(running) as unknown as Tree
  for (const key of applied) setPath(next, key.split('.'), structuredClone(getPath(wanted, key.split('.'))))
  return { applied, restartNeeded: changed.filter((key) => !LIVE_KEYS.has(key)), next: next as unknown as ResolvedServerConfig }
}

/** Dotted paths of the leaves that differ; a list (policies) is one leaf, a section present on one side only is compared with an empty one. */
export function changedKeys (before: unknown, after: unknown, path = ''): string[] {
  if ((isTree(before) || before === undefined) && (isTree(after) || after === undefined) && before !== after) {
    const [from, to] = [(before ?? {}) as Tree, (after ?? {}) as Tree]
    const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])]
    return keys.flatMap((key) => changedKeys(from[key], to[key], path === '' ? key : `${path}.${key}`))
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [path]
}
