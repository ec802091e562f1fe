/** Plain-object helpers for merging configuration layers. */
export type Tree = Record<string, unknown>

export function isTree (value: unknown): value is Tree {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function deepMerge (base: unknown, override: unknown): unknown {
  if (!isTree(base) || !isTree(override)) return override === undefined ? base : override
  const out: Tree = { ...base }
  for (const [key, value] of Object.entries(override)) out[key] = deepMerge(base[key], value)
  return out
}

export function getPath (value: unknown, path: PropertyKey[]): unknown {
  return path.reduce<unknown>((v, key) => (typeof v === 'object' && v !== null ? (v as Tree)[key as string] : undefined), value)
}

export function setPath (tree: Tree, path: string[], value: unknown): void {
  const last = path.at(-1)!
  let at = tree
  for (const key of path.slice(0, -1)) at = (at[key] ??= {}) as Tree
  at[last] = value
}
