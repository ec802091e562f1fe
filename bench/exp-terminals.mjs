// Ad-hoc experiment: idle terminals.  node bench/exp-terminals.mjs <tier|direct> <n> [--profile] [--heap] [--nodelay]
import { runTerminals, settings } from './cases.mjs'
import { installCleanup, killAll } from './lib/procs.mjs'
installCleanup()
const [mode, n] = process.argv.slice(2).filter((a) => !a.startsWith('--'))
settings.whatIfNoDelay = process.argv.includes('--nodelay')
if (process.argv.includes('--profile') || process.argv.includes('--heap')) settings.profileDir = '/tmp/prof-terms-' + Date.now()
settings.heapSnapshots = process.argv.includes('--heap')
const r = await runTerminals(mode, { n: Number(n) })
console.log(JSON.stringify({ mode, n, ...r, profile: settings.profileDir }))
killAll()
process.exit(0)
