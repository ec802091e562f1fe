import type { z } from 'zod'
import { FLAGS } from './flags.js'
import { serverSchema } from './schema.js'
import { MAX_PROBLEMS, moreLine } from './bounds.js'
import { isSecretPath, maskSecrets } from './secrets.js'
import { getPath, isTree, type Tree } from './tree.js'

/**
 * One line per problem of a failed `schema.safeParse(input)`, each naming the key, the value and
 * what is expected; unknown keys get a did-you-mean. `fromFlags` (keys set by flags) adds "(from --flag)".
 * Only the first `MAX_PROBLEMS` are described (a did-you-mean each); the rest are counted in a last
 * "… and N more", so that a file of 800,000 unknown keys costs one pass over them.
 */
export function formatIssues (error: z.ZodError, input: unknown, schema: z.ZodType = serverSchema, fromFlags: Tree = {}): string[] {
  const lines: string[] = []
  let more = 0
  for (const issue of error.issues) {
    const room = MAX_PROBLEMS - lines.length
    const count = issue.code === 'unrecognized_keys' ? issue.keys.length : 1
    if (room <= 0) {
      more += count
      continue
    }
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys.slice(0, room)) lines.push(`${keyName([...issue.path, key])}: unknown key${didYouMean(key, issue.path, schema)}`)
      more += Math.max(0, count - room)
    } else {
      lines.push(describeIssue(issue, input, fromFlags))
    }
  }
  if (more > 0) lines.push(moreLine(more))
  return lines
}

/**
 * The unknown keys of `input`, found in one pass over it before anything is merged or parsed, when
 * there are more of them than are shown: a file of 800,000 junk keys is then refused in well under
 * a second (merging and parsing it would take seconds). Undefined otherwise.
 */
export function tooManyUnknownKeys (input: unknown, schema: z.ZodType = serverSchema): string[] | undefined {
  const lines: string[] = []
  let count = 0
  const walk = (value: unknown, path: PropertyKey[]): void => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, [...path, i]))
      return
    }
    if (!isTree(value)) return
    const shape = shapeAt(schema, path)
    if (Object.keys(shape).length === 0) return
    for (const key of Object.keys(value)) {
      if (Object.hasOwn(shape, key)) walk(value[key], [...path, key])
      else if (++count <= MAX_PROBLEMS) lines.push(`${keyName([...path, key])}: unknown key${didYouMean(key, path, schema)}`)
    }
  }
  walk(input, [])
  if (count <= MAX_PROBLEMS) return undefined
  return [...lines, moreLine(count - MAX_PROBLEMS)]
}

function describeIssue (issue: z.core.$ZodIssue, input: unknown, fromFlags: Tree): string {
  const raw = getPath(input, issue.path)
  const secret = isSecretPath(issue.path)
  const value = raw !== undefined && secret ? '***' : raw
  const expected = issue.message.startsWith('expected ') ? issue.message : expectation(issue)
  const what = expected === undefined
    ? (secret ? 'not valid' : maskSecrets(issue.message)) // our own messages (refine, size, duration) show the value
    : value === undefined ? `missing, ${expected}` : `${show(value)} is not valid: ${expected}`
  const flag = getPath(fromFlags, issue.path) === undefined
    ? undefined
    : FLAGS.find((f) => f.key.every((k, i) => issue.path[i] === k))?.flag
  return `${keyName(issue.path)}: ${what}${flag === undefined ? '' : ` (from ${flag})`}`
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

/** The key's dotted name; a key of a junk file can be a megabyte, or a URL with a password. */
function keyName (path: PropertyKey[]): string {
  if (path.length === 0) return '(config)'
  return path.map((p, i) => typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${maskSecrets(clipKey(String(p)))}`).join('')
}

function clipKey (key: string): string {
  return key.length <= 60 ? key : `${key.slice(0, 57)}...`
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
  const most = Math.min(2, Math.floor(key.length / 2))
  const close = Object.keys(shape)
    // Lengths further apart than the distance allowed cannot match: a long junk key costs nothing.
    .filter((known) => Math.abs(known.length - key.length) <= most + 2)
    .map((known) => ({ known, distance: editDistance(normal(key), normal(known)) }))
    .filter(({ distance }) => distance <= most)
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
