#!/usr/bin/env node
// Summarises a V8 heap snapshot (as `npm run bench -- terminals --heap` makes
// them: SIGUSR2 to the tier once the terminals are connected): objects and
// shallow bytes per constructor, optionally divided by the number of terminals.
//   node bench/heap-summary.mjs <after.heapsnapshot> [--base before.heapsnapshot] [--per N] [--top N]
// With --base, the figures are after minus before.
import fs from 'node:fs'

const args = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = args.indexOf(name)
  return i >= 0 ? Number(args.splice(i, 2)[1]) : fallback
}
const per = opt('--per', 1)
const top = opt('--top', 40)
const baseIndex = args.indexOf('--base')
const basePath = baseIndex >= 0 ? args.splice(baseIndex, 2)[1] : undefined

function groupsOf (file) {
  const snapshot = JSON.parse(fs.readFileSync(file, 'utf8'))
  const { node_fields: fields, node_types: [types] } = snapshot.snapshot.meta
  const F = fields.length
  const iType = fields.indexOf('type')
  const iName = fields.indexOf('name')
  const iSize = fields.indexOf('self_size')
  const nodes = snapshot.nodes
  const strings = snapshot.strings
  const groups = new Map()
  let total = 0
  for (let i = 0; i < nodes.length; i += F) {
    const type = types[nodes[i + iType]]
    const size = nodes[i + iSize]
    total += size
    let name = type === 'object' || type === 'closure' || type === 'native' ? strings[nodes[i + iName]] : `(${type})`
    if (type === 'closure') name = `closure ${name || '(anonymous)'}`
    if (name.length > 60) name = name.slice(0, 57) + '...'
    const g = groups.get(name) ?? { count: 0, bytes: 0 }
    g.count++
    g.bytes += size
    groups.set(name, g)
  }
  return { groups, total, objects: nodes.length / F }
}

const after = groupsOf(args[0])
const groups = after.groups
let total = after.total
if (basePath !== undefined) {
  const before = groupsOf(basePath)
  total -= before.total
  for (const [name, g] of before.groups) {
    const a = groups.get(name) ?? { count: 0, bytes: 0 }
    groups.set(name, { count: a.count - g.count, bytes: a.bytes - g.bytes })
  }
}
const nodes = { length: after.objects }
const F = 1
const kb = (b) => (b / 1024).toFixed(2).padStart(9)
process.stdout.write(`heap ${basePath ? 'growth ' : ''}${(total / 1048576).toFixed(1)} MB (${nodes.length / F} objects after)${per > 1 ? `; per terminal (÷${per}): ${kb(total / per)} KB` : ''}\n`)
process.stdout.write(`${'KB/terminal'.padStart(11)} ${'objs/term'.padStart(9)}  constructor\n`)
for (const [name, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) {
  process.stdout.write(`${kb(g.bytes / per).padStart(11)} ${(g.count / per).toFixed(1).padStart(9)}  ${name}\n`)
}
