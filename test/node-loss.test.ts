/**
 * The brokers hold every session, so a tier node is interchangeable: when one
 * is SIGKILLed, its persistent terminals come back through the other node and
 * find at the brokers everything the lost node had not seen acknowledged
 * (README "What a persistent terminal can rely on", "Several nodes").
 */
import { join } from 'node:path'
import t from 'tap'
import { startCli } from './support/cli-process.js'
import { tempDir } from './support/durable.js'
import { startMosquitto } from './support/mosquitto.js'
import { record } from './support/recorder.js'
import { connectClient } from './support/client.js'
import { duplicates, missing } from './support/sequence.js'
import { publishStream } from './support/stream.js'

const SUBSCRIBERS = 10
const MESSAGES = 2000

t.test('a tier node SIGKILLed under QoS 1 traffic: no persistent subscriber misses a message, no acked publish is missing at Broker1', { timeout: 90_000 }, async (t) => {
  const [b1, b2] = [await startMosquitto(t), await startMosquitto(t)]
  const node = (name: string): Promise<Awaited<ReturnType<typeof startCli>>> => startCli(t, [
    '--host', '127.0.0.1', '--port', '0', '--broker1', b1.url, '--broker2', b2.url,
    '--data', join(tempDir(t, `node-loss-${name}-`), 'data'), '--log-level', 'info'
  ])
  const [node1, node2] = [await node('1'), await node('2')]
  const servers = (first: string, second: string): Array<{ host: string, port: number }> =>
    [first, second].map((url) => ({ host: '127.0.0.1', port: Number(new URL(url).port) }))

  const atBroker1 = await record(t, b1.url, 'loss/#', { clientId: 'loss-oracle', qos: 1 })
  // Every subscriber starts on node 1, the one that dies, and knows node 2.
  const subscribers = await Promise.all(Array.from({ length: SUBSCRIBERS }, (_, i) => record(t, node1.url, 'loss/#', {
    clientId: `loss-sub-${i}`, clean: false, qos: 1, reconnectPeriod: 100, servers: servers(node1.url, node2.url)
  } as Parameters<typeof record>[3])))
  const publisherAt = async (id: string, first: string, second: string): Promise<ReturnType<typeof connectClient>> =>
    connectClient(t, first, { clientId: id, clean: false, reconnectPeriod: 100, servers: servers(first, second) })
  const onNode1 = await publisherAt('loss-pub-1', node1.url, node2.url)
  const onNode2 = await publisherAt('loss-pub-2', node2.url, node1.url)

  let killed: Promise<void> | undefined
  const [fromNode1, fromNode2] = await Promise.all([
    publishStream(await onNode1, { topic: 'loss/1', count: MESSAGES, window: 20, rate: 400 }),
    publishStream(await onNode2, {
      topic: 'loss/2', count: MESSAGES, window: 20, rate: 400,
      onAck: (acked) => { if (acked === MESSAGES / 4) killed = node1.kill('SIGKILL') }
    })
  ])
  await killed
  t.equal(fromNode1.failed + fromNode2.failed, 0, 'no publish failed')

  const acked = { 'loss/1': fromNode1.acked, 'loss/2': fromNode2.acked }
  await atBroker1.waitFor(fromNode1.acked.length + fromNode2.acked.length, 20_000)
  for (const [topic, seqs] of Object.entries(acked)) {
    t.same(missing(seqs, atBroker1.sequences(topic)), [], `${topic}: every acked publish reached Broker1`)
  }
  let lostAtSubscribers = 0
  let duplicatesAtSubscribers = 0
  for (const subscriber of subscribers) {
    await subscriber.waitFor(fromNode1.acked.length + fromNode2.acked.length, 20_000).catch(() => {})
    for (const [topic, seqs] of Object.entries(acked)) {
      lostAtSubscribers += missing(seqs, subscriber.sequences(topic)).length
      duplicatesAtSubscribers += duplicates(subscriber.sequences(topic))
    }
  }
  t.equal(lostAtSubscribers, 0, `no subscriber missed a message (${SUBSCRIBERS} × ${2 * MESSAGES})`)
  t.comment(`duplicates at subscribers (at least once, resent after the node loss): ${duplicatesAtSubscribers}`)
})
