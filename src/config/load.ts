import { extname } from 'node:path'
import { parseDocument } from 'yaml'
import { bracketDepth, depthOf, duplicateKeys, jsonErrorText, MAX_ALIASES, MAX_DEPTH, MAX_PROBLEMS, moreLine, readBounded, TooLarge } from './bounds.js'
import { mapFlags, type CliFlags } from './flags.js'
import { ConfigError } from './errors.js'
import { formatIssues, tooManyUnknownKeys } from './problems.js'
import { serverSchema, type ResolvedServerConfig } from './schema.js'
import { deepMerge, isTree, type Tree } from './tree.js'

export { ConfigError } from './errors.js'
export { formatIssues } from './problems.js'
export { flagsToConfig, type CliFlags } from './flags.js'
export { maskSecrets, redactText } from './secrets.js'

/**
 * Parse a YAML or JSON config file; an empty file is an empty config. A file too large, too
 * deep or with too many aliases is refused like any other bad config (src/config/bounds.ts).
 */
export function loadConfigFile (path: string): unknown {
  let text: string
  try {
    text = readBounded(path)
  } catch (err) {
    if (err instanceof TooLarge) throw new ConfigError([`config file ${path}: ${err.message}`])
    throw new ConfigError([`config file ${path}: cannot read it (${(err as Error).message.replace(/, open .*$/, '')})`])
  }
  if (bracketDepth(text) > MAX_DEPTH) throw new ConfigError([`config file ${path}: nested more than ${MAX_DEPTH} levels deep`])
  let value: unknown
  if (extname(path).toLowerCase() === '.json') {
    try {
      value = JSON.parse(text)
    } catch (err) {
      const message = (err as Error).message
      const at = /position (\d+)/.exec(message)
      throw new ConfigError([`config file ${path}${at === null ? '' : lineColumn(text, Number(at[1]))}: invalid JSON: ${jsonErrorText(message)}`])
    }
  } else {
    value = parseYaml(path, text)
  }
  if (depthOf(value) > MAX_DEPTH) throw new ConfigError([`config file ${path}: nested more than ${MAX_DEPTH} levels deep`])
  return value
}

/** YAML is a superset of JSON, so any other extension is read as YAML. */
function parseYaml (path: string, text: string): unknown {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: false })
  const found = [
    ...doc.errors.map((e) => ({ offset: e.pos[0], message: e.message })),
    ...duplicateKeys(doc).map(({ key, offset }) => ({ offset, message: `map keys must be unique (${JSON.stringify(key.slice(0, 40))} is repeated)` }))
  ]
  if (found.length > 0) {
    // Placed in the text only as many as are shown: each placing reads the text up to its offset.
    const problems = found.slice(0, MAX_PROBLEMS).map(({ offset, message }) => `config file ${path}${lineColumn(text, offset)}: invalid YAML: ${message}`)
    if (found.length > MAX_PROBLEMS) problems.push(moreLine(found.length - MAX_PROBLEMS))
    throw new ConfigError(problems)
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIASES }) ?? {}
  } catch (err) {
    // The yaml package's words for an alias bomb: "Excessive alias count indicates a resource exhaustion attack".
    throw new ConfigError([`config file ${path}: invalid YAML: ${(err as Error).message} (at most ${MAX_ALIASES} aliases are expanded)`])
  }
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
  const junk = tooManyUnknownKeys(sources.file)
  if (junk !== undefined) throw new ConfigError(junk)
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

