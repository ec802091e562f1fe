import type { z } from 'zod'
import { FLAGS } from './flags.js'
import { serverSchema } from './schema.js'
import { maskSecrets, SECRET_KEYS } from './secrets.js'
import { getPath, type Tree } from './tree.js'

/**
 * One line per problem of a failed `schema.safeParse(input)`, each naming the key, the value and
 * what is expected; unknown keys get a did-you-mean. `fromFlags` (keys set by flags) adds "(from --flag)".
 */
export function formatIssues (error: z.ZodError, input: unknown, schema: z.ZodType = serverSchema, fromFlags: Tree = {}): string[] {
  return error.issues.flatMap((issue) => describeIssue(issue, input, schema, fromFlags))
}

function describeIssue (issue: z.core.$ZodIssue, input: unknown, schema: z.ZodType, fromFlags: Tree): string[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `${keyName([...issue.path, key])}: unknown key${didYouMean(key, issue.path, schema)}`)
  }
  const raw = getPath(input, issue.path)
  const value = raw !== undefined && SECRET_KEYS.test(String(issue.path.at(-1))) ? '***' : raw
  const expected = issue.message.startsWith('expected ') ? issue.message : expectation(issue)
  const what = expected === undefined
    ? issue.message // our own messages (refine, size, duration) already show the value
    : value === undefined ? `missing, ${expected}` : `${show(value)} is not valid: ${expected}`
  const flag = getPath(fromFlags, issue.path) === undefined
    ? undefined
    : FLAGS.find((f) => f.key.every((k, i) => issue.path[i] === k))?.flag
  return [`${keyName(issue.path)}: ${what}${flag === undefined ? '' : ` (from ${flag})`}`]
}

const TYPE_NAMES: Record<string, string> = {
  int: 'an integer', number: 'a number', string: 'a string', boolean: 'true or false', object: 'a mapping of keys', array: 'a list'
}

/** "expected …" for zod's own issues, whose default wording is generic; undefined for custom issues. */
function expectation (issue: z.core.$ZodIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type': return `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}`
    case 'invalid_value': return `expected ${issue.values.length === 1 ? '' : 'one of '}${issue.values.map((v) => JSON.stringify(v)).join(', ')}`
    case 'too_small':
    case 'too_big': {
      const bound = Number(issue.code === 'too_big' ? issue.maximum : issue.minimum)
      const words = issue.code === 'too_big' ? (issue.inclusive === true ? 'at most' : 'below') : (issue.inclusive === true ? 'at least' : 'above')
      if (issue.origin === 'string') return bound === 1 && issue.code === 'too_small' ? 'expected a non-empty string' : `expected ${words} ${bound} characters`
      if (issue.origin === 'array') return `expected ${words} ${bound} items`
      return `expected a number ${words} ${bound}`
    }
    case 'invalid_union': {
      const options = issue.errors.flatMap((branch) => {
        const first = branch[0] === undefined ? undefined : expectation(branch[0])
        return first === undefined ? [] : [first.replace(/^expected /, '')]
      })
      return options.length > 0 ? `expected ${[...new Set(options)].join(' or ')}` : undefined
    }
    case 'custom': return undefined
    default: return `expected ${issue.message.replace(/^[^:]*: /, '')}`
  }
}

function keyName (path: PropertyKey[]): string {
  if (path.length === 0) return '(config)'
  return path.map((p, i) => typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`).join('')
}

function show (value: unknown): string {
  const text = JSON.stringify(maskSecrets(value)) ?? String(value)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

/** The schema nodes walked for did-you-mean: zod 4 keeps each node's definition in `_zod.def`. */
interface SchemaNode { _zod: { def: { type: string, innerType?: SchemaNode, in?: SchemaNode, element?: SchemaNode, shape?: Record<string, SchemaNode> } } }

function unwrap (node: SchemaNode): SchemaNode {
  const def = node._zod.def
  if (def.innerType !== undefined) return unwrap(def.innerType) // optional, default
  if (def.type === 'pipe' && def.in !== undefined) return unwrap(def.in) // transform
  return node
}

function shapeAt (schema: z.ZodType, path: PropertyKey[]): Record<string, SchemaNode> {
  let node: SchemaNode | undefined = unwrap(schema as unknown as SchemaNode)
  for (const step of path) {
    const def: SchemaNode['_zod']['def'] = node._zod.def
    node = def.type === 'array' ? def.element : def.shape?.[String(step)]
    if (node === undefined) return {}
    node = unwrap(node)
  }
  return node._zod.def.shape ?? {}
}

/** A hint for a misspelt key, or for a key put one level too high (e.g. `port` for `listen.port`). */
function didYouMean (key: string, path: PropertyKey[], schema: z.ZodType): string {
  const shape = shapeAt(schema, path)
  const normal = (s: string): string => s.toLowerCase().replace(/[-_]/g, '')
  const close = Object.keys(shape)
    .map((known) => ({ known, distance: editDistance(normal(key), normal(known)) }))
    .filter(({ distance }) => distance <= Math.min(2, Math.floor(key.length / 2)))
    .sort((a, b) => a.distance - b.distance)[0]?.known
  if (close !== undefined) return ` (did you mean "${close}"?)`
  const nested = Object.keys(shape).find((parent) => Object.hasOwn(shapeAt(schema, [...path, parent]), key))
  return nested === undefined ? '' : ` (did you mean "${keyName([...path, nested, key])}"?)`
}

/** Edit distance where swapping two neighbours counts as one edit (optimal string alignment): "ulr" is 1 from "url". */
function editDistance (a: string, b: string): number {
  let before: number[] = []
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) next[j] = Math.min(next[j]!, before[j - 2]! + 1)
    }
    before = row
    row = next
  }
  return row[b.length]!
}
