/**
 * Malformed packets close the connection [MQTT-4.8.0-1]: straight at Broker1
 * and through the tier, the terminal that sent one is closed without an
 * answer to it, its will is published (a protocol error is not a
 * DISCONNECT, [MQTT-3.1.2-8]), and a terminal beside it keeps working.
 */
import net from 'node:net'
import t, { type Test } from 'tap'
import { generate, type IConnectPacket, type Packet, parser } from 'mqtt-packet'
import { settlesWithin } from '../support/observe.js'
import { rawConnect } from '../support/raw-terminal.js'
import { BROKER_KINDS, differential, publishes, subscribe, watchWills } from '../support/differential.js'

const CLOSE_WITHIN_MS = 5000

/** A string as MQTT writes it: two length bytes, then UTF-8 [MQTT-1.5.3]. */
const str = (text: string): number[] => [...Buffer.from([0, Buffer.byteLength(text)]), ...Buffer.from(text)]
const packet = (firstByte: number, body: number[]): Buffer => Buffer.from([firstByte, body.length, ...body])

const SECOND_CONNECT = '[MQTT-3.1.0-2] a second CONNECT'

/** After the CONNECT: each packet breaks one rule that says the connection is closed. */
const afterConnect: Array<[string, (topic: string) => Buffer]> = [
  ['[MQTT-3.8.1-1] SUBSCRIBE with reserved flags 0000', (topic) => packet(0x80, [0, 1, ...str(topic), 1])],
  ['[MQTT-3.8.3-4] SUBSCRIBE asking for QoS 3', (topic) => packet(0x82, [0, 1, ...str(topic), 3])],
  ['[MQTT-3.8.3-3] SUBSCRIBE without a topic filter', () => packet(0x82, [0, 1])],
  ['[MQTT-3.10.1-1] UNSUBSCRIBE with reserved flags 0000', (topic) => packet(0xa0, [0, 1, ...str(topic)])],
  ['[MQTT-3.3.1-4] PUBLISH with QoS 3', (topic) => packet(0x36, [...str(topic), 0, 1, ...Buffer.from('x')])],
  ['[MQTT-3.3.2-2] PUBLISH to a topic with +', (topic) => generate({ cmd: 'publish', topic: `${topic}/+`, payload: Buffer.from('x'), qos: 1, messageId: 1, retain: false, dup: false })],
  ['[MQTT-3.3.2-2] PUBLISH to a topic with #', (topic) => generate({ cmd: 'publish', topic: `${topic}/#`, payload: Buffer.from('x'), qos: 0, retain: false, dup: false })],
  ['[MQTT-3.6.1-1] PUBREL with reserved flags 0000', () => packet(0x60, [0, 1])],
  [SECOND_CONNECT, (topic) => generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: `${topic}-again`, clean: true, keepalive: 30 })]
]

const connectPacket = (clientId: string): IConnectPacket => ({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 30 })

/** As the first packet: the connection is closed and no session is made. */
const asFirstPacket: Array<[string, (clientId: string) => Buffer]> = [
  ['[MQTT-3.1.0-1] PINGREQ before CONNECT', () => Buffer.from([0xc0, 0x00])],
  ['[MQTT-3.1.0-1] SUBSCRIBE before CONNECT', (clientId) => packet(0x82, [0, 1, ...str(clientId), 1])],
  ['[MQTT-3.1.2-3] CONNECT with the reserved flag set', (clientId) => {
    const bytes = generate(connectPacket(clientId))
    bytes[9]! |= 0x01 // fixed header (2), protocol name (6), level (1), then the flags
    return bytes
  }],
  ['[MQTT-3.1.2-13] CONNECT with a will QoS and no will', (clientId) => {
    const bytes = generate(connectPacket(clientId))
    bytes[9]! |= 0x08
    return bytes
  }]
]

/** Writes `bytes` on a fresh socket; what came back, and whether the server closed it. */
async function firstPacket (t: Test, url: string, bytes: Buffer): Promise<{ closed: boolean, answered: string[] }> {
  const { hostname, port } = new URL(url)
  const socket = net.connect({ host: hostname, port: Number(port) })
  t.teardown(() => { socket.destroy() })
  const answered: string[] = []
  const read = parser({ protocolVersion: 4 })
  read.on('packet', (p: Packet) => answered.push(p.cmd))
  socket.on('data', (chunk) => read.parse(chunk))
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write(bytes)
  return { closed: await settlesWithin(closed, CLOSE_WITHIN_MS), answered }
}

for (const kind of BROKER_KINDS) {
  t.test(`${kind}: [MQTT-4.8.0-1] a malformed packet after CONNECT closes that connection, publishes its will, and no other`, async (t) => {
    const d = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of d.targets) {
      const prefix = `malformed/${kind}/${way}`
      const wills = await watchWills(t, d, way, `${prefix}/will`)
      const bystander = await rawConnect(t, url, { clientId: `malformed-bystander-${kind}-${way}` }, { autoAck: true })
      await subscribe(bystander, `${prefix}/bystander`, 1)
      const observed: Record<string, unknown> = {}
      const ids: string[] = []
      for (const [index, [name, bytes]] of afterConnect.entries()) {
        const id = `malformed-${kind}-${way}-${index}`
        ids.push(id)
        const will = { topic: `${prefix}/will/${index}`, payload: Buffer.from(name), qos: 1 as const, retain: false }
        const terminal = await rawConnect(t, url, { clientId: id, will })
        const from = terminal.packets.length
        terminal.sendBytes(bytes(`${prefix}/topic`))
        observed[name] = { closed: await settlesWithin(terminal.closed, CLOSE_WITHIN_MS), answered: terminal.packets.slice(from).map((p) => p.cmd) }
      }
      const published = await wills.settle(ids)
      await d.broker1.publish(`${prefix}/bystander`, ['still here'], 1)
      await bystander.next((p) => p.cmd === 'publish' && p.topic === `${prefix}/bystander`)
      seen[way] = {
        ...observed,
        willsAtBroker1: published.broker1.map(([topic]) => afterConnect[Number(topic.split('/').at(-1))]![0]),
        willsAtBroker2: published.broker2.length,
        bystander: publishes(bystander.packets).map((p) => p.payload.toString())
      }
      await bystander.disconnect()
    }
    const direct = seen.direct as { willsAtBroker1: string[] }
    if (kind === 'mosquitto') {
      // Deliberate (README "What a terminal observes"): mosquitto 2.0.11 closes a terminal that sends a second
      // CONNECT without publishing its will; the tier publishes it, as for any other protocol error [MQTT-3.1.2-8].
      t.notOk(direct.willsAtBroker1.includes(SECOND_CONNECT), 'straight at mosquitto: no will after a second CONNECT')
      t.same(seen.tier, { ...direct, willsAtBroker1: [...direct.willsAtBroker1, SECOND_CONNECT] }, 'through the tier: the will, otherwise as straight at the broker')
    } else {
      t.same(seen.tier, seen.direct, `through the tier as straight at the broker: ${JSON.stringify(seen.direct)}`)
    }
    for (const [name] of afterConnect) t.match(seen.tier, { [name]: { closed: true, answered: [] } }, `${name}: closed, unanswered`)
    t.same((seen.tier as { willsAtBroker1: string[] }).willsAtBroker1, afterConnect.map(([name]) => name), 'one will per connection closed, from Broker1')
    t.match(seen.tier, { willsAtBroker2: 0, bystander: ['still here'] })
  })

  t.test(`${kind}: a malformed or missing CONNECT closes the connection before any session exists`, async (t) => {
    const d = await differential(t, kind)
    const seen: Record<string, unknown> = {}
    for (const [way, url] of d.targets) {
      const observed: Record<string, unknown> = {}
      const connectsBefore = d.broker1.aedes?.connectsTotal()
      for (const [index, [name, bytes]] of asFirstPacket.entries()) {
        observed[name] = await firstPacket(t, url, bytes(`first-${kind}-${way}-${index}`))
      }
      if (way === 'tier' && connectsBefore !== undefined) t.equal(d.broker1.aedes!.connectsTotal(), connectsBefore, 'through the tier: no session opened upstream')
      seen[way] = observed
    }
    t.same(seen.tier, seen.direct, `through the tier as straight at the broker: ${JSON.stringify(seen.direct)}`)
    for (const [name] of asFirstPacket) t.match(seen.direct, { [name]: { closed: true, answered: [] } }, `${name}: closed, unanswered`)
  })
}
