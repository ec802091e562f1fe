import type { EventEmitter } from 'node:events'
import type { DualBrokerEvents, TierMode } from '../events.js'
import type { Logger } from '../logger.js'
import type { LevelPendingStore, StoredMessage } from '../store/index.js'
import type { BrokerHealth } from '../upstream/broker-health.js'
import type { UpstreamLink } from '../upstream/upstream-link.js'
import type { Forwarding, OutgoingPublish } from './outbox.js'
import type { Policy, PolicyTable, Qos } from './policy.js'
import { newCounters } from './counters.js'
import { Replayer, type ReplayOptions } from './replayer.js'
import { route, type Route } from './router.js'

/** What the controller needs of the tier around it. */
export interface FailoverHost extends Pick<EventEmitter<DualBrokerEvents>, 'emit' | 'listenerCount'> {
  readonly healths: readonly [BrokerHealth, BrokerHealth]
  readonly logger: Logger
  /** Route again every terminal's waiting publishes (the mode changed). */
  flushAll: () => void
}

export interface FailoverTiming { failbackDelayMs: number, reconnectPeriodMs: number }

const anyBrokerOnly = (message: StoredMessage): boolean => message.anyBroker === true
const everything = (): boolean => true

/**
 * The tier's mode (DESIGN §2): `normal` while Broker1 is up and nothing is
 * pending; `failover` from the moment Broker1 is down until it has been back,
 * with a CONNACK, for `failbackDelayMs` (a broker that goes down again restarts
 * the delay); then `replaying` while the store drains to Broker1, after which
 * traffic returns to Broker1 live (`failback`).
 */
export class FailoverController implements Forwarding {
  mode: TierMode = 'normal'
  readonly counters = newCounters()
  /** The last store write error, until a write succeeds again. */
  storeError: string | undefined
  private appending = 0
  private quietWaiters: Array<() => void> = []
  private failbackTimer: NodeJS.Timeout | undefined
  private standbyTimer: NodeJS.Timeout | undefined
  private replayer: Replayer | undefined
  private downSince = 0
  /** The replay to Broker1 caught up: new publishes wait in memory instead of entering the store. */
  private gateClosed = false
  private closed = false

  constructor (
    private readonly host: FailoverHost,
    readonly pendingStore: LevelPendingStore | undefined,
    private policies: PolicyTable,
    private readonly replay: ReplayOptions,
    private readonly timing: FailoverTiming
  ) {}

  /** Called once both brokers have a first verdict: a backlog found at start is replayed once Broker1 is up. */
  start (): void {
    const [broker1] = this.host.healths
    // A backlog found at start is an outage that began before this process: its replay ends in a failback.
    if (this.pendingStore !== undefined && this.pendingStore.count > 0) this.downSince = Date.now()
    if (broker1.state === 'up') void this.failback()
    else this.brokerDown(0, 'Broker1 unreachable at start')
  }

  brokerDown (index: 0 | 1, reason: string): void {
    if (index === 1) {
      clearTimeout(this.standbyTimer)
      return
    }
    clearTimeout(this.failbackTimer)
    this.replayer?.stop()
    this.gateClosed = false
    if (this.mode === 'failover') return
    this.mode = 'failover'
    this.downSince = Date.now()
    this.counters.failovers++
    this.host.logger.warn({ reason }, 'failover')
    this.host.emit('failover', { reason })
    this.host.flushAll()
  }

  brokerUp (index: 0 | 1): void {
    if (index === 1) {
      if (this.mode !== 'failover') return
      this.host.flushAll()
      // `failover` messages stored while both were down go to Broker2 once it, too, has been stable.
      clearTimeout(this.standbyTimer)
      this.standbyTimer = setTimeout(() => {
        if (this.mode === 'failover' && this.host.healths[1].state === 'up') void this.replayTo(1, anyBrokerOnly)
      }, this.timing.failbackDelayMs)
      return
    }
    clearTimeout(this.failbackTimer)
    this.failbackTimer = setTimeout(() => void this.failback(), this.timing.failbackDelayMs)
  }

  /** Broker1 has been stable for the delay: drain the store into it, then go live. */
  private async failback (): Promise<void> {
    if (this.closed || this.host.healths[0].state !== 'up') return
    this.replayer?.stop()
    this.gateClosed = false
    if (this.pendingStore !== undefined && (this.pendingStore.count > 0 || this.appending > 0)) {
      this.mode = 'replaying'
      this.host.flushAll()
      const started = Date.now()
      this.host.logger.info({ pending: this.pendingStore.count }, 'replay start')
      this.host.emit('replay-start', { pending: this.pendingStore.count })
      const drained = await this.replayTo(0, everything)
      if (!drained) {
        if (this.host.healths[0].state === 'up' && !this.closed) this.brokerUp(0) // interrupted: try again after the delay
        return
      }
      const end = { replayed: this.replayer?.replayed ?? 0, durationMs: Date.now() - started }
      this.host.logger.info(end, 'replay end')
      this.host.emit('replay-end', end)
    }
    const wasDown = this.mode === 'failover' || this.mode === 'replaying'
    this.mode = 'normal'
    this.gateClosed = false
    this.replayer = undefined
    if (wasDown && this.downSince > 0) {
      const downMs = Date.now() - this.downSince
      this.counters.failbacks++
      this.host.logger.info({ downMs }, 'failback')
      this.host.emit('failback', { downMs })
    }
    this.host.flushAll()
  }

  private async replayTo (index: 0 | 1, accepts: (message: StoredMessage) => boolean): Promise<boolean> {
    if (this.pendingStore === undefined || this.closed) return false
    const gate = {
      appending: () => this.appending,
      whenQuiet: () => this.whenQuiet(),
      caughtUp: () => { if (index === 0) this.gateClosed = true }
    }
    const replayer = new Replayer({ health: this.host.healths[index], store: this.pendingStore, replay: this.replay, accepts, gate, counters: this.counters, logger: this.host.logger })
    this.replayer = replayer
    replayer.on('progress', (progress) => {
      this.host.logger.info({ broker: this.host.healths[index].endpoint.name, ...progress }, 'replay progress')
      this.host.emit('replay-progress', progress)
    })
    let drained = false
    try {
      drained = await replayer.run()
    } catch (err) {
      // The store closing under a replay (shutdown) or failing: the entries stay for the next replay.
      if (!this.closed) this.host.logger.error({ err }, 'replay failed')
    }
    if (this.replayer === replayer && !drained) this.replayer = undefined
    return drained
  }

  private whenQuiet (): Promise<void> {
    if (this.appending === 0) return Promise.resolve()
    return new Promise((resolve) => this.quietWaiters.push(resolve))
  }

  /** A new policy table (a reload) for the publishes from now on; those already routed keep theirs. */
  usePolicies (table: PolicyTable): void {
    this.policies = table
  }

  policyFor (topic: string): Policy {
    return this.policies.lookup(topic)
  }

  route (policy: Policy, links: readonly UpstreamLink[]): Route {
    const storeOpen = this.pendingStore !== undefined && !(this.mode === 'replaying' && this.gateClosed)
    return route(policy, this.mode, links, storeOpen)
  }

  store (message: OutgoingPublish, policy: Policy, anyBroker: boolean): Promise<unknown> {
    const now = Date.now()
    this.appending++
    return this.pendingStore!.append({
      topic: message.topic,
      payload: message.payload,
      qos: message.qos,
      retain: message.retain,
      clientId: message.clientId,
      acceptedAt: now,
      ...(policy.ttl !== undefined && { expiresAt: now + policy.ttl }),
      ...(anyBroker && { anyBroker }),
      ...(message.id !== undefined && { id: message.id })
    }).then(() => {
      this.counters.stored++
      this.storeError = undefined
    }, (err: Error) => {
      // Not acknowledged to the terminal (it is disconnected and resends): say so once per failure streak.
      if (this.storeError === undefined) this.host.logger.error({ err: err.message }, 'pending store write failed')
      this.storeError = err.message
      throw err
    }).finally(() => {
      if (--this.appending > 0) return
      for (const wake of this.quietWaiters.splice(0)) wake()
    })
  }

  dropped (topic: string, qos0: boolean): void {
    if (qos0) {
      this.counters.dropped.qos0++
      return
    }
    this.counters.dropped.policy++
    this.host.emit('dropped', { reason: 'policy', count: 1, topic })
  }

  duplicate (): void {
    this.counters.duplicates++
  }

  forwarded (link: UpstreamLink, qos: Qos, sentAt: number): void {
    this.counters.forwarded[link.endpoint.name][qos]++
    // Only measured when someone listens (the metrics plugin): no work per message otherwise.
    if (sentAt > 0 && this.host.listenerCount('publish-acked') > 0) {
      this.host.emit('publish-acked', { broker: link.endpoint.name, qos, seconds: (performance.now() - sentAt) / 1000 })
    }
  }

  async close (): Promise<void> {
    this.closed = true
    clearTimeout(this.failbackTimer)
    clearTimeout(this.standbyTimer)
    this.replayer?.stop()
    await this.whenQuiet()
    await this.pendingStore?.close()
  }
}
