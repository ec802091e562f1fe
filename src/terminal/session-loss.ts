import type { HealthOptions } from '../config/schema.js'
import type { TierEmitter } from '../events.js'
import type { Logger } from '../logger.js'
import type { BrokerName, ReconnectReason, TierCounters } from '../state.js'

const NAMES: readonly [BrokerName, BrokerName] = ['broker1', 'broker2']
/** At most one summary line per kind and broker this often: a broker that returns empty touches every terminal at once. */
const LOG_INTERVAL_MS = 1000

interface Throttle {
  timer: NodeJS.Timeout
  unlogged: number
  last: Record<string, string | number>
}

/**
 * The terminals whose session a broker came back without (README "What a
 * persistent terminal can rely on"), per broker, until they are whole again:
 * those being re-subscribed, and those asked to reconnect that are not back
 * yet. Failback waits on it for Broker1; for Broker2 it is the standby that
 * is reported not ready (`tier.state.sessionsLost`, a metric, `/health`).
 *
 * It holds only this node's connected terminals and, for the length of
 * `health.sessionRestoreTimeoutMs`, the client ids it asked to reconnect: no
 * session content. What the brokers hold stays the record (their CONNACK's
 * session present); a lost entry costs at most a shorter failback wait.
 */
export class SessionLoss {
  /** Sessions re-opening at a broker that came back: not known whole until its CONNACK (and SUBACK) says so. */
  private readonly opening: readonly [Set<object>, Set<object>] = [new Set(), new Set()]
  private readonly restoring: readonly [Set<object>, Set<object>] = [new Set(), new Set()]
  /** Client ids asked to reconnect, with when: until the terminal is back (first SUBSCRIBE answered) or the bound passes. */
  private readonly awaited: readonly [Map<string, number>, Map<string, number>] = [new Map(), new Map()]
  private readonly expiry: [NodeJS.Timeout | undefined, NodeJS.Timeout | undefined] = [undefined, undefined]
  private readonly waiters: Array<{ index: 0 | 1, resolve: () => void }> = []
  private readonly reported = [false, false]
  private readonly throttles = new Map<string, Throttle>()

  constructor (
    private readonly counters: TierCounters,
    private readonly logger: Logger,
    private readonly events: TierEmitter,
    private readonly timing: Pick<HealthOptions, 'sessionRestoreTimeoutMs'>
  ) {}

  /** Terminals whose session at this broker is not whole now. */
  lost (index: 0 | 1): number {
    this.expire(index)
    return this.opening[index].size + this.restoring[index].size + this.awaited[index].size
  }

  /** The session is being re-opened at a broker that came back: whether the broker kept it is not known yet. */
  opens (session: object, index: 0 | 1): void {
    this.opening[index].add(session)
  }

  /** Re-opened with its subscriptions in place (or not re-opened: it is tried again later). */
  opened (session: object, index: 0 | 1): void {
    if (this.opening[index].delete(session)) this.changed(index)
  }

  /** A broker came back without this terminal's session: its subscriptions are being applied again. */
  restoreBegins (session: object, index: 0 | 1): void {
    this.restoring[index].add(session)
    this.opening[index].delete(session)
    this.changed(index)
  }

  /** Re-subscribed: whole again. False when it was not being restored. */
  restored (session: object, index: 0 | 1): boolean {
    if (!this.restoring[index].delete(session)) return false
    this.counters.sessions.restored[NAMES[index]]++
    this.note('sessions restored', index, {})
    this.changed(index)
    return true
  }

  /** The terminal is gone (or asked to reconnect): nothing of it is restored here any more. */
  forget (session: object): void {
    for (const index of [0, 1] as const) {
      const held = this.opening[index].delete(session)
      if (this.restoring[index].delete(session) || held) this.changed(index)
    }
  }

  /** The terminal's connection is ended without a will, so that it reconnects and subscribes again. */
  asked (clientId: string, index: 0 | 1, reason: ReconnectReason): void {
    this.counters.sessions.reconnectsAsked[NAMES[index]][reason]++
    this.awaited[index].set(clientId, Date.now())
    this.note('terminals asked to reconnect', index, { reason, clientId })
    if (this.expiry[index] === undefined) this.scheduleExpiry(index)
    this.changed(index)
  }

  /** A terminal asked to reconnect is back and has subscribed again (or came back clean, or told session present). */
  back (clientId: string): void {
    for (const index of [0, 1] as const) if (this.awaited[index].delete(clientId)) this.changed(index)
  }

  /** Resolves once no connected terminal's session at this broker is lost; the caller bounds the wait. */
  whole (index: 0 | 1): Promise<void> {
    if (this.lost(index) === 0) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push({ index, resolve }))
  }

  close (): void {
    for (const timer of this.expiry) clearTimeout(timer)
    for (const key of [...this.throttles.keys()]) this.flush(key)
    for (const { resolve } of this.waiters.splice(0)) resolve()
  }

  private changed (index: 0 | 1): void {
    const lost = this.lost(index)
    const broker = NAMES[index]
    if (lost > 0 && !this.reported[index]) {
      this.reported[index] = true
      this.logger.warn({ broker }, 'sessions lost at broker: not whole until restored or the terminals are back')
      this.events.emit('sessions-lost', { broker })
    } else if (lost === 0 && this.reported[index]) {
      this.reported[index] = false
      this.logger.info({ broker }, 'sessions whole again')
      this.events.emit('sessions-whole', { broker })
    }
    if (lost > 0) return
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      const waiter = this.waiters[i]!
      if (waiter.index !== index) continue
      this.waiters.splice(i, 1)
      waiter.resolve()
    }
  }

  /** A terminal that does not come back within the bound is no longer waited for (it reconnected elsewhere, or went away). */
  private expire (index: 0 | 1): void {
    const oldest = Date.now() - this.timing.sessionRestoreTimeoutMs
    for (const [clientId, at] of this.awaited[index]) {
      if (at > oldest) break // insertion order is time order
      this.awaited[index].delete(clientId)
    }
  }

  private scheduleExpiry (index: 0 | 1): void {
    this.expiry[index] = setTimeout(() => {
      this.expiry[index] = undefined
      this.changed(index)
      if (this.awaited[index].size > 0) this.scheduleExpiry(index)
    }, Math.max(100, this.timing.sessionRestoreTimeoutMs / 4)).unref()
  }

  /** One line at once, then the ones within the interval summed into one with their `count`. */
  private note (msg: string, index: 0 | 1, detail: Record<string, string>): void {
    const key = `${msg}\0${index}\0${detail.reason ?? ''}`
    const line = { broker: NAMES[index], ...detail }
    const throttle = this.throttles.get(key)
    if (throttle !== undefined) {
      throttle.unlogged++
      throttle.last = line
      return
    }
    this.logger.info({ ...line, count: 1 }, msg)
    const timer = setInterval(() => this.flush(key), LOG_INTERVAL_MS).unref()
    this.throttles.set(key, { timer, unlogged: 0, last: line })
  }

  private flush (key: string): void {
    const throttle = this.throttles.get(key)!
    if (throttle.unlogged > 0) this.logger.info({ ...throttle.last, count: throttle.unlogged }, key.slice(0, key.indexOf('\0')))
    throttle.unlogged = 0
    clearInterval(throttle.timer)
    this.throttles.delete(key)
  }
}
