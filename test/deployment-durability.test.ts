/**
 * README "Embedding in an existing Aedes": a command the deployment's code sent
 * with `aedes.publish` and whose callback reported success is safe — it reaches
 * Broker1 across a Broker1 SIGKILL and a SIGKILL of the node itself with a
 * backlog in its store. Counted end to end by sequence number.
 */
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import t from 'tap'
import { followCli, type RunningCli } from './support/cli-process.js'
import { tempDir } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'
import { record } from './support/recorder.js'
import { missing, orderViolations } from './support/sequence.js'

const script = fileURLToPath(new URL('./fixtures/app-publisher/main.ts', import.meta.url))
const COUNT = 3000

function acked (node: RunningCli): number[] {
  return node.logs.filter((entry) => entry.msg === 'acked').map((entry) => entry.seq as number)
}

t.test('aedes.publish acked by its callback reaches Broker1 across a Broker1 SIGKILL and a node SIGKILL with a backlog', { timeout: 90_000 }, async (t) => {
  const [b1, b2] = [await startMosquitto(t), await startMosquitto(t)]
  const data = join(tempDir(t, 'app-crash-'), 'data')
  const start = (count: number): RunningCli => followCli(t, [b1.url, b2.url, data, String(count)], { script })
  const before = await record(t, b1.url, 'app/#')

  const first = start(COUNT)
  await first.waitForLog('acked', (entry) => (entry.seq as number) >= COUNT / 6, 20_000)
  await b1.kill('SIGKILL') // mid-flow: what Broker1 had not acked goes to the store
  await first.waitForLog('failover', () => true, 10_000)
  await first.waitForLog('acked', (entry) => (entry.seq as number) >= COUNT / 2, 20_000)
  await first.kill('SIGKILL') // with a backlog in its store
  const safe = acked(first)
  t.ok(safe.length >= COUNT / 2 && safe.length < COUNT, `the node was killed mid-flow (${safe.length} of ${COUNT} acked)`)
  t.notOk(first.logs.some((entry) => entry.msg === 'failed'), 'no callback reported an error')

  await b1.restart()
  const after = await record(t, b1.url, 'app/#')
  const second = start(0)
  const ready = await second.waitForLog('ready', () => true, 10_000)
  t.ok((ready.pending as number) > 0, `the restarted node found the backlog in its store (${String(ready.pending)})`)
  await second.waitForLog('marker acked', () => true, 20_000)
  await after.waitForTopic('app/marker', 20_000)

  const got = [...before.sequences('app/seq'), ...after.sequences('app/seq')]
  t.same(missing(safe, got), [], 'every command whose callback reported success reached Broker1')
  t.equal(orderViolations(after.sequences('app/seq')), 0, 'the backlog replayed in order')
  const topics = after.messages.map((message) => message.topic)
  t.ok(topics.lastIndexOf('app/seq') < topics.indexOf('app/marker'), 'a command sent after the restart came behind the backlog')
})
