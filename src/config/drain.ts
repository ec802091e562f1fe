import { ConfigError } from './errors.js'
import { mergeSources, type ConfigSources } from './load.js'
import { formatIssues } from './problems.js'
import { type ResolvedServerConfig, serverSchema } from './schema.js'

export type DrainConfig = ResolvedServerConfig & { broker1: NonNullable<ResolvedServerConfig['broker1']> }

/**
 * The configuration `drain` runs with: the node's own config file (so that `data`, `store`,
 * `replay`, `health` and Broker1's credentials are the node's), `--data` and `--broker1` on top.
 * Broker2 plays no part, so unlike the server's it need not be set; Broker1 must be.
 */
export function resolveDrainConfig (sources: ConfigSources): DrainConfig {
  const { merged, fromFlags, problems } = mergeSources(sources)
  const result = serverSchema.safeParse(merged)
  if (!result.success) problems.push(...formatIssues(result.error, merged, serverSchema, fromFlags))
  else if (result.data.broker1 === undefined) problems.push('broker1: missing: drain replays the store to Broker1 (--broker1 URL, or broker1.url in --config)')
  if (problems.length > 0 || !result.success || result.data.broker1 === undefined) throw new ConfigError(problems)
  return result.data as DrainConfig
}
