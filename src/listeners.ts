import { createServer as createHttpServer } from 'node:http'
import net from 'node:net'
import type { Aedes } from 'aedes'
import { createWebSocketStream, WebSocketServer } from 'ws'

export interface Address { host: string, port: number }

export interface Listener {
  address: Address
  /** Stops accepting and drops the connections still open. */
  close: () => Promise<void>
}

/** MQTT over TCP into an Aedes instance. */
export async function listenTcp (aedes: Aedes, host: string, port: number): Promise<Listener> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    aedes.handle(socket)
  })
  const address = await bind(server, host, port)
  return {
    address,
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve))
      for (const socket of sockets) socket.destroy()
      await closed
    }
  }
}

/** MQTT over WebSocket into an Aedes instance. */
export async function listenWs (aedes: Aedes, host: string, port: number): Promise<Listener> {
  const http = createHttpServer()
  const wss = new WebSocketServer({ server: http })
  wss.on('connection', (socket, req) => aedes.handle(createWebSocketStream(socket), req))
  const address = await bind(http, host, port)
  return {
    address,
    close: async () => {
      for (const client of wss.clients) client.terminate()
      await new Promise((resolve) => wss.close(resolve))
      await new Promise((resolve) => http.close(resolve))
    }
  }
}

function bind (server: net.Server, host: string, port: number): Promise<Address> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      const address = server.address() as net.AddressInfo
      resolve({ host: address.address, port: address.port })
    })
  })
}
