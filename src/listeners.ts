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
  /** New limits for the connections accepted from now on (a reload); the open ones keep theirs. */
  setLimits: (limits: ListenerLimits) => void
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

/** The peer of each stream handed to Aedes, kept from the start: a closed socket no longer knows it. */
const peers = new WeakMap<object, string>()

/** The address a terminal's stream came from, e.g. for a refusal logged after its socket closed. */
export function peerAddress (stream: object | undefined): string | undefined {
  return stream === undefined ? undefined : peers.get(stream)
}

/** MQTT over TCP (or TLS) into an Aedes instance, with the listener limits applied per connection. */
export async function listenTcp (aedes: Aedes, host: string, port: number, options: ListenOptions = {}): Promise<Listener> {
  const { logger = silentLogger } = options
  let limits = options.limits
  const sockets = new Set<net.Socket>()
  let rate = new ConnectionRate(limits?.connectionRatePerSecond ?? 0)
  const accept = (socket: net.Socket): void => {
    if (!rate.admit()) {
      logger.info({ remote: socket.remoteAddress, reason: 'limits.connectionRatePerSecond' }, 'terminal refused')
      socket.destroy()
      return
    }
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    if (socket.remoteAddress !== undefined) peers.set(socket, socket.remoteAddress)
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
  // Past maxConnections node closes the socket itself and says so only with 'drop'.
  server.on('drop', (data?: { remoteAddress?: string }) => {
    logger.info({ remote: data?.remoteAddress, reason: 'limits.maxConnections' }, 'terminal refused')
  })
  setMaxConnections(server, limits)
  const address = await bind(server, host, port)
  const closed = new Promise((resolve) => server.once('close', resolve))
  return {
    address,
    setLimits: (next) => {
      if (next.connectionRatePerSecond !== limits?.connectionRatePerSecond) rate = new ConnectionRate(next.connectionRatePerSecond)
      limits = next
      setMaxConnections(server, next)
    },
    stopAccepting: () => { if (server.listening) server.close() },
    close: async () => {
      if (server.listening) server.close()
      for (const socket of sockets) socket.destroy()
      await closed
    }
  }
}

/** 0 = no limit; node's own default for none is Infinity. */
function setMaxConnections (server: net.Server, limits: ListenerLimits | undefined): void {
  const max = limits?.maxConnections ?? 0
  server.maxConnections = max > 0 ? max : Infinity
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

/** ws' own default: what a WebSocket message may be when `limits.maxPacketSize` is 0. */
const WS_DEFAULT_MAX_PAYLOAD = 100 * 1024 * 1024

/** MQTT over WebSocket into an Aedes instance. */
export async function listenWs (aedes: Aedes, host: string, port: number, options: ListenOptions = {}): Promise<Listener> {
  const http = createHttpServer()
  const wss = new WebSocketServer({ server: http })
  // ws reads its options for each new connection, so a reload reaches the next ones.
  const setLimits = (limits: ListenerLimits | undefined): void => {
    const maxPayload = limits?.maxPacketSize ?? 0
    wss.options.maxPayload = maxPayload > 0 ? maxPayload : WS_DEFAULT_MAX_PAYLOAD
    setMaxConnections(http, limits)
  }
  setLimits(options.limits)
  wss.on('connection', (socket, req) => {
    const stream = createWebSocketStream(socket)
    if (req.socket.remoteAddress !== undefined) peers.set(stream, req.socket.remoteAddress)
    aedes.handle(stream, req)
  })
  const address = await bind(http, host, port)
  return {
    address,
    setLimits,
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
