import t from 'tap'
import { generate, type Packet, parser } from 'mqtt-packet'
import { type FallbackParser, PacketReader } from '../src/mqtt/packet-reader.js'

/**
 * The reader decodes nothing mqtt-packet would decode differently: the same
 * byte stream, cut at random places, gives the same packets and the same first
 * error from both. Seeded, so that a failure can be replayed.
 */

type Event = { packet: Packet } | { error: string }

function viaMqttPacket (chunks: Buffer[], protocolVersion: 4 | 5): Event[] {
  const events: Event[] = []
  const p = parser({ protocolVersion })
  p.on('packet', (packet) => events.push({ packet: { ...packet } }))
  p.on('error', (error: Error) => events.push({ error: error.message }))
  for (const chunk of chunks) {
    p.parse(chunk)
    if (events.some((e) => 'error' in e)) break
  }
  return untilFirstError(events)
}

function viaReader (chunks: Buffer[], protocolVersion: 4 | 5): Event[] {
  const events: Event[] = []
  const fallback = parser({ protocolVersion }) as FallbackParser
  fallback.on('packet', (packet) => events.push({ packet: { ...packet } }))
  fallback.on('error', (error: Error) => events.push({ error: error.message }))
  const reader = new PacketReader(fallback, (packet) => events.push({ packet: { ...packet } }), () => protocolVersion)
  for (const chunk of chunks) {
    reader.read(chunk)
    if (events.some((e) => 'error' in e)) break
  }
  return untilFirstError(events)
}

/** A connection ends at its first error: what either parser makes of the bytes after it does not matter. */
function untilFirstError (events: Event[]): Event[] {
  const at = events.findIndex((e) => 'error' in e)
  return at < 0 ? events : events.slice(0, at + 1)
}

function random (seed: number): () => number {
  let state = seed
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff
    return state / 0x80000000
  }
}

function cut (bytes: Buffer, next: () => number): Buffer[] {
  const chunks: Buffer[] = []
  let at = 0
  while (at < bytes.length) {
    const size = next() < 0.3 ? 1 + Math.floor(next() * 3) : 1 + Math.floor(next() * 200)
    chunks.push(bytes.subarray(at, at + size))
    at += size
  }
  return chunks
}

const payload = Buffer.from('seq=42 hello')
const v4Packets: Packet[] = [
  { cmd: 'publish', topic: 'a/b', payload, qos: 0, retain: false, dup: false },
  { cmd: 'publish', topic: 'a/b', payload, qos: 1, retain: true, dup: false, messageId: 7 },
  { cmd: 'publish', topic: 'é/ü', payload: Buffer.alloc(0), qos: 2, retain: false, dup: true, messageId: 65535 },
  { cmd: 'publish', topic: 'big', payload: Buffer.alloc(300, 1), qos: 1, retain: false, dup: false, messageId: 1 },
  { cmd: 'puback', messageId: 7 },
  { cmd: 'pubrec', messageId: 8 },
  { cmd: 'pubrel', messageId: 9 },
  { cmd: 'pubcomp', messageId: 10 },
  { cmd: 'pingreq' },
  { cmd: 'pingresp' },
  { cmd: 'subscribe', messageId: 3, subscriptions: [{ topic: 'x/#', qos: 1 }] },
  { cmd: 'suback', messageId: 3, granted: [1] },
  { cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['x/#'] },
  { cmd: 'connack', returnCode: 0, sessionPresent: true },
  { cmd: 'disconnect' }
]
const v5Packets: Packet[] = [
  ...v4Packets.filter((p) => p.cmd !== 'connack'),
  { cmd: 'connack', reasonCode: 0, sessionPresent: false, properties: { receiveMaximum: 100 } },
  { cmd: 'publish', topic: 'a', payload, qos: 1, retain: false, dup: false, messageId: 2, properties: { userProperties: { 'dual-broker-id': 'n1:42' } } },
  { cmd: 'publish', topic: 'a', payload, qos: 1, retain: false, dup: false, messageId: 3, properties: { subscriptionIdentifier: 5, userProperties: { 'dual-broker-id': 'n1:43', other: 'x' } } },
  { cmd: 'publish', topic: 'a', payload, qos: 1, retain: false, dup: false, messageId: 4, properties: { userProperties: { k: ['1', '2'] } } },
  { cmd: 'publish', topic: 'a', payload, qos: 0, retain: false, dup: false, properties: { contentType: 'text/plain', subscriptionIdentifier: [1, 2] } },
  { cmd: 'puback', messageId: 7, reasonCode: 0x10 },
  { cmd: 'pubrec', messageId: 7, reasonCode: 0x80, properties: { reasonString: 'no' } },
  { cmd: 'pubcomp', messageId: 7, reasonCode: 0x92 }
]

for (const [protocolVersion, packets] of [[4, v4Packets], [5, v5Packets]] as const) {
  t.test(`MQTT ${protocolVersion}: every packet, in streams cut at random, decodes as mqtt-packet decodes it`, async (t) => {
    const next = random(protocolVersion * 1000 + 1)
    const encoded = packets.map((p) => generate(p, { protocolVersion }))
    let fast = 0
    for (let round = 0; round < 300; round++) {
      const stream = Buffer.concat(Array.from({ length: 1 + Math.floor(next() * 12) }, () => encoded[Math.floor(next() * encoded.length)]!))
      const chunks = cut(stream, next)
      const expected = viaMqttPacket(chunks, protocolVersion)
      const actual = viaReader(chunks, protocolVersion)
      if (JSON.stringify(actual) !== JSON.stringify(expected)) {
        t.same(actual, expected, `round ${round}: the same packets`)
        return
      }
      fast += actual.length
    }
    t.ok(fast > 1000, `${fast} packets decoded alike`)
  })

  t.test(`MQTT ${protocolVersion}: corrupted streams give the same packets and the same first error`, async (t) => {
    const next = random(protocolVersion * 1000 + 2)
    const encoded = packets.map((p) => generate(p, { protocolVersion }))
    let errors = 0
    for (let round = 0; round < 2000; round++) {
      const stream = Buffer.from(Buffer.concat(Array.from({ length: 1 + Math.floor(next() * 4) }, () => encoded[Math.floor(next() * encoded.length)]!)))
      for (let flips = 1 + Math.floor(next() * 3); flips > 0; flips--) stream[Math.floor(next() * stream.length)] = Math.floor(next() * 256)
      const chunks = cut(stream, next)
      const expected = viaMqttPacket(chunks, protocolVersion)
      const actual = viaReader(chunks, protocolVersion)
      if (JSON.stringify(actual) !== JSON.stringify(expected)) {
        t.same(actual, expected, `round ${round}: ${stream.toString('hex')}`)
        return
      }
      if (expected.some((e) => 'error' in e)) errors++
    }
    t.ok(errors > 100, `${errors} of 2,000 corrupted streams refused, alike`)
  })
}

t.test('a packet that arrives in many pieces is put together once, and its payload is whole', async (t) => {
  const big = generate({ cmd: 'publish', topic: 't', payload: Buffer.alloc(1 << 20, 7), qos: 1, messageId: 1, retain: false, dup: false })
  const got: Packet[] = []
  const fallback = parser({ protocolVersion: 4 }) as FallbackParser
  const reader = new PacketReader(fallback, (packet) => got.push(packet), () => 4)
  for (let at = 0; at < big.length; at += 1000) reader.read(big.subarray(at, at + 1000))
  t.equal(got.length, 1)
  t.equal((got[0] as { payload: Buffer }).payload.length, 1 << 20)
  t.equal(reader.holding, false)
})

t.test('what every message crosses is decoded by the reader itself, not handed to mqtt-packet', async (t) => {
  for (const [protocolVersion, packet] of [
    [4, v4Packets[1]!], [4, v4Packets[4]!], [4, v4Packets[6]!], [4, v4Packets[9]!],
    [5, v5Packets.find((p) => p.cmd === 'publish' && p.properties?.subscriptionIdentifier === 5)!], [5, v4Packets[5]!]
  ] as const) {
    const fallback = parser({ protocolVersion }) as FallbackParser
    let handedOver = 0
    fallback.on('packet', () => { handedOver++ })
    let decoded = 0
    const reader = new PacketReader(fallback, () => { decoded++ }, () => protocolVersion)
    reader.read(generate(packet, { protocolVersion }))
    t.same([decoded, handedOver], [1, 0], `MQTT ${protocolVersion} ${packet.cmd}`)
  }
})
