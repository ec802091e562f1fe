import type { HealthOptions } from '../config/schema.js'
import type { TierCounters } from '../state.js'
import type { TierEmitter } from '../events.js'
import type { Qos } from '../mqtt/protocol.js'
import type { UpstreamLink, UpstreamPublish } from '../upstream/upstream-link.js'
import { AckedWindow } from './acked-window.js'
import type { Policy, RoutingTable } from './routing-table.js'

export type Acknowledge = (error?: Error | null) => void

/** Where the outbox commits what its route sends to the store (failover/store-sink.ts). */
export interface PublishStore {
  /** Resolves once the store committed the message. */
  append: (message: OutgoingPublish, policy: Policy, anyBroker: boolean) => Promise<unknown>
}

/** What every terminal's outbox shares: the routing table, the store, the tier's counters and events. */
export interface OutboxPorts {
  readonly table: RoutingTable
  /** Present when the tier has a pending store. */
  readonly store: PublishStore | undefined
  readonly counters: TierCounters
  readonly events: TierEmitter
  /** `resendWindowMs`: live publishes acked that recently are sent again if their broker is lost. Read at each use (a reload changes it). */
  readonly health: Pick<HealthOptions, 'resendWindowMs'>
}

/** For a publish sent again after its broker was lost: the terminal had its ack already. */
const ALREADY_ACKNOWLEDGED: Acknowledge = () => {}

/**
 * Told when a publish is settled (see OutgoingPublish.complete): the deployment's
 * observers of publishes (src/node/observations.ts) see each one once it is safe.
 */
export interface PublishObserver {
  settled: (message: OutgoingPublish) => void
}

/** What a publish carries upstream: a terminal's PUBLISH, or a publish kept to be sent again. */
export interface PublishContent {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: Qos
  readonly retain: boolean
}

/** One terminal publish on its way upstream; the terminal's ack waits in `acknowledge`. */
export class OutgoingPublish implements UpstreamPublish {
  readonly topic: string
  readonly payload: Buffer
  qos: Qos
  readonly retain: boolean
  target: UpstreamLink | undefined
  /** performance.now() when sent, then when acked: monotonic, sub-millisecond. */
  sentAt = 0
  /** Parts still to complete before the terminal is acked (2 for `both`: Broker2 and the store). */
  parts = 1
  stored = false
  /** Already acknowledged to the terminal: sent again only because its broker crashed right after acking. */
  acknowledged = false
  /** Discarded by the policy (or QoS 0 with nowhere to go), or refused by its broker: acknowledged, yet it reached no broker. */
  dropped = false
  /** The MQTT 5 reason code of the broker that refused it for good. */
  refusedWith: number | undefined = undefined
  /** Completed with an error: not safe. */
  failed = false
  /** Present while the deployment observes publishes (Aedes' `publish` event, its `published` hook). */
  observer: PublishObserver | undefined = undefined

  constructor (
    content: PublishContent,
    readonly clientId: string,
    /** The tier's id of this message (see Deduplicator), or undefined when no upstream speaks MQTT 5. */
    readonly id: string | undefined,
    /** The terminal's ack; a QoS 2 publish's is wrapped by its exchange (terminal/qos2-exchanges.ts). */
    public acknowledge: Acknowledge
  ) {
    this.topic = content.topic
    this.payload = content.payload
    this.qos = content.qos
    this.retain = content.retain
  }

  complete (error?: Error | null): void {
    if (this.acknowledged) return
    if (error == null && --this.parts > 0) return
    this.parts = 0
    this.acknowledged = true
    this.failed = error != null
    this.acknowledge(error ?? undefined)
    this.observer?.settled(this)
  }

  /** Discarded: by a `drop` policy, or QoS 0 while no broker can take it (at most once). */
  discard (): void {
    this.dropped = true
    this.complete()
  }
}

/**
 * A terminal's publishes until they are safe: acked by the broker they were
 * routed to, or committed to the store. Messages go out in the order they were
 * accepted; what was in flight on a session that went down is routed again, in
 * the same order (at least once, never lost).
 */
export class Outbox {
  private readonly inflight = new Set<OutgoingPublish>()
  private waiting: OutgoingPublish[] = []
  /** Live publishes acked in the last `resendWindowMs`; made on the first, so a terminal that only subscribes pays nothing. */
  private acked: AckedWindow | undefined
  private clientId = ''

  private links: readonly UpstreamLink[] = []
  /** Set while someone awaits `whenEmpty` (a stopping node). */
  private emptied: Array<() => void> | undefined

  constructor (private readonly ports: OutboxPorts) {}

  /** The terminal's sessions at Broker1 and Broker2, which report their acks here (see UpstreamLink). */
  routeTo (links: readonly [UpstreamLink, UpstreamLink]): void {
    this.links = links
  }

  get size (): number {
    return this.inflight.size + this.waiting.length
  }

  /** Resolves once no publish of this terminal is in flight or waiting. */
  whenEmpty (): Promise<void> {
    if (this.size === 0) return Promise.resolve()
    return new Promise((resolve) => { (this.emptied ??= []).push(resolve) })
  }

  private checkEmpty (): void {
    if (this.emptied === undefined || this.size > 0) return
    const emptied = this.emptied
    this.emptied = undefined
    for (const wake of emptied) wake()
  }

  /** The session whose oldest live publish has waited longer than `timeoutMs` for its ack, if any. */
  overdue (now: number, timeoutMs: number): UpstreamLink | undefined {
    for (const message of this.inflight) return now - message.sentAt > timeoutMs ? message.target : undefined
    return undefined
  }

  /**
   * A QoS 0 publish is routed at once even behind waiting ones: it is never
   * held (at most once), and MQTT orders messages per topic and QoS only
   * [MQTT-4.6.0-6].
   */
  send (message: OutgoingPublish): void {
    if ((this.waiting.length > 0 && message.qos > 0) || !this.dispatch(message)) this.waiting.push(message)
  }

  /** Returns false when the message must wait for a session to come online. */
  private dispatch (message: OutgoingPublish): boolean {
    const { table } = this.ports
    const policy = table.policyFor(message.topic)
    if (policy.maxQos !== undefined && message.qos > policy.maxQos) message.qos = policy.maxQos
    const route = table.route(policy, this.links)
    switch (route.kind) {
      case 'wait':
        if (message.qos > 0) return false
        this.ports.counters.dropped.qos0++ // QoS 0 is never held: at most once
        message.discard()
        return true
      case 'drop':
        this.ports.counters.dropped.policy++
        this.ports.events.emit('dropped', { reason: 'policy', count: 1, topic: message.topic })
        message.discard()
        return true
      case 'store':
        this.store(message, policy, route.anyBroker)
        return true
      case 'both':
        message.parts = 2
        this.store(message, policy, false)
        this.sendLive(message, route.link)
        return true
      case 'live':
        this.sendLive(message, route.link)
        return true
    }
  }

  private store (message: OutgoingPublish, policy: Policy, anyBroker: boolean): void {
    message.stored = true
    // A route to the store exists only when the tier has one (RoutingTable.storeOpen).
    this.ports.store!.append(message, policy, anyBroker).then(() => message.complete(), (error: Error) => message.complete(error))
  }

  private sendLive (message: OutgoingPublish, link: UpstreamLink): void {
    if (message.qos > 0) {
      message.target = link
      message.sentAt = performance.now()
      this.inflight.add(message)
    }
    link.publish(message)
  }

  /**
   * `link`'s broker acked a live publish (QoS 0: it was written, and Aedes
   * reads the terminal on only then: backpressure for QoS 0).
   */
  published (message: OutgoingPublish, link: UpstreamLink): void {
    if (message.qos === 0) {
      this.ports.counters.forwarded[link.endpoint.name][0]++
      message.complete()
      return
    }
    // A late ack from a session the message was already moved away from is ignored.
    if (message.target !== link) return
    this.inflight.delete(message)
    message.target = undefined
    const now = performance.now()
    this.forwarded(link, message.qos, now - message.sentAt)
    message.sentAt = now
    if (!message.stored) this.remember(message, link)
    message.complete()
    if (this.emptied !== undefined) this.checkEmpty()
  }

  /**
   * `link`'s broker refused a live publish for good (MQTT 5: not authorized, an invalid topic or
   * payload): the terminal gets its ack, as a 3.1.1 terminal straight at the broker does (the broker
   * acks and drops it), and the message is counted dropped, reason `refused`. Routed again, it
   * would be refused again; held, it would stall the terminal and make the broker look slow.
   */
  refused (message: OutgoingPublish, link: UpstreamLink, reasonCode: number): void {
    if (message.target !== link) return
    this.inflight.delete(message)
    message.target = undefined
    message.refusedWith = reasonCode
    this.ports.counters.dropped.refused++
    this.ports.events.emit('dropped', { reason: 'refused', count: 1, topic: message.topic })
    message.discard()
    if (this.emptied !== undefined) this.checkEmpty()
  }

  private forwarded (link: UpstreamLink, qos: Qos, ackMs: number): void {
    const { counters, events } = this.ports
    counters.forwarded[link.endpoint.name][qos]++
    // Only measured when someone listens (the metrics plugin): no work per message otherwise.
    if (events.listenerCount('publish-acked') > 0) events.emit('publish-acked', { broker: link.endpoint.name, qos, seconds: ackMs / 1000 })
  }

  private remember (message: OutgoingPublish, link: UpstreamLink): void {
    const windowMs = this.ports.health.resendWindowMs
    if (windowMs <= 0) return
    this.clientId = message.clientId
    this.acked ??= new AckedWindow(windowMs)
    this.acked.add(message, link.index, message.sentAt)
  }

  /**
   * What `link`'s broker acked in the last `resendWindowMs`: a broker killed
   * right after acking may not have passed the message on (mosquitto acks
   * before it writes to subscribers), so those are sent again (at least once).
   */
  private recentlyAckedBy (link: UpstreamLink): OutgoingPublish[] {
    return (this.acked?.takeAckedBy(link.index, performance.now()) ?? []).map((acked) => {
      const again = new OutgoingPublish(acked, this.clientId, acked.id, ALREADY_ACKNOWLEDGED)
      again.acknowledged = true // the terminal had its ack when the broker acked the first time
      return again
    })
  }

  /** A session came online, or the tier's mode changed: route again what waits. */
  flush (): void {
    const waiting = this.waiting
    this.waiting = []
    let i = 0
    while (i < waiting.length && this.dispatch(waiting[i]!)) i++
    if (i < waiting.length) this.waiting = waiting.slice(i).concat(this.waiting)
    if (this.emptied !== undefined) this.checkEmpty()
  }

  /** A session went offline: what it had in flight is routed again, ahead of what waits. */
  reroute (link: UpstreamLink): void {
    const moved = this.recentlyAckedBy(link)
    for (const message of this.inflight) {
      if (message.target !== link) continue
      message.target = undefined
      this.inflight.delete(message)
      // `both`: the store already holds it for Broker1; Broker2's copy was best effort.
      if (message.stored) message.complete()
      else moved.push(message)
    }
    if (moved.length === 0) return this.checkEmpty()
    this.waiting = moved.concat(this.waiting)
    this.flush()
  }

  /**
   * The terminal is gone: nothing will acknowledge to it any more. With `error`
   * (the node's own publishes, whose callers wait for an answer) each message
   * not yet safe is completed with it.
   */
  clear (error?: Error): void {
    if (error !== undefined) for (const message of [...this.inflight, ...this.waiting]) message.complete(error)
    this.inflight.clear()
    this.waiting = []
    this.acked = undefined
    this.checkEmpty()
  }
}
