/**
 * The import graph of the package's own modules (src/ and plugins/), read from their
 * `import … from` and `export … from` statements, type-only ones included: a type import
 * ties two modules together for a reader as much as a value import does.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

export type ImportGraph = Map<string, Set<string>>

const SPECIFIER = /^\s*(?:import|export)\s[^'"]*?from\s+'(\.{1,2}\/[^']+)'/gm

function sources (root: string, folder: string): string[] {
  return readdirSync(join(root, folder), { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name)
    if (entry.isDirectory()) return sources(root, path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : []
  })
}

/** Module paths relative to `root`, e.g. `src/plugin.ts` → its imports. */
export function importGraph (root: string, folders: readonly string[] = ['src', 'plugins']): ImportGraph {
  const graph: ImportGraph = new Map()
  for (const file of folders.flatMap((folder) => sources(root, folder))) {
    const text = readFileSync(join(root, file), 'utf8')
    const imports = new Set<string>()
    for (const [, specifier] of text.matchAll(SPECIFIER)) {
      imports.add(relative(root, resolve(root, dirname(file), specifier!.replace(/\.js$/, '.ts'))))
    }
    graph.set(file, imports)
  }
  return graph
}

/** Every cycle found by a depth-first walk, each as the modules on it (first one repeated at the end). */
export function cycles (graph: ImportGraph): string[][] {
  const found: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const path: string[] = []
  const visit = (module: string): void => {
    state.set(module, 'open')
    path.push(module)
    for (const next of graph.get(module) ?? []) {
      if (state.get(next) === 'open') found.push([...path.slice(path.indexOf(next)), next])
      else if (!state.has(next)) visit(next)
    }
    path.pop()
    state.set(module, 'done')
  }
  for (const module of [...graph.keys()].sort()) if (!state.has(module)) visit(module)
  return found
}

/**
 * The same graph between parts: a folder of src/ (or plugins/) is one part, a module at the
 * top of src/ is a part of its own. An import within a part is no edge.
 */
export function partGraph (graph: ImportGraph): ImportGraph {
  const partOf = (module: string): string => {
    const steps = module.split('/')
    return steps.length > 2 ? steps.slice(0, 2).join('/') + '/' : module
  }
  const parts: ImportGraph = new Map()
  for (const [module, imports] of graph) {
    const from = partOf(module)
    const edges = parts.get(from) ?? new Set<string>()
    for (const target of imports) if (partOf(target) !== from) edges.add(partOf(target))
    parts.set(from, edges)
  }
  return parts
}
