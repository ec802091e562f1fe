import net from 'node:net'
import mqttPacket from 'mqtt-packet'
import type { Test } from 'tap'

/** A TCP connection that never sends a byte; `closed` resolves when the server closes it. */
export interface IdleSocket {
  socket: net.Socket
  closed: Promise<void>
}

/** Opens a connection from `localAddress` (any of 127/8 on Linux) and resolves once it is established. */
export function openIdle (port: number, localAddress = '127.0.0.1'): Promise<IdleSocket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress })
    socket.on('error', () => {})
    socket.on('data', () => {})
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.once('connect', () => resolve({ socket, closed }))
    socket.once('close', () => reject(new Error('closed before it connected')))
  })
}

/** A pool of idle sockets destroyed at teardown. */
export function idlePool (t: Test): { open: (port: number, localAddress?: string) => Promise<IdleSocket>, sockets: Set<net.Socket> } {
  const sockets = new Set<net.Socket>()
  t.teardown(() => { for (const socket of sockets) socket.destroy() })
  return {
    sockets,
    open: async (port, localAddress) => {
      const idle = await openIdle(port, localAddress)
      sockets.add(idle.socket)
      void idle.closed.then(() => sockets.delete(idle.socket))
      return idle
    }
  }
}

/** 127.0.0.2, 127.0.0.3, …: `count` loopback source addresses other than 127.0.0.1. */
export function loopbackSources (count: number): string[] {
  return Array.from({ length: count }, (_, i) => `127.0.${Math.floor((i + 2) / 256)}.${(i + 2) % 256}`)
}

/** What a CONNECT sent by `connectFrom` got: the CONNACK's return code, or 'closed' without one. */
export interface Connected { code: number | 'closed', socket: net.Socket }

/**
 * Sends a CONNECT from `localAddress`; the socket stays open (destroyed at teardown, or, without
 * `t`, by the caller: a teardown holds on to its socket until the test ends).
 */
export function connectFrom (t: Test | undefined, port: number, localAddress: string, clientId: string): Promise<Connected> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress })
    t?.teardown(() => { socket.destroy() })
    socket.on('error', () => {})
    socket.once('connect', () => socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0 })))
    // CONNACK: 0x20, remaining length 2, flags, return code [MQTT-3.2]
    socket.once('data', (data: Buffer) => resolve({ code: data[0] === 0x20 ? data[3]! : 'closed', socket }))
    socket.once('close', () => resolve({ code: 'closed', socket }))
  })
}

/** The CONNACK return code (or 'closed') of a CONNECT from `localAddress`. */
export async function connackFrom (t: Test, port: number, localAddress: string, clientId: string): Promise<number | 'closed'> {
  return (await connectFrom(t, port, localAddress, clientId)).code
}
