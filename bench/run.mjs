#!/usr/bin/env node
// npm run bench [-- <case>...] [--runs N] [--quick] [--profile] [--heap] [--what-if-nodelay] [--out FILE]
//
// Runs the benchmark cases (all, or those named), each a few times alternating
// the tier and its baseline, prints a markdown table of median [min–max] per
// figure and writes the same as JSON (bench/results.json for a full run,
// bench/results-<cases>.json otherwise). Every process it starts is killed at
// the end, also on error, timeout or Ctrl-C. See bench/README.md.
import fs from 'node:fs'
import path from 'node:path'
import os from 'node:os'
import { execFileSync } from 'node:child_process'
import { CASES, settings } from './cases.mjs'
import { BENCH, BROKER_SETTINGS, DIRECT_PROTOCOL, ROOT, UPSTREAM_PROTOCOL, installCleanup, killAll, snapshotDist } from './lib/procs.mjs'
import { table } from './lib/stats.mjs'

const DEFAULT_RUNS = {
  'throughput-qos1': 3,
  'throughput-qos1-persistent': 3,
  'throughput-qos2': 3,
  'reconnect-storm': 3,
  'throughput-qos0': 3,
  latency: 3,
  'failover-kill': 3,
  'failover-stop': 3,
  failback: 3,
  ingest: 3,
  replay: 3,
  'replay-1m': 1,
  terminals: 3,
  nodes: 1,
  'node-loss': 2,
  'session-loss': 1,
  'relay-floor': 3
}
/** Cases in the order a full run runs them (not relay-floor: a reference for the ratios, run on its own). */
const FULL = ['throughput-qos1', 'throughput-qos1-persistent', 'throughput-qos2', 'reconnect-storm', 'throughput-qos0', 'latency', 'failover-kill', 'failover-stop', 'failback', 'ingest', 'replay', 'replay-1m', 'terminals', 'nodes', 'node-loss', 'session-loss']

function parseArgs (argv) {
  const opts = { cases: [], runs: undefined, quick: false, profile: false, heap: false, out: undefined }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--runs') opts.runs = Number(argv[++i])
    else if (a === '--quick') opts.quick = true
    else if (a === '--profile') opts.profile = true
    else if (a === '--heap') { opts.profile = true; opts.heap = true }
    else if (a === '--out') opts.out = argv[++i]
    else if (a === '--what-if-nodelay') opts.whatIfNoDelay = true
    else if (a === '--help' || a === '-h') opts.help = true
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}`)
    else opts.cases.push(a)
  }
  for (const name of opts.cases) {
    if (!(name in CASES)) throw new Error(`unknown case "${name}"; cases: ${Object.keys(CASES).join(', ')}`)
  }
  return opts
}

const BUDGET_MS = Number(process.env.BENCH_BUDGET_S ?? 1500) * 1000

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  if (opts.help) {
    process.stdout.write(`usage: npm run bench [-- <case>...] [--runs N] [--quick] [--profile] [--heap] [--what-if-nodelay] [--out FILE]\ncases: ${Object.keys(CASES).join(', ')}\n`)
    return 0
  }
  const names = opts.cases.length > 0 ? opts.cases : FULL
  settings.quick = opts.quick
  if (opts.profile) {
    settings.profileDir = path.join(BENCH, 'profiles', new Date().toISOString().replace(/[:.]/g, '-'))
    fs.mkdirSync(settings.profileDir, { recursive: true })
  }
  settings.heapSnapshots = opts.heap
  settings.whatIfNoDelay = opts.whatIfNoDelay === true
  if (!fs.existsSync(path.join(ROOT, 'dist/src/cli.js'))) throw new Error('dist/src/cli.js is missing: run `npm run build` first (npm run bench does)')
  const git = gitState() // before the copy: what the build was made from, as far as git can tell
  const snapshot = snapshotDist()

  const out = opts.out ?? path.join(BENCH, opts.cases.length === 0 ? 'results.json' : `results-${names.join('+')}.json`)
  const started = Date.now()
  const log = (line) => process.stderr.write(`${line}\n`)
  const results = {
    startedAt: new Date(started).toISOString(),
    git,
    machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, mosquitto: mosquittoVersion(), loadavg: os.loadavg() },
    // What each figure was measured against (README "Performance"): mosquitto as installed or tuned;
    // the tier's upstream sessions at the product's default, protocolVersion auto (MQTT 5 at mosquitto), unless BENCH_UPSTREAM.
    broker: { settings: BROKER_SETTINGS, upstreamProtocol: UPSTREAM_PROTOCOL, directProtocol: DIRECT_PROTOCOL },
    options: { cases: names, runs: opts.runs, quick: opts.quick, profile: settings.profileDir, whatIfNoDelay: settings.whatIfNoDelay },
    cases: [],
    complete: false
  }
  const finish = (complete) => {
    results.complete = complete
    results.durationS = (Date.now() - started) / 1000
    const md = table(results.cases)
    results.table = md
    fs.writeFileSync(out, JSON.stringify(results, (k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n')
    process.stdout.write(`\n${md}\n\n`)
    process.stdout.write(`${complete ? '' : 'INCOMPLETE: '}${results.cases.length} case(s) in ${results.durationS.toFixed(0)} s; results in ${path.relative(process.cwd(), out)}\n`)
  }
  installCleanup(() => finish(false))
  const watchdog = setTimeout(() => {
    log(`bench: over the ${BUDGET_MS / 1000} s budget: stopping`)
    finish(false)
    killAll()
    process.exit(1)
  }, BUDGET_MS)
  watchdog.unref()

  let failed = false
  for (const name of names) {
    const c = CASES[name]
    const runs = opts.runs ?? (opts.quick ? Math.min(2, DEFAULT_RUNS[name]) : DEFAULT_RUNS[name])
    const caseStart = Date.now()
    const loadavg = os.loadavg()
    log(`== ${name}: ${c.title} (${runs} run${runs === 1 ? '' : 's'} per mode)`)
    settings.raw = []
    try {
      const figures = await c.run({ runs, log })
      results.cases.push({ name, title: c.title, runs, seconds: (Date.now() - caseStart) / 1000, loadavg, figures, raw: settings.raw })
    } catch (err) {
      failed = true
      log(`  ${name} failed: ${err?.stack ?? err}`)
      results.cases.push({ name, title: c.title, runs, seconds: (Date.now() - caseStart) / 1000, error: String(err?.message ?? err), figures: [] })
    }
    killAll() // nothing of one case survives into the next
    log(`  (${((Date.now() - caseStart) / 1000).toFixed(1)} s; ${((Date.now() - started) / 1000).toFixed(0)} s so far)`)
  }
  clearTimeout(watchdog)
  finish(!failed)
  fs.rmSync(snapshot, { recursive: true, force: true })
  return failed ? 1 : 0
}

/** The code measured: HEAD and whether src/ had uncommitted changes (dist/ is built from the work tree). */
function gitState () {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'plugins'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean).length
    return { head, uncommittedFilesInSrc: dirty }
  } catch {
    return undefined
  }
}

function mosquittoVersion () {
  try {
    return execFileSync(process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto', ['-h'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]
  } catch (err) {
    return String(err.stdout ?? '').split('\n')[0] || 'unknown'
  }
}

main().then((code) => {
  killAll()
  process.exit(code)
}, (err) => {
  process.stderr.write(`bench: ${err?.stack ?? err}\n`)
  killAll()
  process.exit(1)
})
