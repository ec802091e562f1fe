import { readFileSync } from 'node:fs'
import { extname } from 'node:path'
import { parseDocument } from 'yaml'
import { mapFlags, type CliFlags } from './flags.js'
import { ConfigError } from './errors.js'
import { formatIssues } from './problems.js'
import { serverSchema, type ResolvedServerConfig } from './schema.js'
import { deepMerge, isTree, type Tree } from './tree.js'

export { ConfigError } from './errors.js'
export { formatIssues } from './problems.js'
export { flagsToConfig, type CliFlags } from './flags.js'
export { maskSecrets, redactText } from './secrets.js'

/** Parse a YAML or JSON config file; an empty file is an empty config. */
export function loadConfigFile (path: string): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError([`config file ${path}: cannot read it (${(err as Error).message.replace(/, open .*$/, '')})`])
  }
  if (extname(path).toLowerCase() === '.json') {
    try {
      return JSON.parse(text)
    } catch (err) {
      const message = (err as Error).message
      const at = /position (\d+)/.exec(message)
      throw new ConfigError([`config file ${path}${at === null ? '' : lineColumn(text, Number(at[1]))}: invalid JSON: ${message}`])
    }
  }
  // YAML is a superset of JSON, so any other extension is read as YAML.
  const doc = parseDocument(text, { prettyErrors: false })
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `config file ${path}${lineColumn(text, e.pos[0])}: invalid YAML: ${e.message}`))
  }
  return doc.toJS() ?? {}
}

function lineColumn (text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n')
  return ` line ${before.length}, column ${before.at(-1)!.length + 1}`
}

/** Environment variables read for secrets only, so that passwords need not sit in a config file. */
export const ENV_PASSWORDS = {
  broker1: 'AEDES_DUAL_BROKER_BROKER1_PASSWORD',
  broker2: 'AEDES_DUAL_BROKER_BROKER2_PASSWORD'
} as const

export interface ConfigSources {
  /** The parsed config file (see loadConfigFile). */
  file?: unknown
  /** Command-line flags, as commander gives them. */
  flags?: CliFlags
  env?: Record<string, string | undefined>
}

/**
 * Defaults ← file ← environment ← flags, validated. Throws a ConfigError naming every problem
 * at once: the bad flags, and each bad or unknown key.
 */
export function resolveConfig (sources: ConfigSources): ResolvedServerConfig {
  const { merged, fromFlags, problems } = mergeSources(sources)
  if (isTree(merged) && (merged.broker1 === undefined) !== (merged.broker2 === undefined)) {
    const [missing, set] = merged.broker1 === undefined ? ['broker1', 'broker2'] : ['broker2', 'broker1']
    problems.push(`${missing}: missing, needed because ${set} is set (set neither to use two embedded brokers)`)
  }
  const result = serverSchema.safeParse(merged)
  if (!result.success) problems.push(...formatIssues(result.error, merged, serverSchema, fromFlags))
  if (problems.length > 0 || !result.success) throw new ConfigError(problems)
  return result.data
}

/** The sources merged as given (no defaults, nothing parsed), the keys the flags set, and a line per bad flag. */
export function mergeSources ({ file, flags = {}, env = {} }: ConfigSources): { merged: unknown, fromFlags: Tree, problems: string[] } {
  const { config: fromFlags, problems } = mapFlags(flags)
  let merged: unknown = file ?? {}
  if (isTree(merged)) {
    const tree: Tree = { ...merged }
    for (const [broker, variable] of Object.entries(ENV_PASSWORDS)) {
      // Only for a broker that is configured: the embedded brokers take no credentials.
      const password = env[variable]
      const configured = isTree(tree[broker]) || (tree[broker] === undefined && fromFlags[broker] !== undefined)
      if (password !== undefined && password !== '' && configured) {
        tree[broker] = deepMerge(tree[broker], { password })
      }
    }
    merged = deepMerge(tree, fromFlags)
    // Flag policies come first: the first matching rule wins, so the command line overrides the file.
    if (Array.isArray(fromFlags.policies) && Array.isArray(tree.policies)) {
      (merged as Tree).policies = [...fromFlags.policies, ...tree.policies]
    }
  }
  return { merged, fromFlags, problems }
}

