/** The hand-written PUBLISH packets: byte for byte what mqtt-packet writes, and read back the same. */
import t from 'tap'
import { generate, parser, type IPublishPacket } from 'mqtt-packet'
import { publishPacket, publishWithId } from '../src/mqtt/publish-packet.js'
import { MESSAGE_ID_PROPERTY, type Qos } from '../src/mqtt/protocol.js'

const cases: Array<{ topic: string, payload: Buffer, qos: Qos, retain: boolean, id: string }> = [
  { topic: 'a/b', payload: Buffer.from('x'), qos: 0, retain: false, id: 'AbCdEfGh.0' },
  { topic: 'sensors/température/1', payload: Buffer.alloc(0), qos: 1, retain: true, id: 'AbCdEfGh.zz' },
  // Remaining lengths of 2 and 3 bytes.
  { topic: 't', payload: Buffer.alloc(200, 7), qos: 2, retain: false, id: 'AbCdEfGh.1a2b' },
  { topic: 't/'.repeat(100) + 'x', payload: Buffer.alloc(20_000, 1), qos: 1, retain: false, id: 'AbCdEfGh.9' }
]

for (const c of cases) {
  t.test(`QoS ${c.qos}, ${c.payload.length}-byte payload, retain ${c.retain}`, async (t) => {
    const messageId = c.qos === 0 ? 0 : 4242
    const ours = publishWithId(c, c.id, messageId)
    const theirs = generate({
      cmd: 'publish', topic: c.topic, payload: c.payload, qos: c.qos, retain: c.retain, dup: false,
      ...(c.qos > 0 && { messageId }),
      properties: { userProperties: { [MESSAGE_ID_PROPERTY]: c.id } }
    }, { protocolVersion: 5 })
    t.same(ours, theirs, 'the same bytes as mqtt-packet')
    const read = parser({ protocolVersion: 5 })
    const packets: IPublishPacket[] = []
    read.on('packet', (p) => packets.push(p as IPublishPacket))
    read.parse(ours)
    t.equal(packets.length, 1)
    t.match(packets[0], { topic: c.topic, qos: c.qos, retain: c.retain, properties: { userProperties: { [MESSAGE_ID_PROPERTY]: c.id } } })
    t.same(packets[0]!.payload, c.payload)
  })
}

for (const c of cases) {
  for (const protocolVersion of [4, 5] as const) {
    t.test(`without properties, MQTT ${protocolVersion}: QoS ${c.qos}, ${c.payload.length}-byte payload, retain ${c.retain}, DUP where QoS > 0`, async (t) => {
      const messageId = c.qos === 0 ? 0 : 513
      const dup = c.qos > 0
      const theirs = generate({ cmd: 'publish', topic: c.topic, payload: c.payload, qos: c.qos, retain: c.retain, dup, ...(c.qos > 0 && { messageId }) }, { protocolVersion })
      t.same(publishPacket(c, messageId, dup, protocolVersion), theirs, 'the same bytes as mqtt-packet')
    })
  }
}
