/**
 * Bounds on what a config file may cost to read: its size, its nesting, its
 * YAML aliases, and what its problems print. A config is written by an
 * operator, but a wrong path (a log, a disk image, /dev/zero) or a generated
 * file must still end in one clear line and exit 2, not a hang or 20 MB of
 * stderr.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { isMap, isScalar, isSeq, type Document, type Node } from 'yaml'

export const MAX_FILE_BYTES = 1024 * 1024
/** Far deeper than the schema (4 levels) and shallow enough for every recursive step after parsing. */
export const MAX_DEPTH = 32
export const MAX_ALIASES = 100
export const MAX_PROBLEMS = 20
/** One problem line at most this long: a key or a value of a junk file can be a megabyte. */
export const MAX_LINE = 300

/** The file's text, refused past `MAX_FILE_BYTES` without reading further (so also /dev/zero or a FIFO). */
export function readBounded (path: string): string {
  const fd = openSync(path, 'r')
  try {
    if (fstatSync(fd).isDirectory()) throw Object.assign(new Error('is a folder'), { code: 'EISDIR' })
    const buffer = Buffer.alloc(MAX_FILE_BYTES + 1)
    let length = 0
    for (;;) {
      const read = readSync(fd, buffer, length, buffer.length - length, null)
      if (read === 0) break
      length += read
      if (length > MAX_FILE_BYTES) throw new TooLarge()
    }
    return buffer.toString('utf8', 0, length)
  } finally {
    closeSync(fd)
  }
}

export class TooLarge extends Error {
  constructor () {
    super(`larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB, the most a config file may be`)
  }
}

/**
 * The deepest nesting of brackets in `text` outside quoted strings, a cheap
 * look before a parser recurses into it (JSON and YAML flow collections).
 * Block nesting in YAML needs indentation, which the size bound keeps shallow.
 */
export function bracketDepth (text: string): number {
  let depth = 0
  let deepest = 0
  let quote = ''
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote !== '') {
      if (c === '\\' && quote === '"') i++
      else if (c === quote) quote = ''
    } else if (c === '"' || (c === '\'' && /[\s[{,:]/.test(text[i - 1] ?? ' '))) {
      quote = c
    } else if (c === '[' || c === '{') {
      if (++depth > deepest) deepest = depth
    } else if (c === ']' || c === '}') {
      depth--
    }
  }
  return deepest
}

/**
 * Duplicate keys of every mapping, with the offset of the repeated key. The
 * yaml package's own check compares each key with all before it (40,000 keys
 * took 18 s), so it is off and this one uses a set per mapping.
 */
export function duplicateKeys (doc: Document): Array<{ key: string, offset: number }> {
  const found: Array<{ key: string, offset: number }> = []
  const stack: unknown[] = [doc.contents]
  while (stack.length > 0) {
    const node = stack.pop()
    if (isSeq(node)) stack.push(...node.items)
    if (!isMap(node)) continue
    const seen = new Set<string>()
    for (const pair of node.items) {
      const key = pair.key
      const name = isScalar(key) ? String(key.value) : String(key)
      if (seen.has(name)) found.push({ key: name, offset: (key as Node | null)?.range?.[0] ?? 0 })
      seen.add(name)
      stack.push(pair.value)
    }
  }
  return found
}

/** How deep `value` nests (objects and arrays), counted without recursion, stopping past `limit`. */
export function depthOf (value: unknown, limit = MAX_DEPTH): number {
  let deepest = 0
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (typeof node !== 'object' || node === null) continue
    if (depth + 1 > deepest) deepest = depth + 1
    if (deepest > limit) return deepest
    for (const child of Object.values(node)) stack.push([child, depth + 1])
  }
  return deepest
}

/** V8's JSON errors quote a stretch of the input (which may hold a password): only the kind of error stays. */
export function jsonErrorText (message: string): string {
  return message.replace(/, (\.\.\.)?".*"(\.\.\.)? is not valid JSON$/s, '')
}

const MORE = /^… and (\d+) more$/

/** The line that stands for `count` problems not shown. */
export function moreLine (count: number): string {
  return `… and ${count} more`
}

/**
 * At most `MAX_PROBLEMS` lines, then one "… and N more" for the rest (and for the "… and N more"
 * lines already in `problems`, from a step that stopped describing early); each line at most `MAX_LINE`.
 */
export function capProblems (problems: string[]): string[] {
  let more = 0
  const shown: string[] = []
  for (const line of problems) {
    const counted = MORE.exec(line)
    if (counted !== null) more += Number(counted[1])
    else if (shown.length < MAX_PROBLEMS) shown.push(clipLine(line))
    else more++
  }
  if (more > 0) shown.push(moreLine(more))
  return shown
}

function clipLine (line: string): string {
  return line.length <= MAX_LINE ? line : `${line.slice(0, MAX_LINE - 1)}…`
}
