import t from 'tap'
import { readdirSync } from 'node:fs'
import { startCli, tierConfigFile, type RunningCli } from './support/cli-process.js'
import { connackFrom, connectFrom, idlePool } from './support/idle.js'
import { parseMetrics, series } from './support/prometheus.js'

const OPEN_FILES = 128

/**
 * Descriptors the child holds now below its limit: the limit bounds descriptor numbers, and a
 * descriptor inherited from before the `ulimit` (the shell's, numbered higher) takes no slot.
 */
const fdsOf = (cli: RunningCli): number => readdirSync(`/proc/${cli.child.pid}/fd`).filter((fd) => Number(fd) < OPEN_FILES).length

async function until (condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test(`under ulimit -n ${OPEN_FILES}: the limit is told at start, terminals past it are refused cleanly and counted, the tier stays up`, async (t) => {
  const config = await tierConfigFile(t, '{ connectionRatePerSecond: 0 }')
  const cli = await startCli(t, ['--config', config], 20_000, { openFiles: OPEN_FILES })
  const warning = await cli.waitForLog('file descriptor limit is below what limits.maxConnections needs (3 per terminal): raise LimitNOFILE or ulimit -n')
  t.match(warning, { limit: OPEN_FILES, needed: 30_000 }, 'both numbers in the warning')
  const listening = await cli.waitForLog('listening')
  const { port } = listening.mqtt as { port: number }
  const { port: httpPort } = listening.http as { port: number }

  // 1. Something else than terminals (idle connections to the status server) takes every descriptor but one.
  const pool = idlePool(t)
  while (fdsOf(cli) < OPEN_FILES) {
    const before = fdsOf(cli)
    const idle = await pool.open(httpPort)
    // Either the tier holds it (one descriptor more), or libuv accepted and closed it: the process is full.
    const held = await Promise.race([idle.closed.then(() => false), until(() => fdsOf(cli) > before, 'held').then(() => true, () => false)])
    if (!held) break
  }
  t.equal(fdsOf(cli), OPEN_FILES, 'the tier is at its limit')
  const [one] = pool.sockets
  one!.destroy()
  await until(() => fdsOf(cli) < OPEN_FILES, 'one descriptor free')
  // The terminal's socket takes the free descriptor; its two upstream sockets then fail with EMFILE.
  t.equal(await connackFrom(t, port, '127.0.0.1', 'at-the-limit'), 3, 'refused with return code 3 (server unavailable), not hung')
  const real = await cli.waitForLog('connection refused', (line) => line.reason === 'fd-limit')
  t.equal(real.limit, 'file descriptor limit', 'logged with its reason')
  for (const socket of pool.sockets) socket.destroy()
  await until(() => fdsOf(cli) < OPEN_FILES - 40, 'the idle connections closed')

  // 2. Terminals until the tier refuses one: refused before the process runs out, never dropped silently by it.
  const terminals = []
  for (;;) {
    const { code, socket } = await connectFrom(t, port, '127.0.0.1', `fd-${terminals.length}`)
    if (code !== 0) break
    terminals.push(socket)
  }
  const full = fdsOf(cli)
  t.ok(terminals.length >= 5, `${terminals.length} terminals admitted under ${OPEN_FILES} descriptors (3 each)`)
  t.ok(full < OPEN_FILES, `the tier stayed below its limit (${full} of ${OPEN_FILES} open)`)

  // 3. Descriptors freed: terminals get in again, and every refusal was counted.
  for (const socket of terminals.splice(0, 2)) socket.destroy()
  await until(() => fdsOf(cli) <= full - 6, 'two terminals closed')
  let code: number | 'closed' = 'closed'
  for (let i = 0; i < 50 && code !== 0; i++) {
    code = await connackFrom(t, port, '127.0.0.1', `after-${i}`)
    if (code !== 0) await new Promise((resolve) => setTimeout(resolve, 50)) // the budget re-reads the count at most every 250 ms
  }
  t.equal(code, 0, 'a terminal gets in once descriptors are free again')
  const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text())
  const counted = metrics.get(series('dualbroker_refused_total', { reason: 'fd-limit' }))!
  t.ok(counted >= 2, `dualbroker_refused_total{reason="fd-limit"} ${counted}`)
  t.equal(cli.child.exitCode, null, 'the tier is still running')
  await cli.kill('SIGTERM')
})
