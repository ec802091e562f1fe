import type net from 'node:net'
import type { FdBudget } from './fd-budget.js'
import type { RefusalReason, Refusals } from './refusals.js'

/**
 * Admits at most `perSecond` new connections per second (a token bucket that
 * refills continuously, bursts up to one second's worth). 0 = unlimited.
 */
export class ConnectionRate {
  private tokens: number
  private last = Date.now()

  constructor (private readonly perSecond: number) {
    this.tokens = perSecond
  }

  admit (): boolean {
    if (this.perSecond <= 0) return true
    const now = Date.now()
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens--
    return true
  }
}

/** What one listener admits (each 0 = unlimited). */
export interface GateLimits {
  maxConnections: number
  connectionRatePerSecond: number
  maxConnectionsPerSource: number
  maxPendingConnectsPerSource: number
  connectTimeoutMs: number
}

interface Source { open: number, pending: number }
interface Pending { since: number, source: Source }

/**
 * Who gets a connection on one listener. A connection that has not sent its
 * CONNECT yet costs the tier a descriptor and a slot but is nobody yet: it
 * must send CONNECT within `connectTimeoutMs`, one source address may hold
 * only so many of them, and when the listener (or the process's descriptors)
 * is full, the oldest of them is closed to make room. So sockets that never
 * speak cannot keep a terminal out, however many addresses they come from.
 */
export class ConnectionGate {
  private rate: ConnectionRate
  private readonly sources = new Map<string, Source>()
  /** Connections without CONNECT, oldest first (a Map keeps insertion order). */
  private readonly pending = new Map<net.Socket, Pending>()
  private open = 0
  private readonly sweep: NodeJS.Timeout | undefined

  constructor (private limits: GateLimits, private readonly refusals: Refusals, private readonly fds?: FdBudget) {
    this.rate = new ConnectionRate(limits.connectionRatePerSecond)
    if (limits.connectTimeoutMs > 0) {
      // One sweep for every pending connection instead of a timer each: late by at most a tenth of the timeout.
      const every = Math.min(1000, Math.max(20, limits.connectTimeoutMs / 10))
      this.sweep = setInterval(() => this.expire(), every).unref()
    }
  }

  /** New limits for the connections that come from now on (a reload); the CONNECT deadline's sweep keeps its period. */
  setLimits (next: GateLimits): void {
    if (next.connectionRatePerSecond !== this.limits.connectionRatePerSecond) this.rate = new ConnectionRate(next.connectionRatePerSecond)
    this.limits = next
  }

  /** Admits a new connection, or closes it with the reason logged and counted. */
  admit (socket: net.Socket): boolean {
    const remote = sourceOf(socket)
    const refused = this.check(remote)
    if (refused !== undefined) {
      this.refuse(socket, refused, remote)
      return false
    }
    let source = this.sources.get(remote)
    if (source === undefined) this.sources.set(remote, source = { open: 0, pending: 0 })
    source.open++
    source.pending++
    this.open++
    this.pending.set(socket, { since: performance.now(), source })
    socket.once('close', () => {
      this.forget(socket)
      this.open--
      if (--source.open === 0) this.sources.delete(remote)
    })
    return true
  }

  /** The connection's first packet (its CONNECT) arrived: it is a terminal now, no longer evictable. */
  connected (socket: net.Socket): void {
    const entry = this.pending.get(socket)
    if (entry === undefined) return
    this.pending.delete(socket)
    entry.source.pending--
    this.fds?.connected()
  }

  /** A connection without CONNECT is gone (closed, timed out or evicted). */
  private forget (socket: net.Socket): void {
    const entry = this.pending.get(socket)
    if (entry === undefined) return
    this.pending.delete(socket)
    entry.source.pending--
    this.fds?.closedBeforeConnect()
  }

  private check (remote: string): RefusalReason | undefined {
    const { maxConnections, maxConnectionsPerSource, maxPendingConnectsPerSource } = this.limits
    if (!this.rate.admit()) return 'rate'
    const source = this.sources.get(remote)
    if (maxConnectionsPerSource > 0 && (source?.open ?? 0) >= maxConnectionsPerSource) return 'per-source'
    if (maxPendingConnectsPerSource > 0 && (source?.pending ?? 0) >= maxPendingConnectsPerSource) return 'pending-per-source'
    if (maxConnections > 0 && this.open >= maxConnections && !this.evictOldest()) return 'max-connections'
    if (this.fds !== undefined && !this.admitDescriptors(this.fds)) return 'fd-limit'
    return undefined
  }

  /** Room in the descriptor budget, made by evicting as many connections without CONNECT as it takes (a fresh count may say more than one). */
  private admitDescriptors (fds: FdBudget): boolean {
    while (!fds.admit()) {
      if (!this.evictOldest()) return false
    }
    return true
  }

  /** Closes the connection that has waited longest without CONNECT, if there is one. */
  private evictOldest (): boolean {
    const oldest = this.pending.keys().next()
    if (oldest.done === true) return false
    this.drop(oldest.value, 'evicted')
    return true
  }

  private expire (): void {
    const deadline = performance.now() - this.limits.connectTimeoutMs
    for (const [socket, { since }] of this.pending) {
      if (since > deadline) break // the rest came later
      this.drop(socket, 'connect-timeout')
    }
  }

  private drop (socket: net.Socket, reason: RefusalReason): void {
    // Forgotten now, not on 'close': a destroyed socket's 'close' comes a tick later, and its slot is needed now.
    this.forget(socket)
    this.refuse(socket, reason, sourceOf(socket))
  }

  private refuse (socket: net.Socket, reason: RefusalReason, remote: string): void {
    this.refusals.refuse(reason, { remote })
    socket.destroy()
  }

  close (): void {
    clearInterval(this.sweep)
  }
}

/** The source address, IPv4-mapped IPv6 addresses as plain IPv4 (one host, one count). */
export function sourceOf (socket: net.Socket): string {
  const address = socket.remoteAddress ?? 'unknown'
  return address.startsWith('::ffff:') ? address.slice(7) : address
}
