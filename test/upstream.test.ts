/**
 * The per-terminal upstream sessions (src/upstream/connection.ts, upstream-link.ts,
 * transport.ts) end to end: QoS 2 both ways, keepalive and PINGRESP timeout,
 * MQTT 5 receive maximum and session expiry, and a ws:// upstream.
 */
import { once } from 'node:events'
import net from 'node:net'
import type { Client, PublishPacket } from 'aedes'
import { Aedes } from 'aedes'
import { connect } from 'mqtt'
import type { IPublishPacket } from 'mqtt-packet'
import t, { type Test } from 'tap'
import { createWebSocketStream, WebSocketServer } from 'ws'
import { brokerSchema, healthSchema } from '../src/config/schema.js'
import { BrokerEndpoint } from '../src/upstream/broker-endpoint.js'
import { type ConnectionOwner, UpstreamConnection } from '../src/upstream/connection.js'
import { holding, nextEvent, pingedAt, settlesWithin, within } from './support/observe.js'
import { startAedes } from './support/aedes-broker.js'
import { connectClient } from './support/client.js'
import { startMosquitto } from './support/mosquitto.js'
import { record } from './support/recorder.js'
import { publishStream } from './support/stream.js'
import { startTier } from './support/tier.js'
import { startWindowProbe } from './support/window-probe.js'
import { coreOf } from '../src/plugin.js'

const upTo = (count: number): number[] => Array.from({ length: count }, (_, i) => i)

t.test('QoS 2 from a terminal reaches Broker1 exactly once, as QoS 2', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startAedes(t)
  const at1 = await record(t, b1.url, 'q2/#', { qos: 2 })
  const { url } = await startTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'q2-out' })
  // PUBCOMP to the terminal waits for Broker1's: bounded, so a stuck exchange fails here rather than at tap's timeout.
  await within(terminal.publishAsync('q2/once', 'exactly', { qos: 2 }), 5000, 'PUBCOMP for q2/once')
  // One upstream session, in order: once the marker is there, any copy of the first is too.
  await within(terminal.publishAsync('q2/marker', 'm', { qos: 2 }), 5000, 'PUBCOMP for q2/marker')
  await at1.waitForTopic('q2/marker')
  const copies = at1.messages.filter((m) => m.topic === 'q2/once')
  t.equal(copies.length, 1, 'one copy at Broker1')
  t.equal(copies[0]?.qos, 2, 'delivered at QoS 2: the tier published it upstream at QoS 2')
  t.equal(copies[0]?.payload.toString(), 'exactly')
})

t.test('QoS 2 from Broker1 reaches a QoS 2 subscriber exactly once, and the broker sees the exchange completed', async (t) => {
  // One message in flight per client at Broker1: the marker leaves only once the tier sent PUBCOMP for the first.
  const b1 = await startMosquitto(t, { maxInflightMessages: 1 })
  const b2 = await startAedes(t)
  const { url } = await startTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'q2-in' })
  const got: Array<{ topic: string, qos: number, payload: string }> = []
  terminal.on('message', (topic, payload, packet) => got.push({ topic, qos: packet.qos, payload: payload.toString() }))
  t.same((await terminal.subscribeAsync('q2in/#', { qos: 2 })).map((g) => g.qos), [2])
  const marker = nextEvent(terminal, 'message', (topic: string) => topic === 'q2in/marker')
  const direct = await connectClient(t, b1.url, { clientId: 'q2-in-publisher' })
  await direct.publishAsync('q2in/once', 'exactly', { qos: 2 })
  await direct.publishAsync('q2in/marker', 'm', { qos: 2 })
  await marker
  t.same(got, [
    { topic: 'q2in/once', qos: 2, payload: 'exactly' },
    { topic: 'q2in/marker', qos: 2, payload: 'm' }
  ], 'each once, at QoS 2, in order')
})

t.test('200 QoS 2 messages from a terminal reach Broker1 complete and in order', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startAedes(t)
  const at1 = await record(t, b1.url, 'q2s/#', { qos: 2 })
  const { url } = await startTier(t, b1.url, b2.url)
  const terminal = await connectClient(t, url, { clientId: 'q2-stream' })
  // Under mosquitto's incoming limit (max_inflight_messages, 20): beyond it mosquitto
  // drops QoS 2 from an MQTT 3.1.1 client behind a PUBREC that looks like success.
  const { acked, failed } = await within(publishStream(terminal, { topic: 'q2s/a', count: 200, qos: 2, window: 10 }), 15_000, '200 PUBCOMPs')
  t.equal(failed, 0)
  t.equal(acked.length, 200, 'the tier completed every QoS 2 exchange with the terminal')
  await within(terminal.publishAsync('q2s/marker', 'm', { qos: 2 }), 5000, 'PUBCOMP for q2s/marker')
  await at1.waitForTopic('q2s/marker')
  t.same(at1.sequences('q2s/a'), upTo(200), 'Broker1 got each once, in order')
  t.ok(at1.messages.every((m) => m.qos === 2), 'all at QoS 2')
})

t.test('an idle upstream session is kept alive: PINGREQs reach Broker2 and it does not drop the session', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const { url, aedes } = await startTier(t, b1.url, b2.url)
  const id = 'idle-ka'
  let terminalPings = 0
  aedes.on('ping', (_packet, client) => { if (client.id === id) terminalPings++ })
  const terminal = await connectClient(t, url, { clientId: id, keepalive: 2 })
  t.equal(holding(b2, id), 1, 'the terminal has its session at Broker2')
  // Busy, so it never pings itself (its PINGREQs would be passed on to both brokers): mqtt.js 5
  // postpones its ping on every ack it receives (not on what it sends, so QoS 0 would not do).
  // In normal mode publishes go to Broker1 only: the Broker2 session stays idle.
  const ticker = setInterval(() => terminal.publish('ka/tick', 'x', { qos: 1 }), 250)
  t.teardown(() => clearInterval(ticker))
  // Aedes drops a client silent for 1.5 × keepalive (3 s here): a bounded window, as the property is about time.
  const window = 4000
  const dropped = nextEvent(b2.aedes, 'clientDisconnect', (client: Client) => client.id === id, window).then(() => true, () => false)
  await pingedAt(b2.aedes, id) // rejects after 5 s: Broker2 would have dropped the session by then
  await pingedAt(b2.aedes, id)
  t.notOk(await dropped, `Broker2 did not disconnect the session within ${window} ms`)
  t.equal(holding(b2, id), 1, 'still connected at Broker2')
  t.equal(terminalPings, 0, 'the terminal itself sent no PINGREQ: the pings were the tier\'s own')
})

t.test('PINGRESP timeout: a connection to a frozen broker closes within about two keepalives', async (t) => {
  const broker = await startMosquitto(t)
  const endpoint = new BrokerEndpoint('broker1', brokerSchema.parse({ url: broker.url }), healthSchema.parse({}))
  let closedWith: (wasOnline: boolean) => void = () => {}
  const closed = new Promise<boolean>((resolve) => { closedWith = resolve })
  const owner: ConnectionOwner = {
    published: () => {},
    deliver: () => {},
    released: () => {},
    closed: (_connection, wasOnline) => closedWith(wasOnline)
  }
  const connection = new UpstreamConnection(owner, endpoint, {
    cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'frozen-ka', clean: true, keepalive: 1
  })
  t.teardown(() => connection.close(false))
  t.same(await connection.open(), { kind: 'accepted', sessionPresent: false })
  // Idle but answered: PINGRESPs keep it open past the point where an unanswered ping would expire.
  t.notOk(await settlesWithin(closed, 2200), 'open while the broker answers its pings')
  t.ok(connection.online)
  broker.stop()
  t.teardown(() => broker.cont())
  const stoppedAt = performance.now()
  t.equal(await within(closed, 3000, 'closed after SIGSTOP'), true, 'closed, and it had been online')
  t.notOk(connection.online)
  t.comment(`closed ${Math.round(performance.now() - stoppedAt)} ms after SIGSTOP`)
})

t.test('MQTT 5 receive maximum: 300 QoS 1 publishes go to Broker1 two at a time, complete and in order', async (t) => {
  const b1 = await startMosquitto(t, { maxInflightMessages: 2 })
  const b2 = await startMosquitto(t)
  const probe = await startWindowProbe(t, b1.port)
  const at1 = await record(t, b1.url, 'rm/#', { protocolVersion: 5 })
  const { url } = await startTier(t, probe.url, b2.url, {
    plugin: { broker1: { url: probe.url, protocolVersion: 5 }, broker2: { url: b2.url, protocolVersion: 5 } }
  })
  const id = 'rm-stream'
  const terminal = await connectClient(t, url, { clientId: id })
  const { acked, failed } = await within(publishStream(terminal, { topic: 'rm/a', count: 300, window: 50 }), 15_000, '300 PUBACKs')
  t.equal(failed, 0)
  t.equal(acked.length, 300, 'the tier acked all 300')
  t.equal(probe.receiveMaximum.get(id), 2, 'Broker1 announced receive maximum 2 to the terminal\'s session')
  t.equal(probe.maxOutstanding.get(id), 2, 'the session kept two QoS 1 publishes in flight at most, and used both')
  await within(terminal.publishAsync('rm/marker', 'm', { qos: 1 }), 5000, 'PUBACK for rm/marker')
  await at1.waitForTopic('rm/marker', 10_000)
  t.same(at1.sequences('rm/a'), upTo(300), 'Broker1 got each once, in order')
})

t.test('MQTT 5 persistent session: a message published while the terminal was away is delivered when it comes back', async (t) => {
  const b1 = await startMosquitto(t)
  const b2 = await startMosquitto(t)
  const { url, aedes } = await startTier(t, b1.url, b2.url, {
    plugin: { broker1: { url: b1.url, protocolVersion: 5 }, broker2: { url: b2.url, protocolVersion: 5 } }
  })
  const id = 'keeper'
  const first = await connectClient(t, url, { clientId: id, clean: false })
  t.same((await first.subscribeAsync('kept/#', { qos: 1 })).map((g) => g.qos), [1])
  await first.endAsync()
  const direct = await connectClient(t, b1.url, { clientId: 'kept-publisher' })
  await direct.publishAsync('kept/news', 'while away', { qos: 1 })

  // Listening before CONNACK: the queued message may come at once.
  const again = connect(url, { clientId: id, clean: false, reconnectPeriod: 0 })
  again.on('error', () => {})
  t.teardown(() => again.endAsync(true))
  const received: string[] = []
  again.on('packetreceive', (packet) => received.push(packet.cmd === 'publish' ? `publish ${packet.topic}` : packet.cmd))
  const news = nextEvent(again, 'message', (topic: string) => topic === 'kept/news', 5000)
  // Also the tier's CONNACK (as the tier sends it): ending the test while the tier is still
  // opening the upstream sessions would race the tier's shutdown.
  const connacked = nextEvent(aedes, 'connackSent', (_packet: unknown, client: Client) => client.id === id, 5000)
  const [[topic, payload, packet]] = await Promise.all([news as Promise<[string, Buffer, IPublishPacket]>, connacked])
  t.equal(topic, 'kept/news')
  t.equal(payload.toString(), 'while away', 'Broker1 kept the upstream session, and what arrived for it')
  t.equal(packet.qos, 1)
  const marker = nextEvent(again, 'message', (topic: string) => topic === 'kept/marker', 5000)
  await direct.publishAsync('kept/marker', 'after', { qos: 1 })
  await marker
  t.same(received, ['connack', 'publish kept/news', 'publish kept/marker'], 'CONNACK first [MQTT-3.2.0-1], then the kept message once')
})

/** An Aedes broker reachable only over WebSocket, at ws://127.0.0.1:<port>. */
async function startWsAedes (t: Test): Promise<{ aedes: Aedes, url: string }> {
  const aedes = await Aedes.createBroker()
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  wss.on('connection', (socket) => aedes.handle(createWebSocketStream(socket)))
  await once(wss, 'listening')
  t.teardown(async () => {
    for (const socket of wss.clients) socket.terminate()
    await new Promise((resolve) => wss.close(resolve))
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
  })
  return { aedes, url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}` }
}

t.test('a ws:// upstream: publishes reach it, and what it delivers reaches the terminal', async (t) => {
  const b1 = await startWsAedes(t)
  const b2 = await startAedes(t)
  const { url, tier } = await startTier(t, b1.url, b2.url)
  t.equal(tier.state.brokers.broker1.state, 'up', 'the health link reached Broker1 over WebSocket')
  const id = 'over-ws'
  const terminal = await connectClient(t, url, { clientId: id })

  const up = nextEvent(b1.aedes, 'publish', (packet: PublishPacket, client: Client | null) => client?.id === id && packet.topic === 'ws/up')
  await within(terminal.publishAsync('ws/up', 'to ws', { qos: 1 }), 5000, 'PUBACK for ws/up')
  const [sent] = await up as [PublishPacket]
  t.equal(sent.qos, 1, 'at QoS 1, on the terminal\'s own session at the ws Broker1')
  t.equal(sent.payload.toString(), 'to ws')

  t.same((await terminal.subscribeAsync('ws/down', { qos: 1 })).map((g) => g.qos), [1])
  const down = nextEvent(terminal, 'message', (topic: string) => topic === 'ws/down')
  await new Promise<void>((resolve, reject) => b1.aedes.publish(
    { cmd: 'publish', topic: 'ws/down', payload: Buffer.from('from ws'), qos: 1, retain: false, dup: false },
    (error) => (error ? reject(error) : resolve())
  ))
  const [, payload, packet] = await down as [string, Buffer, IPublishPacket]
  t.equal(payload.toString(), 'from ws')
  t.equal(packet.qos, 1)
})

t.test('Deliveries written by the tier still pass the instance\'s own authorizeForward', async (t) => {
  const b1 = await startAedes(t)
  const b2 = await startAedes(t)
  const plain = await startTier(t, b1.url, b2.url)
  const hooked = await startTier(t, b1.url, b2.url, {
    aedes: { authorizeForward: (_client, packet) => packet.topic === 'fw/hidden' ? null : packet }
  })
  t.equal(coreOf(plain.tier).forwardFilter, undefined, 'Aedes\' default authorizeForward: nothing to apply')
  t.type(coreOf(hooked.tier).forwardFilter, 'function', 'a user\'s authorizeForward: applied to every delivery')
  const direct = await connectClient(t, b1.url, { clientId: 'fw-publisher' })
  for (const [name, tier] of [['plain', plain], ['hooked', hooked]] as const) {
    const terminal = await connectClient(t, tier.url, { clientId: `fw-${name}` })
    await terminal.subscribeAsync('fw/#', { qos: 0 })
    const topics: string[] = []
    terminal.on('message', (topic) => topics.push(topic))
    const last = nextEvent(terminal, 'message', (topic: string) => topic === 'fw/last', 5000)
    for (const topic of ['fw/a', 'fw/hidden', 'fw/b', 'fw/last']) await direct.publishAsync(topic, topic, { qos: 0 })
    await last
    t.same(topics, name === 'plain' ? ['fw/a', 'fw/hidden', 'fw/b', 'fw/last'] : ['fw/a', 'fw/b', 'fw/last'], `${name}: in order, and the user's hook applied`)
  }
})
