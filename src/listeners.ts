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
  /** New limits for the connections accepted from now on (a reload); the open ones keep theirs. */
  setLimits: (limits: ListenerLimits) => void
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

/** The peer of each stream handed to Aedes, kept from the start: a closed socket no longer knows it. */
const peers = new WeakMap<object, string>()

/** The address a terminal's stream came from, e.g. for a refusal logged after its socket closed. */
export function peerAddress (stream: object | undefined): string | undefined {
  return stream === undefined ? undefined : peers.get(stream)
}

const NO_LIMITS: ListenerLimits = { maxPacketSize: 0, maxConnections: 0, connectionRatePerSecond: 0, maxConnectionsPerSource: 0, maxPendingConnectsPerSource: 0, connectTimeoutMs: 0 }

/**
 * Every new TCP connection of `server` passes the gate first (before a TLS
 * handshake or an HTTP upgrade costs anything); `handle` then gets the
 * admitted stream with its packet sizes checked, and tells the gate when the
 * CONNECT came.
 */
function gated (server: net.Server, options: ListenOptions): { sockets: Set<net.Socket>, guard: <S extends Readable>(stream: S, raw: net.Socket) => S, setLimits: (next: ListenerLimits) => void } {
  const { logger = silentLogger, refusals = new Refusals(newRefusalCounts(), logger) } = options
  let limits = options.limits ?? NO_LIMITS
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
  const guard = <S extends Readable>(stream: S, raw: net.Socket): S => {
    peers.set(stream, sourceOf(raw))
    return guardPacketSize(stream, limits.maxPacketSize,
      (problem) => refusals.refuse('packet-size', { remote: sourceOf(raw), problem }),
      () => gate.connected(raw))
  }
  const setLimits = (next: ListenerLimits): void => {
    limits = next
    gate.setLimits(next)
  }
  return { sockets, guard, setLimits }
}

/** MQTT over TCP (or TLS) into an Aedes instance, with the listener limits applied per connection. */
export async function listenTcp (aedes: Aedes, host: string, port: number, options: ListenOptions = {}): Promise<Listener> {
  const { logger = silentLogger } = options
  // MQTT acks are small writes: without TCP_NODELAY, Nagle holds them for the peer's delayed ACK (~40 ms).
  const server = options.tls === undefined
    ? net.createServer({ noDelay: true })
    : tls.createServer({ ...tlsContext(options.tls), noDelay: true, ...handshakeTimeout(options.limits) })
  const { sockets, guard, setLimits } = gated(server, options)
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
    setLimits,
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

/** ws' own default: what a WebSocket message may be when `limits.maxPacketSize` is 0. */
const WS_DEFAULT_MAX_PAYLOAD = 100 * 1024 * 1024

/** MQTT over WebSocket into an Aedes instance; the gate sees each TCP connection before its upgrade. */
export async function listenWs (aedes: Aedes, host: string, port: number, options: ListenOptions = {}): Promise<Listener> {
  const http = createHttpServer()
  const wss = new WebSocketServer({ server: http })
  const gate = gated(http, options)
  // ws reads its options for each new connection, so a reload reaches the next ones.
  const setLimits = (limits: ListenerLimits): void => {
    wss.options.maxPayload = limits.maxPacketSize > 0 ? limits.maxPacketSize : WS_DEFAULT_MAX_PAYLOAD
    gate.setLimits(limits)
  }
  if (options.limits !== undefined) setLimits(options.limits)
  wss.on('connection', (socket, req) => aedes.handle(gate.guard(createWebSocketStream(socket), req.socket), req))
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
