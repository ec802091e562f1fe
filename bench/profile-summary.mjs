#!/usr/bin/env node
// Summarises V8 CPU profiles (`node --cpu-prof`, as `npm run bench -- --profile`
// writes them under bench/profiles/): self time per function and per package
// or source file, and inclusive time of the tier's own functions.
//   node bench/profile-summary.mjs <file.cpuprofile | dir> [--top N]
import fs from 'node:fs'
import path from 'node:path'

const args = process.argv.slice(2)
const topIndex = args.indexOf('--top')
const TOP = topIndex >= 0 ? Number(args.splice(topIndex, 2)[1]) : 25
const files = args.flatMap((p) => fs.statSync(p).isDirectory()
  ? fs.readdirSync(p, { recursive: true }).filter((f) => String(f).endsWith('.cpuprofile')).map((f) => path.join(p, String(f)))
  : [p])

function where (url) {
  if (url === '') return '(native/V8)'
  if (url.startsWith('node:')) return 'node core'
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  const dist = url.indexOf('/dist/')
  if (dist >= 0) return url.slice(dist + 1)
  return url.replace(/^file:\/\//, '')
}

function summarise (file) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'))
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  // Time per sample: the delta that follows it.
  const self = new Map()
  const deltas = profile.timeDeltas
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = deltas[i + 1] ?? 0
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt)
    total += dt
  }
  const byFn = new Map()
  const byWhere = new Map()
  const inclusive = new Map()
  let idle = 0
  for (const [id, us] of self) {
    const n = nodes.get(id)
    const cf = n.callFrame
    if (cf.functionName === '(idle)') idle += us
    const key = `${cf.functionName || '(anonymous)'} ${cf.url ? `${where(cf.url)}:${cf.lineNumber + 1}` : ''}`.trim()
    byFn.set(key, (byFn.get(key) ?? 0) + us)
    const w = cf.url ? where(cf.url) : cf.functionName
    byWhere.set(w, (byWhere.get(w) ?? 0) + us)
    // Inclusive time of each distinct function on the stack (counted once per sample).
    const seen = new Set()
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const f = nodes.get(cur).callFrame
      if (!f.url.includes('/dist/src/')) continue
      const k = `${f.functionName || '(anonymous)'} ${where(f.url)}:${f.lineNumber + 1}`
      if (seen.has(k)) continue
      seen.add(k)
      inclusive.set(k, (inclusive.get(k) ?? 0) + us)
    }
  }
  const busy = total - idle
  const pct = (us, of) => `${((100 * us) / of).toFixed(1)}%`.padStart(6)
  const lines = [`# ${file}`, `sampled ${(total / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(1)} s (${pct(busy, total).trim()} of wall); percentages below are of busy time`, '', '## self time by package / file']
  for (const [k, us] of [...byWhere].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, TOP)) lines.push(`${pct(us, busy)}  ${k}`)
  lines.push('', '## self time by function')
  for (const [k, us] of [...byFn].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, TOP)) lines.push(`${pct(us, busy)}  ${k}`)
  lines.push('', '## inclusive time of the tier\'s own functions (dist/src)')
  for (const [k, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, TOP)) lines.push(`${pct(us, busy)}  ${k}`)
  return lines.join('\n')
}

for (const file of files) process.stdout.write(`${summarise(file)}\n\n`)
