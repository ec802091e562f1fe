// Ad-hoc experiment: replay of a prefilled backlog, with a CPU profile and a
// heap snapshot taken `snapAtMs` after the tier started.
//   node bench/exp-replay.mjs <count> [snapAtMs] [--nodelay]
import { setTimeout as sleep } from 'node:timers/promises'
import { runReplay, settings } from './cases.mjs'
import { installCleanup, killAll, memOf } from './lib/procs.mjs'
installCleanup()
const [count, snapAt] = process.argv.slice(2).filter((a) => !a.startsWith('--')).map(Number)
settings.whatIfNoDelay = process.argv.includes('--nodelay')
settings.profileDir = '/tmp/prof-replay-' + Date.now()
const rssAt = []
const r = await runReplay('tier', {
  count,
  onTier: async (tier) => {
    for (let t = 0; t < 120 && tier.running; t++) { rssAt.push(memOf(tier.pid).rss); await sleep(1000) }
  },
  ...(snapAt > 0 && { onTier: (tier) => { setTimeout(() => tier.entry.child.kill('SIGUSR2'), snapAt) } })
})
console.log(JSON.stringify({ count, ...r, rssMbEachSecond: rssAt.map((kb) => Math.round(kb / 1024)), profile: settings.profileDir }))
killAll()
process.exit(0)
