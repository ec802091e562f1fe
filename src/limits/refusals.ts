import type { Logger } from '../logger.js'

/**
 * Why a connection, a CONNECT or a filter was refused. Each is a label of
 * `dualbroker_refused_total{reason}` and names the limit it enforces.
 */
export const REFUSALS = {
  rate: { key: 'limits.connectionRatePerSecond', msg: 'connection refused' },
  'max-connections': { key: 'limits.maxConnections', msg: 'connection refused' },
  'per-source': { key: 'limits.maxConnectionsPerSource', msg: 'connection refused' },
  'pending-per-source': { key: 'limits.maxPendingConnectsPerSource', msg: 'connection refused' },
  /** A connection that had not sent CONNECT yet, closed to make room for a new one. */
  evicted: { key: 'limits.maxConnections', msg: 'connection dropped' },
  'connect-timeout': { key: 'limits.connectTimeoutMs', msg: 'connection dropped' },
  'fd-limit': { key: 'file descriptor limit', msg: 'connection refused' },
  /** No source port free for a terminal's upstream sockets (counted and logged by DualBroker.refusedForSourcePorts). */
  'source-ports': { key: 'broker*.localAddresses', msg: 'terminal refused' },
  'packet-size': { key: 'limits.maxPacketSize', msg: 'connection dropped' },
  'client-id-length': { key: 'limits.maxClientIdLength', msg: 'connection refused' },
  'topic-length': { key: 'limits.maxTopicLength', msg: 'topic refused' },
  'filters-per-subscribe': { key: 'limits.maxFiltersPerSubscribe', msg: 'subscription refused' },
  'subscriptions-per-terminal': { key: 'limits.maxSubscriptionsPerTerminal', msg: 'subscription refused' }
} as const

export type RefusalReason = keyof typeof REFUSALS
export type RefusalCounts = Record<RefusalReason, number>

export function newRefusalCounts (): RefusalCounts {
  return Object.fromEntries(Object.keys(REFUSALS).map((reason) => [reason, 0])) as RefusalCounts
}

/** What is logged of one refusal: who, and anything that helps find them. Kept short by the caller. */
export type RefusalDetail = Record<string, string | number | undefined>

interface Throttle {
  timer: NodeJS.Timeout
  /** Refusals since the last line. */
  unlogged: number
  last: RefusalDetail
}

/**
 * Counts every refusal and logs it, at most one line per reason per
 * `intervalMs`: a flood of refusals is a flood of log lines otherwise, which
 * is an attack of its own. A line after a quiet spell is written at once; the
 * refusals that follow it within the interval are summed into one line with
 * their `count` at its end.
 */
export class Refusals {
  private readonly throttles = new Map<RefusalReason, Throttle>()

  constructor (readonly counts: RefusalCounts, private readonly logger: Logger, private readonly intervalMs = 1000) {}

  refuse (reason: RefusalReason, detail: RefusalDetail): void {
    this.counts[reason]++
    const throttle = this.throttles.get(reason)
    if (throttle !== undefined) {
      throttle.unlogged++
      throttle.last = detail
      return
    }
    this.write(reason, detail, 1)
    const timer = setInterval(() => this.flush(reason), this.intervalMs).unref()
    this.throttles.set(reason, { timer, unlogged: 0, last: detail })
  }

  private flush (reason: RefusalReason): void {
    const throttle = this.throttles.get(reason)!
    if (throttle.unlogged === 0) {
      clearInterval(throttle.timer)
      this.throttles.delete(reason)
      return
    }
    this.write(reason, throttle.last, throttle.unlogged)
    throttle.unlogged = 0
  }

  private write (reason: RefusalReason, detail: RefusalDetail, count: number): void {
    const { key, msg } = REFUSALS[reason]
    // info, as every refused terminal is: a refusal is the limit working; a flood shows in the count and the metric.
    this.logger.info({ ...detail, reason, limit: key, count }, msg)
  }

  /** Writes what is still summed up, and stops the timers. */
  close (): void {
    for (const reason of [...this.throttles.keys()]) {
      this.flush(reason)
      const throttle = this.throttles.get(reason)
      if (throttle !== undefined) clearInterval(throttle.timer)
      this.throttles.delete(reason)
    }
  }
}

/**
 * `text` cut to `max` characters, for logging what a hostile client sent (a 64 KiB client id, say).
 * Aedes may ask about a client whose CONNECT it has not accepted: its id is still null then.
 */
export function clip (text: string | null | undefined, max = 64): string | undefined {
  if (text == null) return undefined
  return text.length <= max ? text : `${text.slice(0, max)}…(${text.length} chars)`
}
