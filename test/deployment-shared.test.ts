/**
 * README "Embedding in an existing Aedes": the deployment's persistence and mq
 * work unchanged — aedes-persistence-level, and two Aedes nodes sharing
 * aedes-persistence-redis and mqemitter-redis against a real redis-server,
 * each with the tier in front of the same brokers.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AedesOptions, PublishPacket } from 'aedes'
import persistenceLevel from 'aedes-persistence-level'
import persistenceRedis from 'aedes-persistence-redis'
import { Level } from 'level'
import mqemitterRedis from 'mqemitter-redis'
import t, { type Test } from 'tap'
import { connectClient } from './support/client.js'
import { deploymentScript, plainSite, type Site, tierSite } from './support/deployment-script.js'
import { startMosquitto } from './support/mosquitto.js'
import { nextEvent } from './support/observe.js'
import { record } from './support/recorder.js'
import { startRedis } from './support/redis.js'

function levelPersistence (t: Test): AedesOptions {
  const dir = mkdtempSync(join(tmpdir(), 'aedes-level-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return { persistence: persistenceLevel(new Level(dir)) }
}

t.test('a deployment on aedes-persistence-level observes through the tier what it observes without', async (t) => {
  const plain = await deploymentScript(t, await plainSite(t, levelPersistence(t)))
  const [b1, b2] = [await startMosquitto(t), await startMosquitto(t)]
  t.same(await deploymentScript(t, await tierSite(t, b1.url, b2.url, levelPersistence(t))), plain)
})

/** What the handler of `aedes.subscribe(filter)` receives, as text, and a wait for one line. */
async function collect (site: Site, filter: string): Promise<{ seen: string[], until: (line: string) => Promise<void> }> {
  const seen: string[] = []
  const waiting = new Map<string, () => void>()
  await new Promise<void>((resolve) => site.aedes.subscribe(filter, (packet: PublishPacket, done: () => void) => {
    const line = `${packet.topic} ${String(packet.payload)}`
    seen.push(line)
    waiting.get(line)?.()
    done()
  }, () => resolve()))
  const until = (line: string): Promise<void> => seen.includes(line)
    ? Promise.resolve()
    : new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${filter} got ${JSON.stringify(seen)}, not ${line}`)), 10_000)
      waiting.set(line, () => { clearTimeout(timer); resolve() })
    })
  return { seen, until }
}

t.test('two Aedes nodes sharing redis persistence and mq: each message goes upstream once and arrives once', { timeout: 60_000 }, async (t) => {
  // Teardowns run last first: the terminals go, the persistences (Aedes closes only its mq), the nodes, and redis last.
  const redis = await startRedis()
  t.teardown(redis.stop)
  const persistences: Array<{ destroy: () => Promise<void> }> = []
  const [b1, b2] = [await startMosquitto(t), await startMosquitto(t)]
  const shared = (): AedesOptions => {
    const persistence = persistenceRedis(redis)
    persistences.push(persistence as unknown as (typeof persistences)[number])
    return { mq: mqemitterRedis({ host: redis.host, port: redis.port }), persistence }
  }
  const [nodeA, nodeB] = [await tierSite(t, b1.url, b2.url, shared()), await tierSite(t, b1.url, b2.url, shared())]
  t.teardown(() => Promise.all(persistences.map((persistence) => persistence.destroy())))
  await nodeA.attach()
  await nodeB.attach()
  const atBroker1 = await record(t, b1.url, '#')
  const atB = await collect(nodeB, 'telemetry/#')
  const publishEvents = { a: [] as string[], b: [] as string[] }
  nodeA.aedes.on('publish', (packet) => { if (!packet.topic.startsWith('$SYS')) publishEvents.a.push(packet.topic) })
  nodeB.aedes.on('publish', (packet) => { if (!packet.topic.startsWith('$SYS')) publishEvents.b.push(packet.topic) })

  const deviceA = await connectClient(t, nodeA.url, { clientId: 'dev-a' })
  const deviceB = await connectClient(t, nodeB.url, { clientId: 'dev-b' })
  const commands: string[] = []
  deviceB.on('message', (topic, payload) => commands.push(`${topic} ${String(payload)}`))
  const lastCommand = nextEvent(deviceB, 'message', (_topic: string, payload: Buffer) => String(payload) === 'c5', 10_000)
  await deviceB.subscribeAsync('cmd/dev-b', { qos: 1 })
  for (let i = 1; i <= 5; i++) {
    await new Promise<void>((resolve, reject) => nodeA.aedes.publish(
      { cmd: 'publish', topic: 'cmd/dev-b', payload: Buffer.from(`c${i}`), qos: 1, retain: false, dup: false },
      (error) => (error == null ? resolve() : reject(error))))
  }
  for (let i = 1; i <= 5; i++) await deviceA.publishAsync('telemetry/dev-a', `t${i}`, { qos: 1 })
  // A last message behind all the others on every path: what has not come with it comes no more.
  await deviceA.publishAsync('telemetry/last', 'end', { qos: 1 })
  await atBroker1.waitForTopic('telemetry/last', 10_000)
  await atB.until('telemetry/last end')
  await lastCommand

  const topics = atBroker1.messages.map((m) => `${m.topic} ${String(m.payload)}`)
  t.equal(topics.filter((m) => m.startsWith('cmd/')).length, 5, 'each of node A\'s commands reached Broker1 once, not once per node')
  t.same(commands, ['cmd/dev-b c1', 'cmd/dev-b c2', 'cmd/dev-b c3', 'cmd/dev-b c4', 'cmd/dev-b c5'], 'the device on node B got each once')
  t.same(atB.seen, ['telemetry/dev-a t1', 'telemetry/dev-a t2', 'telemetry/dev-a t3', 'telemetry/dev-a t4', 'telemetry/dev-a t5', 'telemetry/last end'],
    'node B\'s aedes.subscribe got node A\'s device once each, through the brokers')
  t.same(publishEvents.b, [], 'node B\'s publish event shows only publishes it accepted')
  t.equal(publishEvents.a.filter((topic) => topic === 'telemetry/dev-a').length, 5, 'node A\'s shows its device\'s, once each')
})
