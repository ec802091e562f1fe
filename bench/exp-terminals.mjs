// Ad-hoc experiment: idle terminals.  node bench/exp-terminals.mjs <tier|direct> <n> [--profile] [--heap] [--nodelay] [--idle=S,...] [--settle=S]
// --idle: RSS per terminal also S seconds after they connected (the figure itself is at 2 s)
// --settle: S seconds of quiet before the burst and after it, as the terminals case (kbPerTerminalSettled)
import { runTerminals, settings } from './cases.mjs'
import { installCleanup, killAll } from './lib/procs.mjs'
installCleanup()
const [mode, n] = process.argv.slice(2).filter((a) => !a.startsWith('--'))
settings.whatIfNoDelay = process.argv.includes('--nodelay')
if (process.argv.includes('--profile') || process.argv.includes('--heap')) settings.profileDir = '/tmp/prof-terms-' + Date.now()
settings.heapSnapshots = process.argv.includes('--heap')
const idleSamplesMs = (process.argv.find((a) => a.startsWith('--idle='))?.slice(7).split(',') ?? []).map((sec) => Number(sec) * 1000)
const settleMs = Number(process.argv.find((a) => a.startsWith('--settle='))?.slice(9) ?? 0) * 1000
const r = await runTerminals(mode, { n: Number(n), settleMs, idleSamplesMs })
console.log(JSON.stringify({ mode, n, ...r, profile: settings.profileDir }))
killAll()
process.exit(0)
