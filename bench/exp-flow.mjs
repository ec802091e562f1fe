// Ad-hoc experiment: one flow at a fixed rate through the tier or direct.
//   [EXP_TIER_CONFIG=json] node bench/exp-flow.mjs <tier|direct> <qos> <rate> [measureMs] [--nodelay] [--persistent]
import { runFlow, settings } from './cases.mjs'
import { installCleanup, killAll } from './lib/procs.mjs'
installCleanup()
const [mode, qos, rate, measureMs = '4000'] = process.argv.slice(2).filter((a) => !a.startsWith('--'))
settings.whatIfNoDelay = process.argv.includes('--nodelay')
if (process.argv.includes('--profile')) settings.profileDir = '/tmp/prof-' + Date.now()
const legs = process.argv.find((a) => a.startsWith('--legs='))?.slice(7) ?? 'both'
const tierConfig = JSON.parse(process.env.EXP_TIER_CONFIG ?? '{}') // e.g. '{"health":{"resendWindowMs":0}}'
const subClean = !process.argv.includes('--persistent') // the subscriber clean: false, as throughput-qos1-persistent
const r = await runFlow(mode, { qos: Number(qos), rate: Number(rate), measureMs: Number(measureMs), latency: true, legs, tierConfig, subClean })
console.log(JSON.stringify({ mode, legs, nodelay: settings.whatIfNoDelay, qos, rate, msgsPerSec: r.msgsPerSec, published: r.published, tierCpuUsPerMsg: r.tierCpuUsPerMsg, lat: r.latency }))
killAll()
process.exit(0)
