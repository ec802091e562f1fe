import { embeddedPorts, listenHost, usesEmbeddedBrokers } from './demo.js'
import type { ResolvedServerConfig } from './schema.js'
import { maskSecrets } from './secrets.js'
import { isTree, type Tree } from './tree.js'

/**
 * What `--print-config` shows: the effective configuration, with durations and sizes as they
 * were written (`ttl: "1h"`, not 3600000), the listener's host and, in demo mode, the ports of
 * the embedded brokers a start would use; secrets masked. It is itself a valid config file.
 */
export function printableConfig (resolved: ResolvedServerConfig, given: unknown): Tree {
  const out = asGiven(resolved, given) as Tree
  out.listen = { ...(out.listen as Tree), host: listenHost(resolved) }
  if (usesEmbeddedBrokers(resolved)) out.embeddedPorts = embeddedPorts(resolved)
  return maskSecrets(out)
}

/** `value` with each number that was given as text (a unit such as "10m" or "512MiB") put back as that text. */
function asGiven (value: unknown, given: unknown): unknown {
  if (typeof value === 'number') return typeof given === 'string' ? given : value
  if (Array.isArray(value)) return value.map((item, i) => asGiven(item, Array.isArray(given) ? given[i] : undefined))
  if (isTree(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, asGiven(v, isTree(given) ? given[key] : undefined)]))
  }
  return value
}
