// Experiment (one run of the `session-loss` bench case, any N): N persistent terminals connected through the tier when Broker1 (mosquitto,
// persistence false) is SIGKILLed and comes back empty. Prints the time from Broker1's restart
// until every session there is whole, until failback, the failback wait the sessions cost, and
// the messages delivered after failback (one QoS 1 message per terminal, straight at Broker1).
//   node bench/exp-session-loss.mjs [n=1000] [known|unknown] [failbackDelayMs=2000]
// known: the terminals subscribed in this connection (the tier restores them);
// unknown: in an earlier one (the tier asks them to reconnect; they subscribe again on session present 0).
import { installCleanup, killAll } from './lib/procs.mjs'
import { runSessionLoss } from './session-loss.mjs'

const n = Number(process.argv[2] ?? 1000)
const known = (process.argv[3] ?? 'unknown') === 'known'
const failbackDelayMs = Number(process.argv[4] ?? 2000)
installCleanup()
console.log(JSON.stringify(await runSessionLoss({ add: (item) => item }, { n, known, failbackDelayMs })))
killAll()
process.exit(0)
