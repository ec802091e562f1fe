// Ad-hoc experiment: the failback case, printing each run's raw result.  node bench/exp-failback.mjs [runs]
import { runFailback } from './cases.mjs'
import { installCleanup, killAll } from './lib/procs.mjs'
installCleanup()
for (let i = 0; i < Number(process.argv[2] ?? 3); i++) {
  const r = await runFailback()
  console.log(JSON.stringify(r))
}
killAll()
process.exit(0)
