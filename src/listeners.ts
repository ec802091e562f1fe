import { readFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import net from 'node:net'
import tls from 'node:tls'
import type { Aedes } from 'aedes'
import { createWebSocketStream, WebSocketServer } from 'ws'
import type { Readable } from 'node:stream'
import { ConnectionGate, type GateLimits, sourceOf } from './limits/connection-gate.js'
import { type FdBudget, isFdExhaustion } from './limits/fd-budget.js'
import { guardPacketSize } from './limits/packet-guard.js'
import { newRefusalCounts, Refusals } from './limits/refusals.js'
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
export interface ListenerLimits extends GateLimits {
  maxPacketSize: number
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
  /** Where refusals are counted and logged (the tier's, so that they show in its state and metrics). */
  refusals?: Refusals
  /** The process's file descriptors, shared by every listener. */
  fds?: FdBudget
}

const NO_LIMITS: ListenerLimits = { maxPacketSize: 0, maxConnections: 0, connectionRatePerSecond: 0, maxConnectionsPerSource: 0, maxPendingConnectsPerSource: 0, connectTimeoutMs: 0 }

/**
 * Every new TCP connection of `server` passes the gate first (before a TLS
 * handshake or an HTTP upgrade costs anything); `handle` then gets the
 * admitted stream with its packet sizes checked, and tells the gate when the
 * CONNECT came.
 */
function gated (server: net.Server, options: ListenOptions): { gate: ConnectionGate, sockets: Set<net.Socket>, guard: <S extends Readable>(stream: S, raw: net.Socket) => S } {
  const { limits = NO_LIMITS, logger = silentLogger, refusals = new Refusals(newRefusalCounts(), logger) } = options
  const gate = new ConnectionGate(limits, refusals, options.fds)
  const sockets = new Set<net.Socket>()
  server.prependListener('connection', (socket: net.Socket) => {
    if (!gate.admit(socket)) return
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  // libuv absorbs most EMFILE on accept itself (the budget above keeps the tier below it); whatever still
  // surfaces here must not take the listener down.
  server.on('error', (error: Error) => {
    if (isFdExhaustion(error)) refusals.refuse('fd-limit', { syscall: (error as { syscall?: string }).syscall })
    else logger.error({ err: error.message }, 'listener error')
  })
  server.once('close', () => gate.close())
  const guard = <S extends Readable>(stream: S, raw: net.Socket): S => guardPacketSize(stream, limits.maxPacketSize,
    (problem) => refusals.refuse('packet-size', { remote: sourceOf(raw), problem }),
    () => gate.connected(raw))
  return { gate, sockets, guard }
}

/** MQTT over TCP (or TLS) into an Aedes instance, with the listener limits applied per connection. */
export async function listenTcp (aedes: Aedes, host: string, port: number, options: ListenOptions = {}): Promise<Listener> {
  const { logger = silentLogger } = options
  // MQTT acks are small writes: without TCP_NODELAY, Nagle holds them for the peer's delayed ACK (~40 ms).
  const server = options.tls === undefined
    ? net.createServer({ noDelay: true })
    : tls.createServer({ ...tlsContext(options.tls), noDelay: true, ...handshakeTimeout(options.limits) })
  const { sockets, guard } = gated(server, options)
  if (options.tls === undefined) {
    server.on('connection', (socket: net.Socket) => { if (!socket.destroyed) aedes.handle(guard(socket, socket)) })
  } else {
    // The TLS socket wraps the TCP one the gate admitted; they share the peer's address and port.
    const raws = new Map<string, net.Socket>()
    server.on('connection', (socket: net.Socket) => {
      if (socket.destroyed) return
      const peer = peerOf(socket)
      raws.set(peer, socket)
      socket.once('close', () => raws.delete(peer))
    })
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      const raw = raws.get(peerOf(socket))
      if (raw === undefined) socket.destroy()
      else aedes.handle(guard(socket, raw))
    })
    server.on('tlsClientError', (error: Error, socket: net.Socket) => {
      logger.warn({ remote: socket.remoteAddress, reason: error.message }, 'TLS handshake failed')
    })
  }
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

/** A TLS handshake counts against the time to CONNECT: a peer that never finishes it holds a socket too. */
function handshakeTimeout (limits: ListenerLimits | undefined): tls.TlsOptions {
  return limits !== undefined && limits.connectTimeoutMs > 0 ? { handshakeTimeout: limits.connectTimeoutMs } : {}
}

function peerOf (socket: net.Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`
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

/** MQTT over WebSocket into an Aedes instance; the gate sees each TCP connection before its upgrade. */
export async function listenWs (aedes: Aedes, host: string, port: number, options: ListenOptions = {}): Promise<Listener> {
  const http = createHttpServer()
  const maxPayload = options.limits?.maxPacketSize ?? 0
  const wss = new WebSocketServer({ server: http, ...(maxPayload > 0 && { maxPayload }) })
  const { guard } = gated(http, options)
  wss.on('connection', (socket, req) => aedes.handle(guard(createWebSocketStream(socket), req.socket), req))
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
