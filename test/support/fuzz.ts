import net from 'node:net'
import mqttPacket from 'mqtt-packet'

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with its seed. */
export function random (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const connect = (clientId: string): Buffer => mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0 })
const publish = (topic: string, payload: Buffer, qos: 0 | 1 = 1): Buffer =>
  mqttPacket.generate({ cmd: 'publish', topic, payload, qos, messageId: qos > 0 ? 1 : undefined, retain: false, dup: false } as mqttPacket.IPublishPacket)

/** Input classes that a correct server must refuse by closing the connection. */
export const refusedClasses = {
  'bad remaining length': (): Buffer[] => [Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f])],
  'wildcard in PUBLISH topic': (id: string): Buffer[] => [connect(id), publish('a/+/b', Buffer.from('x'))],
  'multi-level wildcard in PUBLISH topic': (id: string): Buffer[] => [connect(id), publish('a/#', Buffer.from('x'))],
  'oversized packet': (id: string): Buffer[] => [connect(id), publish('big', Buffer.alloc(128 * 1024))],
  'CONNECT after CONNECT': (id: string): Buffer[] => [connect(id), connect(id)],
  'PUBLISH before CONNECT': (): Buffer[] => [publish('early', Buffer.from('x'))],
  'unknown packet type 0': (id: string): Buffer[] => [connect(id), Buffer.from([0x00, 0x00])],
  'empty PUBLISH topic': (id: string): Buffer[] => [connect(id), publish('', Buffer.from('x'))]
} as const

/** A valid session (CONNECT, PUBLISH) with random bytes flipped, cut short, or garbage appended. */
export function mutated (rand: () => number, id: string): Buffer[] {
  const bytes = Buffer.concat([connect(id), publish(`fuzz/${Math.floor(rand() * 10)}`, Buffer.from('payload'))])
  switch (Math.floor(rand() * 4)) {
    case 0: {
      const copy = Buffer.from(bytes)
      for (let i = 0; i < 1 + rand() * 4; i++) copy[Math.floor(rand() * copy.length)] = Math.floor(rand() * 256)
      return [copy]
    }
    case 1: return [bytes.subarray(0, Math.floor(rand() * bytes.length))]
    case 2: return [bytes, Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)))]
    default: {
      // invalid UTF-8 in the topic of an otherwise well-formed PUBLISH
      const topic = Buffer.from([0x66, 0xc3, 0x28, 0xa0, 0xa1])
      const body = Buffer.concat([Buffer.from([0, topic.length]), topic, Buffer.from([0, 1]), Buffer.from('x')])
      return [connect(id), Buffer.concat([Buffer.from([0x32, body.length]), body])]
    }
  }
}

/** Sends `packets` on a fresh socket; resolves whether the server closed it within `ms`. */
export function send (port: number, packets: Buffer[], ms = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    const timer = setTimeout(() => { socket.destroy(); resolve(false) }, ms)
    socket.on('error', () => {})
    socket.on('data', () => {})
    socket.on('close', () => { clearTimeout(timer); resolve(true) })
    socket.on('connect', () => { for (const packet of packets) socket.write(packet) })
  })
}

const subscribe = (filters: string[]): Buffer =>
  mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: filters.map((topic) => ({ topic, qos: 1 as const })) })

/**
 * What a hostile terminal sends, each class with what the tier must do about it: `closes` — the
 * connection is closed (by a refusal or a timeout); otherwise it stays and must be harmless.
 * `rand` makes the sizes vary with the seed.
 */
export const hostileTerminals = {
  /** Connects and never sends a byte. */
  'idle socket': { closes: true, make: (): Buffer[] => [] },
  /** A CONNECT cut short: the rest never comes. */
  'half CONNECT': { closes: true, make: (rand: () => number, id: string): Buffer[] => [connect(id).subarray(0, 2 + Math.floor(rand() * 8))] },
  'huge client id': { closes: true, make: (rand: () => number): Buffer[] => [connect('c'.repeat(1000 + Math.floor(rand() * 60_000)))] },
  'huge PUBLISH topic': { closes: true, make: (rand: () => number, id: string): Buffer[] => [connect(id), publish('t'.repeat(5000 + Math.floor(rand() * 60_000)), Buffer.from('x'))] },
  /** One SUBSCRIBE with thousands of filters, and one with a huge filter: SUBACK 0x80 for those past the caps. */
  'subscribe flood': {
    closes: false,
    make: (rand: () => number, id: string): Buffer[] => [
      connect(id),
      subscribe(Array.from({ length: 300 + Math.floor(rand() * 2000) }, (_, i) => `flood/${id}/${i}`)),
      subscribe(['f'.repeat(5000 + Math.floor(rand() * 20_000))])
    ]
  }
} as const
