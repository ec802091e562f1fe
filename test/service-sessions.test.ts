/**
 * The tier's own sessions at a broker, the health link (src/upstream/broker-health.ts) and the
 * replay of the pending store (src/failover/replayer.ts), on the same lean connection as the
 * terminals' sessions: what each sends in CONNECT, how the health link reads a refusal, a silent
 * broker and a suspect one, and what the replay puts on the wire.
 */
import { once } from 'node:events'
import { join } from 'node:path'
import type { Client, PublishPacket } from 'aedes'
import { type IConnectPacket, type Packet, parser } from 'mqtt-packet'
import t, { type Test } from 'tap'
import type { z } from 'zod'
import { brokerSchema, healthSchema, replaySchema, storeSchema } from '../src/config/schema.js'
import { newCounters } from '../src/state.js'
import { Replayer } from '../src/failover/replayer.js'
import { LevelPendingStore, type PendingMessage } from '../src/store/index.js'
import { BrokerEndpoint } from '../src/upstream/broker-endpoint.js'
import { BrokerHealth } from '../src/upstream/broker-health.js'
import { MESSAGE_ID_PROPERTY } from '../src/mqtt/protocol.js'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { tempDir } from './support/durable.js'
import { recordLogs } from './support/log-recorder.js'
import { startMosquitto } from './support/mosquitto.js'
import { nextEvent } from './support/observe.js'
import { startRelay } from './support/relay.js'
import { startWindowProbe } from './support/window-probe.js'

type BrokerInput = z.input<typeof brokerSchema>
type HealthInput = z.input<typeof healthSchema>

function startHealth (t: Test, broker: BrokerInput, health: HealthInput = {}): BrokerHealth {
  const link = new BrokerHealth(new BrokerEndpoint('broker1', brokerSchema.parse(broker), healthSchema.parse(health)))
  t.teardown(() => link.close())
  return link
}

/** Every CONNECT an Aedes broker reads whose client id starts with `prefix`, with a callback per arrival. */
function connectsTo (prefix: string): { packets: IConnectPacket[], at: number[], onConnect: (listener: () => void) => void, preConnect: (client: Client, packet: IConnectPacket, done: (err: Error | null, ok: boolean) => void) => void } {
  const packets: IConnectPacket[] = []
  const at: number[] = []
  const listeners = new Set<() => void>()
  return {
    packets,
    at,
    onConnect: (listener) => listeners.add(listener),
    preConnect (_client, packet, done) {
      if (packet.clientId.startsWith(prefix)) {
        packets.push(packet)
        at.push(performance.now())
        for (const listener of listeners) listener()
      }
      done(null, true)
    }
  }
}

const HEALTH_ID = /^edge-dual-broker-health-[0-9a-f]{8}$/
const REPLAY_ID = /^edge-dual-broker-replay-[0-9a-f]{8}$/

t.test('health link: a broker that refuses its credentials is up, and the link retries every reconnectPeriodMs without going down', async (t) => {
  const seen = connectsTo('edge-dual-broker-health-')
  const broker = await startAedes(t, {
    aedes: {
      preConnect: seen.preConnect,
      authenticate: (_client, _username, _password, done) => done(Object.assign(new Error('no'), { returnCode: 4 }), false)
    }
  })
  // 3.1.1 named: with `auto` each attempt would first try MQTT 5, which this Aedes refuses (test/protocol-auto.test.ts).
  const withService = startHealth(t, { url: broker.url, clientIdPrefix: 'edge-', username: 'terminal-override', password: 'o', service: { username: 'svc', password: 'svc-pw' }, protocolVersion: 4 },
    { keepaliveSeconds: 3, reconnectPeriodMs: 200 })
  const downs: string[] = []
  withService.on('down', (reason) => downs.push(reason))
  const threeAttempts = new Promise<void>((resolve) => seen.onConnect(() => { if (seen.packets.length === 3) resolve() }))
  const up = once(withService, 'up')
  withService.start()
  await up
  await threeAttempts
  t.equal(withService.state, 'up', 'a CONNACK that refuses still proves the broker alive')
  t.same(downs, [], 'never down')
  const gaps = seen.at.slice(1).map((at, i) => at - seen.at[i]!)
  t.ok(gaps.every((gap) => gap >= 190), `attempts reconnectPeriodMs apart (${gaps.map(Math.round).join(', ')} ms)`)
  t.ok(seen.packets.every((p) => HEALTH_ID.test(p.clientId)), `client ids ${seen.packets.map((p) => p.clientId).join(', ')}`)
  t.equal(new Set(seen.packets.map((p) => p.clientId)).size, 3, 'a fresh client id per attempt')
  t.match(seen.packets[0], { clean: true, keepalive: 3, username: 'svc', protocolVersion: 4 }, 'clean, the health keepalive, the service user')
  t.equal(seen.packets[0]!.password?.toString(), 'svc-pw', 'and the service password')
  await withService.close()

  const withBrokerCredentials = startHealth(t, { url: broker.url, clientIdPrefix: 'edge-', username: 'terminal-override', password: 'o' })
  const next = new Promise<void>((resolve) => seen.onConnect(resolve))
  withBrokerCredentials.start()
  await next
  t.match(seen.packets.at(-1), { username: 'terminal-override' }, 'no service credentials: the broker\'s own')
  t.equal(seen.packets.at(-1)!.password?.toString(), 'o')
})

t.test('health link: a broker that never sends CONNACK is down after 1.5 × keepalive when that is shorter than connectTimeoutMs', async (t) => {
  const broker = await startAedes(t, { aedes: { authenticate: () => {} } }) // never answers
  const link = startHealth(t, { url: broker.url }, { keepaliveSeconds: 1, connectTimeoutMs: 5000 })
  const started = performance.now()
  const down = once(link, 'down')
  link.start()
  const [reason] = await down as [string]
  const waited = performance.now() - started
  t.equal(reason, 'no CONNACK in time')
  t.ok(waited >= 1400 && waited < 3000, `down after ${Math.round(waited)} ms (1.5 × keepalive: 1500 ms)`)
})

t.test('health link: a CONNECT that MQTT 3.1.1 forbids (a password without a user name) is down with why, not a crash', async (t) => {
  const seen = connectsTo('')
  const broker = await startAedes(t, { aedes: { preConnect: seen.preConnect } })
  const link = startHealth(t, { url: broker.url, password: 'no-user' }, { reconnectPeriodMs: 100 })
  const down = once(link, 'down')
  link.start()
  t.same(await down, ['Username is required to use password'], '[MQTT-3.1.2-22]: the reason, not a crash')
  t.equal(seen.packets.length, 0, 'nothing reached the broker')
})

t.test('health link: lost → down with the reason, suspect → down at once and the link ends, each time up again after reconnectPeriodMs', async (t) => {
  const broker = await startAedes(t)
  const link = startHealth(t, { url: broker.url }, { keepaliveSeconds: 5, reconnectPeriodMs: 100 })
  const events: string[] = []
  link.on('up', () => events.push('up'))
  link.on('down', (reason) => events.push(`down: ${reason}`))
  let up = once(link, 'up')
  link.start()
  await up
  const first = broker.clientIds()[0]!
  const gone = nextEvent(broker.aedes, 'clientDisconnect', (client: Client) => client.id === first)
  up = once(link, 'up')
  link.suspect('publish ack timed out')
  t.equal(link.state, 'down', 'down at once')
  const [ended] = await gone as [Client]
  t.equal(ended.id, first, 'the broker saw that health link end')
  t.notOk(broker.clientIds().includes(first), 'and holds it no more')
  await up
  t.not(broker.clientIds()[0], first, 'a new health link')

  const lost = once(link, 'down')
  await broker.restart()
  t.match((await lost)[0], /^(connection closed|read ECONNRESET)$/, 'a broker that goes away: down, with why')
  await once(link, 'up')
  t.same(events.map((event) => event.split(':')[0]), ['up', 'down', 'up', 'down', 'up'], 'each change once')
  t.equal(events[1], 'down: publish ack timed out', 'suspect: down with the caller\'s reason')

  const closing = nextEvent(broker.aedes, 'clientDisconnect')
  await link.close()
  await closing
  t.equal(broker.connections(), 0, 'close() ends the link')
})

/** A pending store on disk with `messages` in it, and a Replayer to `url` once its health link is up. */
async function replayTo (t: Test, broker: BrokerInput, messages: Array<Partial<PendingMessage>>, health: HealthInput = {}, replay = {}): Promise<{ replayer: Replayer, store: LevelPendingStore, link: BrokerHealth, logs: ReturnType<typeof recordLogs> }> {
  const logs = recordLogs()
  const store = new LevelPendingStore({ ...storeSchema.parse({}), path: join(tempDir(t, 'replay-'), 'pending'), logger: logs })
  await store.open()
  t.teardown(() => store.close())
  for (const message of messages) {
    await store.append({ topic: 'r/x', payload: Buffer.from('p'), qos: 1, retain: false, clientId: 'terminal', acceptedAt: Date.now(), ...message })
  }
  const link = startHealth(t, broker, { keepaliveSeconds: 5, ...health })
  const up = once(link, 'up')
  link.start()
  await up
  const gate = { appending: () => 0, whenQuiet: () => Promise.resolve(), caughtUp: () => {} }
  const replayer = new Replayer({ health: link, store, replay: replaySchema.parse(replay), accepts: () => true, gate, counters: newCounters(), logger: logs })
  t.teardown(() => replayer.stop())
  return { replayer, store, link, logs }
}

t.test('replay to an MQTT 5 broker: the tier\'s message id travels as a user property; acked entries leave the store', async (t) => {
  const broker = await startMosquitto(t)
  const subscriber = await connectClient(t, broker.url, { clientId: 'r5-watcher', protocolVersion: 5 })
  await subscriber.subscribeAsync('r/#', { qos: 1 })
  const ids: Array<string | undefined> = []
  subscriber.on('message', (_topic, _payload, packet) => ids.push(packet.properties?.userProperties?.[MESSAGE_ID_PROPERTY] as string | undefined))
  const { replayer, store } = await replayTo(t, { url: broker.url, protocolVersion: 5 }, [{ id: 'n1.0' }, { id: 'n1.1', qos: 0 }, {}])
  const third = nextEvent(subscriber, 'message', () => ids.length === 3)
  t.equal(await replayer.run(), true, 'drained')
  await third
  t.same(ids, ['n1.0', 'n1.1', undefined], 'each message with its id, in order; one stored without an id has none')
  t.equal(store.count, 0, 'the store is empty')
  t.equal(replayer.replayed, 3)
})

t.test('replay: replay.window publishes in flight at the broker, no more, and the window is filled; CONNECT as a service session', async (t) => {
  const seen = connectsTo('edge-dual-broker-replay-')
  const arrived: number[] = []
  const broker = await startAedes(t, { aedes: { preConnect: seen.preConnect } })
  broker.aedes.on('publish', (packet: PublishPacket, client: Client | null) => { if (client !== null && REPLAY_ID.test(client.id)) arrived.push(Number(packet.payload.toString())) })
  const probe = await startWindowProbe(t, broker.port, 4)
  const count = 300
  const messages = Array.from({ length: count }, (_, i) => ({ payload: Buffer.from(String(i)) }))
  const { replayer, store } = await replayTo(t, { url: probe.url, clientIdPrefix: 'edge-', service: { username: 'svc', password: 'pw' } }, messages, { keepaliveSeconds: 4 }, { window: 7 })
  t.equal(await replayer.run(), true, 'drained')
  t.equal(store.count, 0)
  const [replayId] = [...probe.maxOutstanding.keys()].filter((id) => REPLAY_ID.test(id))
  t.equal(probe.maxOutstanding.get(replayId!), 7, 'seven unacknowledged at most, and seven at some point')
  t.same(arrived, messages.map((_, i) => i), 'every entry once, in seq order')
  t.equal(seen.packets.length, 1, 'one replay session')
  t.match(seen.packets[0], { clientId: replayId, clean: true, keepalive: 4, username: 'svc' }, 'clean, the health keepalive, the service user')
})

t.test('replay: a QoS 2 entry stays in the store until PUBCOMP; acks that stop coming suspect the broker and end the replay', async (t) => {
  const broker = await startAedes(t)
  // Holds everything from the replay's PUBREL on: it has its PUBREC, never its PUBCOMP.
  const relay = await startRelay(t, broker.port, () => {
    const packets = parser({ protocolVersion: 4 })
    let replaySession = false
    packets.on('packet', (packet: Packet) => {
      if (packet.cmd === 'connect') replaySession = REPLAY_ID.test(packet.clientId)
      if (replaySession && packet.cmd === 'pubrel') relay.cut()
    })
    return (towardsBroker, chunk) => { if (towardsBroker) packets.parse(chunk) }
  })
  const { replayer, store, link, logs } = await replayTo(t, { url: relay.url, clientIdPrefix: 'edge-' }, [{ qos: 2 }], { ackTimeoutMs: 600 })
  const down = once(link, 'down')
  t.equal(await replayer.run(), false, 'interrupted')
  t.equal(store.count, 1, 'the entry is still there: PUBREC alone does not delete it')
  t.same(await down, ['replay acks timed out'], 'the broker is suspect')
  t.ok(logs.lines.some((line) => line.msg === 'replay acks timed out'), 'and it says so')
})

t.test('replay: with a pool of source addresses the replay session connects from the first', async (t) => {
  const broker = await startAedes(t)
  const from = new Promise<string | undefined>((resolve) => broker.aedes.on('client', (client: Client) => {
    if (REPLAY_ID.test(client.id)) resolve((client.conn as { remoteAddress?: string }).remoteAddress)
  }))
  const { replayer } = await replayTo(t, { url: broker.url, clientIdPrefix: 'edge-', localAddresses: ['127.0.0.3', '127.0.0.4'] }, [{}])
  t.equal(await replayer.run(), true)
  t.equal(await from, '127.0.0.3')
})
