import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { cycles, importGraph, partGraph } from './support/import-graph.js'

// docs/ARCHITECTURE.md, "Which part imports which": what it says is checked here on the source.
const root = fileURLToPath(new URL('..', import.meta.url))
const graph = importGraph(root)
const parts = partGraph(graph)

t.test('no module imports one that imports it back, directly or around a cycle', async (t) => {
  t.ok(graph.size > 50, `${graph.size} modules read`)
  t.same(cycles(graph), [])
})

t.test('no part (a folder of src/, or a module at its top) imports one that imports it back', async (t) => {
  t.same(cycles(parts), [])
})

/** What each part may import; a part not listed may import any part below the server. */
const MAY_NOT_IMPORT: Record<string, RegExp> = {
  'src/mqtt/': /^src\/(?!mqtt\/)/,
  'src/aedes/': /^src\/(?!aedes\/|errors\.ts|mqtt\/)/,
  'src/upstream/': /^src\/(routing|failover|terminal|handlers)\/|^src\/(core|plugin|server)\.ts/,
  'src/routing/': /^src\/(failover|terminal|handlers)\/|^src\/(core|plugin|server)\.ts/,
  'src/failover/': /^src\/(terminal|handlers)\/|^src\/(core|plugin|server)\.ts/,
  'src/terminal/': /^src\/(failover|handlers|node)\/|^src\/(core|plugin|server)\.ts/,
  'src/node/': /^src\/(failover|terminal|handlers)\/|^src\/(core|plugin|server)\.ts/,
  'src/handlers/': /^src\/(failover|upstream\/(broker-health|connection)\.ts)|^src\/(core|plugin|server)\.ts/,
  'src/store/': /^src\/(?!store\/|errors\.ts|logger\.ts|mqtt\/)/,
  'src/config/': /^src\/(?!config\/|errors\.ts|store\/types\.ts)/
}

t.test('each part imports only the parts below it (upstream knows nothing of routing or failover)', async (t) => {
  for (const [module, imports] of graph) {
    const part = Object.keys(MAY_NOT_IMPORT).find((prefix) => module.startsWith(prefix))
    if (part === undefined) continue
    const wrong = [...imports].filter((target) => MAY_NOT_IMPORT[part]!.test(target))
    t.same(wrong, [], `${module}`)
  }
})

/** The rows of docs/ARCHITECTURE.md's parts table, bottom up: each row's folders and files. */
function partsOfTheMap (): string[][] {
  const map = readFileSync(new URL('docs/ARCHITECTURE.md', `file://${root}`), 'utf8')
  const table = map.slice(map.indexOf('| part | its job |'), map.indexOf('\nThe seams between parts'))
  return table.split('\n').slice(2).filter((row) => row.startsWith('|')).map((row) => [...row.split('|')[1]!.matchAll(/`((?:src|plugins)\/[^`]*)`/g)].map((m) => m[1]!))
}

t.test('docs/ARCHITECTURE.md\'s parts, in its order: every module is in one, and no import points down the list', async (t) => {
  const rows = partsOfTheMap()
  t.ok(rows.length >= 15, `${rows.length} parts read from the map`)
  const rowOf = (module: string): number => rows.findIndex((names) => names.some((name) => name.endsWith('/') ? module.startsWith(name) : module === name))
  const unmapped = [...graph.keys()].filter((module) => rowOf(module) === -1)
  t.same(unmapped, [], 'every module of src/ and plugins/ is in a row of the map')
  const downward: string[] = []
  for (const [module, imports] of graph) {
    for (const target of imports) if (rowOf(target) > rowOf(module)) downward.push(`${module} → ${target}`)
  }
  t.same(downward, [], 'each import points to its own part or one above it in the map')
})

t.test('the plugin entry knows no plugin and no server; plugins know only the public entry', async (t) => {
  const reachable = new Set<string>()
  const visit = (module: string): void => {
    if (reachable.has(module)) return
    reachable.add(module)
    for (const next of graph.get(module) ?? []) visit(next)
  }
  visit('src/index.ts')
  t.same([...reachable].filter((module) => module.startsWith('plugins/') || module === 'src/server.ts' || module === 'src/listeners.ts'), [])
  for (const [module, imports] of graph) {
    if (!module.startsWith('plugins/')) continue
    const inside = [...imports].filter((target) => target.startsWith('src/') && target !== 'src/index.ts' && target !== 'src/local-topics.ts')
    t.same(inside, [], `${module} imports the tier through src/index.ts`)
  }
})

t.test('only the Aedes adapter reaches into Aedes internals; no handler sees the tier', async (t) => {
  const INTERNALS = /\b_parser\b|\b_keepalive\w*|\b_disconnected\b|waitForDrain|\bhooksOf\(|\.opts\.drainTimeout/
  for (const module of graph.keys()) {
    if (module.startsWith('src/aedes/')) continue
    const text = readFileSync(new URL(module, `file://${root}`), 'utf8')
    t.notMatch(text, INTERNALS, `${module} leaves Aedes internals to src/aedes/`)
    if (module.startsWith('src/handlers/')) t.notMatch(text, /\bDualBroker\b|\bTierCore\b/, `${module} gets ports, not the tier`)
  }
})
