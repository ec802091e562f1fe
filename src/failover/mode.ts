import type { HealthOptions } from '../config/schema.js'
import type { TierCounters } from '../state.js'
import type { TierEmitter, TierMode } from '../events.js'
import type { Logger } from '../logger.js'
import type { RoutingTable } from '../routing/routing-table.js'
import type { LevelPendingStore, StoredMessage } from '../store/index.js'
import type { BrokerHealth } from '../upstream/broker-health.js'
import { Replayer, type ReplayOptions } from './replayer.js'
import type { StoreSink } from './store-sink.js'

export interface ModeMachineOptions {
  readonly healths: readonly [BrokerHealth, BrokerHealth]
  /** The routing state the machine sets; every outbox reads it. */
  readonly table: RoutingTable
  /** Absent without a pending store. */
  readonly sink: StoreSink | undefined
  readonly replay: ReplayOptions
  /** `failbackDelayMs` and `sessionRestoreTimeoutMs`, read at each use (a reload changes them). */
  readonly timing: Pick<HealthOptions, 'failbackDelayMs' | 'sessionRestoreTimeoutMs'>
  /**
   * Resolves once the sessions of this node's connected terminals are whole at Broker1 (a
   * Broker1 that came back without them is re-subscribed, or its terminals asked to reconnect).
   */
  readonly sessionsWhole: () => Promise<void>
  readonly counters: TierCounters
  readonly events: TierEmitter
  readonly logger: Logger
  /** Routes again every terminal's waiting publishes: the mode changed. */
  readonly rerouteAll: () => void
}

const anyBrokerOnly = (message: StoredMessage): boolean => message.anyBroker === true
const everything = (): boolean => true

/**
 * The tier's mode (README "Failover, the pending store and failback"): `normal` while Broker1 is up and nothing is
 * pending; `failover` from the moment Broker1 is down until it has been back,
 * with a CONNACK, for `failbackDelayMs` (a broker that goes down again restarts
 * the delay); then `replaying` while the store drains to Broker1, after which
 * traffic returns to Broker1 live (`failback`).
 */
export class ModeMachine {
  private failbackTimer: NodeJS.Timeout | undefined
  private standbyTimer: NodeJS.Timeout | undefined
  private replayer: Replayer | undefined
  private downSince = 0
  private closed = false
  /** Changes whenever Broker1 goes down or a failback begins: a failback that waited for sessions across a change gives up. */
  private attempt = 0

  constructor (private readonly options: ModeMachineOptions) {}

  private get store (): LevelPendingStore | undefined {
    return this.options.sink?.store
  }

  get mode (): TierMode {
    return this.options.table.mode
  }

  private enter (mode: TierMode): void {
    this.options.table.mode = mode
  }

  /** Closed when the replay to Broker1 caught up: new publishes wait in memory instead of entering the store. */
  private storeGate (open: boolean): void {
    this.options.table.storeOpen = this.options.table.hasStore && open
  }

  /** Called once both brokers have a first verdict: a backlog found at start is replayed once Broker1 is up. */
  start (): void {
    const [broker1] = this.options.healths
    // A backlog found at start is an outage that began before this process: its replay ends in a failback.
    if (this.store !== undefined && this.store.count > 0) this.downSince = Date.now()
    if (broker1.state === 'up') void this.failback()
    else this.brokerDown(0, 'Broker1 unreachable at start')
  }

  brokerDown (index: 0 | 1, reason: string): void {
    if (index === 1) {
      clearTimeout(this.standbyTimer)
      return
    }
    clearTimeout(this.failbackTimer)
    this.attempt++
    this.replayer?.stop()
    this.storeGate(true)
    if (this.mode === 'failover') return
    this.enter('failover')
    this.downSince = Date.now()
    this.options.counters.failovers++
    this.options.logger.warn({ reason }, 'failover')
    this.options.events.emit('failover', { reason })
    this.options.rerouteAll()
  }

  brokerUp (index: 0 | 1): void {
    if (index === 1) {
      if (this.mode !== 'failover') return
      this.options.rerouteAll()
      // `failover` messages stored while both were down go to Broker2 once it, too, has been stable.
      clearTimeout(this.standbyTimer)
      this.standbyTimer = setTimeout(() => {
        if (this.mode === 'failover' && this.options.healths[1].state === 'up') void this.replayTo(1, anyBrokerOnly)
      }, this.options.timing.failbackDelayMs)
      return
    }
    clearTimeout(this.failbackTimer)
    this.failbackTimer = setTimeout(() => void this.failback(), this.options.timing.failbackDelayMs)
  }

  /** Broker1 has been stable for the delay: drain the store into it, then go live. */
  private async failback (): Promise<void> {
    if (this.closed || this.options.healths[0].state !== 'up') return
    const attempt = ++this.attempt
    if (this.mode !== 'normal') await this.waitForSessions()
    if (this.closed || this.attempt !== attempt || this.options.healths[0].state !== 'up') return
    this.replayer?.stop()
    this.storeGate(true)
    if (this.store !== undefined && (this.store.count > 0 || this.options.sink!.appending > 0)) {
      this.enter('replaying')
      this.options.rerouteAll()
      const started = Date.now()
      this.options.logger.info({ pending: this.store.count }, 'replay start')
      this.options.events.emit('replay-start', { pending: this.store.count })
      const drained = await this.replayTo(0, everything)
      if (!drained) {
        if (this.options.healths[0].state === 'up' && !this.closed) this.brokerUp(0) // interrupted: try again after the delay
        return
      }
      const end = { replayed: this.replayer?.replayed ?? 0, durationMs: Date.now() - started }
      this.options.logger.info(end, 'replay end')
      this.options.events.emit('replay-end', end)
    }
    const wasDown = this.mode === 'failover' || this.mode === 'replaying'
    this.enter('normal')
    this.storeGate(true)
    this.replayer = undefined
    if (wasDown && this.downSince > 0) {
      const downMs = Date.now() - this.downSince
      this.options.counters.failbacks++
      this.options.logger.info({ downMs }, 'failback')
      this.options.events.emit('failback', { downMs })
    }
    this.options.rerouteAll()
  }

  /**
   * Traffic returns to Broker1 only once the terminals' sessions there are whole (README "What
   * a persistent terminal can rely on"), bounded by `health.sessionRestoreTimeoutMs`: a terminal
   * that does not come back is not waited for longer.
   */
  private async waitForSessions (): Promise<void> {
    const started = Date.now()
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<boolean>((resolve) => { timer = setTimeout(resolve, this.options.timing.sessionRestoreTimeoutMs, false) })
    const whole = await Promise.race([this.options.sessionsWhole().then(() => true), bound])
    clearTimeout(timer)
    const waitedMs = Date.now() - started
    if (!whole) this.options.logger.warn({ waitedMs }, 'failback: sessions at Broker1 not whole within health.sessionRestoreTimeoutMs')
    else if (waitedMs > 0) this.options.logger.info({ waitedMs }, 'failback waited for sessions at Broker1')
  }

  private async replayTo (index: 0 | 1, accepts: (message: StoredMessage) => boolean): Promise<boolean> {
    const sink = this.options.sink
    if (sink === undefined || this.closed) return false
    const gate = {
      appending: () => sink.appending,
      whenQuiet: () => sink.whenQuiet(),
      caughtUp: () => { if (index === 0) this.storeGate(false) }
    }
    const { healths, replay, counters, logger } = this.options
    const replayer = new Replayer({ health: healths[index], store: sink.store, replay, accepts, gate, counters, logger })
    this.replayer = replayer
    replayer.on('progress', (progress) => {
      this.options.logger.info({ broker: this.options.healths[index].endpoint.name, ...progress }, 'replay progress')
      this.options.events.emit('replay-progress', progress)
    })
    let drained = false
    try {
      drained = await replayer.run()
    } catch (err) {
      // The store closing under a replay (shutdown) or failing: the entries stay for the next replay.
      if (!this.closed) this.options.logger.error({ err }, 'replay failed')
    }
    if (this.replayer === replayer && !drained) this.replayer = undefined
    return drained
  }

  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.failbackTimer)
    clearTimeout(this.standbyTimer)
    this.replayer?.stop()
    await this.options.sink?.whenQuiet()
    await this.store?.close()
  }
}
