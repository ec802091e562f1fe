import { readFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import type { Aedes } from 'aedes'
import { createWebSocketStream, WebSocketServer } from 'ws'
import { ConnectionRate } from './limits/connection-gate.js'
import { guardPacketSize } from './limits/packet-guard.js'
import { type Logger, silentLogger } from './logger.js'

export interface Address { host: string, port: number }

export interface Listener {
  address: Address
  /** Stops accepting; the connections open stay. */
  stopAccepting: () => void
  /** Stops accepting and drops the connections still open. */
  close: () => Promise<void>
}

/** What a hostile or runaway client may not exceed on one listener (0 = no limit). */
export interface ListenerLimits {
  maxPacketSize: number
  maxConnections: number
  connectionRatePerSecond: number
}

export interface TlsFiles {
  key: string
  cert: string
  /** CA of the terminals' client certificates; with `requestCert`, only certificates it signed get in. */
  ca?: string
  requestCert: boolean
}

export interface ListenOptions {
  limits?: ListenerLimits
  tls?: TlsFiles
  logger?: Logger
}

/** MQTT over TCP (or TLS) into an Aedes instance, with the listener limits applied per connection. */
export async function listenTcp (aedes: Aedes, host: string, port: number, options: ListenOptions = {}): Promise<Listener> {
  const { limits, logger = silentLogger } = options
  const sockets = new Set<net.Socket>()
  const rate = new ConnectionRate(limits?.connectionRatePerSecond ?? 0)
  const accept = (socket: net.Socket): void => {
    if (!rate.admit()) {
      logger.warn({ remote: socket.remoteAddress }, 'connection refused: limits.connectionRatePerSecond')
      socket.destroy()
      return
    }
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    const maxPacketSize = limits?.maxPacketSize ?? 0
    aedes.handle(maxPacketSize > 0
      ? guardPacketSize(socket, maxPacketSize, (reason) => logger.warn({ remote: socket.remoteAddress, reason }, 'connection dropped'))
      : socket)
  }
  // MQTT acks are small writes: without TCP_NODELAY, Nagle holds them for the peer's delayed ACK (~40 ms).
  const server = options.tls === undefined
    ? net.createServer({ noDelay: true }, accept)
    : tls.createServer({ ...tlsContext(options.tls), noDelay: true }, accept)
  server.on('tlsClientError', (error: Error, socket: net.Socket) => {
    logger.warn({ remote: socket.remoteAddress, reason: error.message }, 'TLS handshake failed')
  })
  if ((limits?.maxConnections ?? 0) > 0) server.maxConnections = limits!.maxConnections
  const address = await bind(server, host, port)
  const closed = new Promise((resolve) => server.once('close', resolve))
  return {
    address,
    stopAccepting: () => { if (server.listening) server.close() },
    close: async () => {
      if (server.listening) server.close()
      for (const socket of sockets) socket.destroy()
      await closed
    }
  }
}

function tlsContext (files: TlsFiles): tls.TlsOptions {
  return {
    key: readFileSync(files.key),
    cert: readFileSync(files.cert),
    ...(files.ca !== undefined && { ca: readFileSync(files.ca) }),
    requestCert: files.requestCert,
    rejectUnauthorized: files.requestCert
  }
}

/** MQTT over WebSocket into an Aedes instance. */
export async function listenWs (aedes: Aedes, host: string, port: number, options: ListenOptions = {}): Promise<Listener> {
  const http = createHttpServer()
  const maxPayload = options.limits?.maxPacketSize ?? 0
  const wss = new WebSocketServer({ server: http, ...(maxPayload > 0 && { maxPayload }) })
  wss.on('connection', (socket, req) => aedes.handle(createWebSocketStream(socket), req))
  if ((options.limits?.maxConnections ?? 0) > 0) http.maxConnections = options.limits!.maxConnections
  const address = await bind(http, host, port)
  return {
    address,
    stopAccepting: () => { if (http.listening) http.close() },
    close: async () => {
      for (const client of wss.clients) client.terminate()
      await new Promise((resolve) => wss.close(resolve))
      if (http.listening) await new Promise((resolve) => http.close(resolve))
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
