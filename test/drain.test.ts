/**
 * `aedes-dual-broker drain`: a node lost with a backlog has it replayed to Broker1, in order, by
 * another process that opens its data dir (README "Several nodes").
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { connectClient } from './support/client.js'
import { runCli, startCli } from './support/cli-process.js'
import { tempDir } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'
import { record } from './support/recorder.js'
import { publishStream } from './support/stream.js'

const MESSAGES = 1500
const inOrder = Array.from({ length: MESSAGES }, (_, i) => i)

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  t.test(`a node ${signal === 'SIGKILL' ? 'SIGKILLed' : 'stopped (SIGTERM)'} with a backlog: drain replays every acked message to Broker1 in order`, { timeout: 90_000 }, async (t) => {
    const [b1, b2] = [await startMosquitto(t), await startMosquitto(t)]
    await b1.kill('SIGKILL') // Broker1 down: policy queue stores everything
    const dir = tempDir(t, 'drain-')
    const data = join(dir, 'data')
    const node = await startCli(t, ['--host', '127.0.0.1', '--port', '0', '--broker1', b1.url, '--broker2', b2.url,
      '--data', data, '--default-policy', 'queue'])
    const publisher = await connectClient(t, node.url, { clientId: `drain-pub-${signal}` })
    const { acked, failed } = await publishStream(publisher, { topic: 'drain/x', count: MESSAGES, window: 50 })
    t.equal(acked.length + failed, MESSAGES)
    t.equal(failed, 0, 'every publish acked (stored)')

    if (signal === 'SIGKILL') {
      const refused = await runCli(['drain', '--data', data, '--broker1', b1.url])
      t.equal(refused.code, 1, 'a store a live node holds is refused')
      t.match(refused.stderr, `pending store at ${join(data, 'pending')} is held by another process`, 'naming the store')
    }
    await publisher.endAsync(true)
    await node.kill(signal)
    if (signal === 'SIGTERM') t.equal(await node.exited, 0, 'the node stopped cleanly, its store flushed and closed')

    await b1.restart()
    const atBroker1 = await record(t, b1.url, 'drain/#', { clientId: `drain-oracle-${signal}`, qos: 1 })
    // Broker1 from the node's own config file; the rate spreads the replay over more than a second, so progress shows.
    const config = join(dir, 'node.yaml')
    writeFileSync(config, `broker1:\n  url: ${b1.url}\nbroker2:\n  url: ${b2.url}\ndata: ${data}\nreplay:\n  ratePerSecond: 1000\n`)
    const drained = await runCli(['drain', '--config', config])
    t.equal(drained.code, 0, 'drain exits 0 once the store is empty', { stderr: drained.stderr })
    t.match(drained.stderr, `draining ${MESSAGES} message(s)`, 'it says what it drains')
    t.match(drained.stderr, /replayed \d+, \d+ pending/, 'progress on stderr')
    t.match(drained.stderr, `drained: ${MESSAGES} message(s) replayed`, 'and that it is done')
    t.equal(drained.stdout, '', 'nothing on stdout')
    await atBroker1.waitFor(MESSAGES, 10_000)
    t.same(atBroker1.sequences('drain/x'), inOrder, `Broker1 got all ${MESSAGES}, in order, once`)

    const again = await runCli(['drain', '--data', data, '--broker1', b1.url])
    t.equal(again.code, 0, 'a drained store drains at once')
    t.match(again.stderr, 'draining 0 message(s)')
  })
}

t.test('drain: bad usage exits 2 with one line naming the key; a missing store exits 1', async (t) => {
  const noBroker = await runCli(['drain', '--data', tempDir(t)])
  t.equal(noBroker.code, 2)
  t.match(noBroker.stderr, /^aedes-dual-broker: broker1: missing/)
  t.equal(noBroker.stderr.trim().split('\n').length, 1, 'one line')
  const missing = join(tempDir(t), 'nowhere')
  const noStore = await runCli(['drain', '--data', missing, '--broker1', 'mqtt://127.0.0.1:1'])
  t.equal(noStore.code, 1)
  t.match(noStore.stderr, `no pending store at ${join(missing, 'pending')}`)
})
