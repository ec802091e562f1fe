// Ad-hoc experiment: store ingest through the tier.  node bench/exp-ingest.mjs [fsync] [--nodelay] [--profile]
import { runIngest, settings } from './cases.mjs'
import { installCleanup, killAll } from './lib/procs.mjs'
installCleanup()
settings.whatIfNoDelay = process.argv.includes('--nodelay')
if (process.argv.includes('--profile')) settings.profileDir = '/tmp/prof-ingest-' + Date.now()
const fsync = process.argv[2]?.startsWith('--') ? 'batch' : (process.argv[2] ?? 'batch')
const r = await runIngest('tier', { measureMs: 3000, fsync })
console.log(JSON.stringify({ fsync, nodelay: settings.whatIfNoDelay, ...r, profile: settings.profileDir }))
killAll()
process.exit(0)
