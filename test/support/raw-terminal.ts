import net from 'node:net'
import { generate, type IConnackPacket, type IConnectPacket, type Packet, parser } from 'mqtt-packet'
import type { Test } from 'tap'

/**
 * A terminal on a raw socket, for what mqtt.js hides: every packet the server
 * sends with its flags (session present, DUP, retain, QoS), and acks sent only
 * when the test says so.
 */
export interface RawTerminal {
  readonly packets: Packet[]
  readonly connack: IConnackPacket
  /** performance.now() from the CONNECT written to the CONNACK read. */
  readonly connackMs: number
  send: (packet: Packet) => void
  /** Bytes as they are, for packets mqtt-packet would not write (malformed ones). */
  sendBytes: (bytes: Buffer) => void
  /** Resolves with the first packet (already received or future) that matches, after `from` (an index into `packets`). */
  next: <P extends Packet = Packet>(match: (packet: Packet) => boolean, timeoutMs?: number, from?: number) => Promise<P>
  /** Resolves once the server closed the connection (or it was closed here). */
  readonly closed: Promise<void>
  /** DISCONNECT, then close. */
  disconnect: () => Promise<void>
  /** Close without DISCONNECT (a drop). */
  drop: () => Promise<void>
}

const CLEAN_SESSION = 0x02

/**
 * mqtt-packet refuses to write a CONNECT with no client id and clean session
 * 0, the very packet [MQTT-3.1.3-8] is about: it is written with clean session
 * 1, and the flag cleared in the bytes (fixed header, length, "MQTT", level, flags).
 */
function connectBytes (packet: IConnectPacket): Buffer {
  if (packet.clientId !== '' || packet.clean !== false) return generate(packet)
  const bytes = generate({ ...packet, clean: true })
  const flags = 2 + 6 + 1 // one length byte: a CONNECT this small
  bytes[flags]! &= ~CLEAN_SESSION
  return bytes
}

export type ConnectOptions = Partial<Omit<IConnectPacket, 'cmd'>> & { clientId: string }

export interface Behaviour {
  /** Answer every QoS 1 PUBLISH with PUBACK, QoS 2 with PUBREC, PUBREL with PUBCOMP, as they arrive. */
  autoAck?: boolean
  /** Answer every PUBREC with PUBREL, as a QoS 2 publisher does. */
  release?: boolean
}

export function rawConnect (t: Test, url: string, options: ConnectOptions, behaviour: Behaviour = {}): Promise<RawTerminal> {
  const { hostname, port } = new URL(url)
  const socket = net.connect({ host: hostname, port: Number(port) })
  socket.setNoDelay(true)
  const packets: Packet[] = []
  const waiters = new Set<() => void>()
  const read = parser({ protocolVersion: 4 })
  read.on('packet', (packet: Packet) => {
    packets.push(packet)
    if (behaviour.autoAck === true) answer(packet)
    if (behaviour.release === true && packet.cmd === 'pubrec') send({ cmd: 'pubrel', messageId: packet.messageId! })
    for (const check of [...waiters]) check()
  })
  socket.on('data', (chunk) => read.parse(chunk))
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  t.teardown(() => { socket.destroy() })

  const next = <P extends Packet = Packet>(match: (packet: Packet) => boolean, timeoutMs = 5000, from = 0): Promise<P> => new Promise((resolve, reject) => {
    const check = (): void => {
      const found = packets.slice(from).find(match)
      if (found === undefined) return
      waiters.delete(check)
      clearTimeout(timer)
      resolve(found as P)
    }
    const timer = setTimeout(() => {
      waiters.delete(check)
      reject(new Error(`no matching packet within ${timeoutMs} ms; got ${packets.map((p) => p.cmd).join(',')}`))
    }, timeoutMs)
    waiters.add(check)
    check()
  })
  const send = (packet: Packet): void => { socket.write(generate(packet)) }
  const answer = (packet: Packet): void => {
    if (packet.cmd === 'publish' && packet.qos > 0) send({ cmd: packet.qos === 1 ? 'puback' : 'pubrec', messageId: packet.messageId! })
    if (packet.cmd === 'pubrel') send({ cmd: 'pubcomp', messageId: packet.messageId! })
  }
  const end = async (disconnect: boolean): Promise<void> => {
    if (disconnect && !socket.destroyed) socket.end(generate({ cmd: 'disconnect' }))
    else socket.destroy()
    await closed
  }

  return new Promise((resolve, reject) => {
    socket.once('error', reject)
    socket.once('connect', () => {
      const startedAt = performance.now()
      socket.write(connectBytes({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, ...options }))
      next<IConnackPacket>((packet) => packet.cmd === 'connack').then((connack) => {
        resolve({
          packets, connack, connackMs: performance.now() - startedAt, send, next, closed,
          sendBytes: (bytes) => { socket.write(bytes) },
          disconnect: () => end(true),
          drop: () => end(false)
        })
      }, reject)
    })
  })
}
